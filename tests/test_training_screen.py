"""The Training screen, driven by keys: start a short real run, watch it, pause, save, leave, come
back, stop, start again (the previous checkpoint is kept), quit mid-run, refuse a GPU preset."""

import re

import pytest
import torch
from textual.widgets import RichLog, Sparkline

from lab.devices import pick_torch_device
from lab.errors import LabError
from lab.train import load_checkpoint
from tests.helpers import make_test_app, shown


async def wait_for(pilot, condition, hang_guard_s: float = 900.0):
    """Wait until `condition()` holds; a busy machine only makes this slower. Gives up (False) only
    when the run's thread has ended without it, or after `hang_guard_s` (a hang, not a slow run)."""
    import time

    end = time.monotonic() + hang_guard_s
    while time.monotonic() < end:
        if condition():
            return True
        thread = pilot.app.training.thread
        if thread is not None and not thread.is_alive():
            await pilot.pause(0.5)  # the last change reaches the screen at the next poll
            return condition()
        await pilot.pause(0.1)
    return condition()


def readout(app) -> str:
    return shown(app.screen.query_one("#train-readout"))


def shown_step(app) -> int:
    """The step the readout shows ("step 61/400"), or -1 before any."""
    found = re.search(r"step (\d+)/\d+", readout(app))
    return int(found.group(1)) if found else -1


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_start_watch_pause_leave_return_stop_and_start_again(tmp_path, monkeypatch):
    from dataclasses import replace

    import lab.train

    # cpu-quick as it is, but longer than any test: on a fast machine its 400 steps end before "x" arrives
    quick = lab.train.PRESETS["cpu-quick"]
    monkeypatch.setitem(lab.train.PRESETS, "cpu-quick", replace(quick, max_iters=100_000, lr_decay_iters=100_000))
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert "preset cpu-quick" in readout(app) and "no run yet" in readout(app)
        assert "appears when training starts" in shown(screen.query_one("#train-tps-label"))
        assert not screen.query_one("#train-tps", Sparkline).display  # no bars before any run

        await pilot.press("s")
        assert await wait_for(pilot, lambda: shown_step(app) >= 60)
        text = readout(app)
        assert "running" in text and re.search(r"loss \d+\.\d{4}", text)
        assert f"device {pick_torch_device('auto')}" in text
        measured = re.search(r"val \d+\.\d{4} @ step (\d+)\b", text)  # the validation loss says when it was
        assert measured and int(measured.group(1)) % 50 == 0 and 50 <= int(measured.group(1)) <= shown_step(app)
        # measured: an evaluation step (every 50) already reached; a fast machine may be past the second one
        assert "loss" in str(screen.query_one("#train-plot").render())  # the plot's title: it is drawn
        log_lines = [str(line.text) for line in screen.query_one("#train-samples", RichLog).lines]
        assert any("step 0 " in line for line in log_lines) and any("step 50 " in line for line in log_lines)
        assert screen.query_one("#train-tps", Sparkline).display
        assert "tokens/s" == shown(screen.query_one("#train-tps-label"))

        await pilot.press("p")
        assert await wait_for(pilot, lambda: "paused" in readout(app))
        assert app.training.trainer.wait_parked(timeout=30)  # the step in flight has finished
        await pilot.pause(0.3)
        paused_at = shown_step(app)
        await pilot.pause(0.5)
        assert shown_step(app) == paused_at  # paused: the step holds still
        await pilot.press("c")  # save while paused
        assert await wait_for(pilot, lambda: any(m.startswith("Saved ") for m in notifications(app)))
        assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == paused_at + 1  # steps done, the shown one included

        await pilot.press("f1", "p")  # leaving the screen does not stop the run ("p" types into the text box)
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "paused" in readout(app) and shown_step(app) == paused_at
        await pilot.press("p")
        assert await wait_for(pilot, lambda: shown_step(app) > paused_at)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: "stopped at step" in readout(app))
        text = readout(app)
        assert "finished" not in text and "(checkpoint saved)" in text
        stopped_at = int(re.search(r"stopped at step (\d+)", text).group(1))
        assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == stopped_at

        await pilot.press("s")  # a second run: the first one's checkpoint is kept, not overwritten
        assert await wait_for(pilot, lambda: "running" in readout(app) and shown_step(app) >= 3)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: "previous checkpoint is kept" in readout(app))
        kept = sorted(tmp_path.glob("ckpt-*.pt"))
        assert len(kept) == 1 and kept[0].name in readout(app)
        assert load_checkpoint(kept[0])["step"] == stopped_at
        second = int(re.search(r"stopped at step (\d+)", readout(app)).group(1))
        assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == second  # the latest stays ckpt.pt


async def test_keys_that_do_nothing_now_are_refused_with_a_reason(tmp_path):
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        enabled = {b.action: on for _, b, on, _ in app.screen.active_bindings.values()}
        assert enabled["start"] and enabled["next_preset"]
        assert not enabled["pause"] and not enabled["stop"] and not enabled["checkpoint"]
        await pilot.press("p", "x", "c")  # greyed out: nothing happens, no run appears
        await pilot.pause()
        assert "no run yet" in readout(app) and list(tmp_path.iterdir()) == []
        await pilot.press("n")
        assert "preset cpu ·" in readout(app) and "2,000 steps" in readout(app)
        app.screen.apply_step({"preset": "gpu-small"})  # as a talk step sets it
        await pilot.pause()
        assert "preset gpu-small ·" in readout(app) and app.screen.state() == {"fields": {"preset": "gpu-small"}}
        with pytest.raises(LabError, match="unknown training preset 'huge'; choose from cpu-quick, cpu"):
            app.screen.apply_step({"preset": "huge"})
        assert "preset gpu-small ·" in readout(app)


async def test_quitting_stops_training_with_a_final_checkpoint(tmp_path):
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5", "n", "s")  # the "cpu" preset: 2,000 steps, far from done when we quit
        assert await wait_for(pilot, lambda: shown_step(app) >= 5)
    view = app.training.snapshot()
    assert view.state == "stopped" and view.message.startswith(f"stopped at step {view.last.step} ")
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == view.last.step


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
async def test_gpu_preset_on_a_cpu_machine_is_refused_with_a_reason(tmp_path):
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5", "n", "n", "n", "s")  # cpu-quick -> cpu -> gpu-small -> gpu-gpt2, start
        assert await wait_for(pilot, lambda: "sized for a GPU" in readout(app))
        assert "preset gpu-gpt2 · failed" in readout(app)
        await pilot.press("n")  # the app still answers keys: back to cpu-quick
        assert "preset cpu-quick" in readout(app)
