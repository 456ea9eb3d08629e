"""SVG snapshots of the Training screen at 80x24 and 200x50: before any run, and after replaying
a recorded run. The recorded events (`tests/data/training_events.json`) stand in for a live run
so the plot, the sparkline and the samples do not depend on this machine's numerics; they came
from a real run: `python -m tests.test_snapshots_training` (in the repository root) records them again.
"""

import json
from pathlib import Path

import pytest

from lab.train import TrainEvent
from tests.helpers import make_test_app

EVENTS = Path(__file__).parent / "data" / "training_events.json"
SIZES = [(80, 24), (200, 50)]


def recorded_events() -> list[TrainEvent]:
    return [TrainEvent(**e) for e in json.loads(EVENTS.read_text())]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("replay", [False, True], ids=["before-any-run", "stopped"])
def test_training_screen_snapshot(snap_compare, size, replay):
    app = make_test_app(load_models=False)

    async def run_before(pilot):
        if replay:
            for ev in recorded_events():
                app.training.record(ev)
        await pilot.press("f5")
        await pilot.pause()
        app.screen.poll()
        await pilot.pause()
        app.screen.query_one("#train-samples").scroll_home(animate=False)  # not wherever the last write left it
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=size)


def record(steps: int = 120) -> None:
    """Record a real cpu-quick run (seed 3) stopped at `steps`, with the checkpoint shown at its default place."""
    import tempfile
    from dataclasses import asdict, replace

    from lab.train import PRESETS, Trainer

    with tempfile.TemporaryDirectory() as out:
        t = Trainer(replace(PRESETS["cpu-quick"], out_dir=out, seed=3))
        events = []
        for ev in t.run():
            if ev.step >= steps and not ev.stopped:
                t.stop()
            events.append(ev)
    rows = []
    for ev in events:
        row = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(ev).items()}
        if row["checkpoint"]:
            row["checkpoint"] = "~/.cache/deepdive-lab/tiny/ckpt.pt"
        rows.append(row)
    EVENTS.parent.mkdir(exist_ok=True)
    EVENTS.write_text(json.dumps(rows, indent=0) + "\n")


if __name__ == "__main__":
    record()
