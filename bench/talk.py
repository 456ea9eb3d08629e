"""Talk mode speed: rehearse the shipped track, then replay it as on stage.

1. `talk rehearse` of the default track: every step headless, filling fresh caches; the total
   and the slowest steps.
2. On stage after the rehearsal: next step -> fully drawn (every worker done and the frame
   painted) for each step, from the caches; the median against the 100 ms target.

    python bench/talk.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path


async def rehearse_track(track, dirs) -> list:
    from screens.app import make_app
    from screens.talk import rehearse

    report: list = []
    app = make_app(**dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await rehearse(pilot, track, report, print)
    return report


async def replay_track(track, dirs) -> list[tuple[int, str, float, bool]]:
    from screens.app import make_app
    from screens.headless import settle

    app = make_app(**dirs)
    timings = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_talk(track, go=False)
        await app.talk.warm()  # as `deepdive-lab talk` does before the first step
        await settle(app, pilot)
        for i, step in enumerate(track.steps):
            t0 = time.perf_counter()
            await app.talk.go(i)
            await settle(app, pilot)
            timings.append((step.index, step.screen, time.perf_counter() - t0, app.talk.live))
    return timings


def main() -> None:
    from lab.talk import load_track

    track = load_track()
    root = Path(tempfile.mkdtemp(prefix="deepdive-talk-bench-"))
    dirs = {"failures_dir": root / "failures", "samples_dir": root / "samples", "training_dir": root / "tiny"}
    print(f"rehearsing {len(track.steps)} steps of {track.title!r} (fresh caches in {root})")
    t0 = time.perf_counter()
    asyncio.run(rehearse_track(track, dirs))
    print(f"rehearsal wall time {time.perf_counter() - t0:.1f} s")
    timings = asyncio.run(replay_track(track, dirs))
    print("\non stage, next step -> fully drawn:")
    for index, screen, seconds, live in timings:
        print(f"  step {index:>2} {screen:<9} {seconds * 1000:7.1f} ms{'  (computed live: not cached)' if live else ''}")
    median = statistics.median(t for _, _, t, _ in timings)
    print(f"median {median * 1000:.1f} ms across {len(timings)} steps; target 100 ms: ratio {median / 0.1:.2f}")


if __name__ == "__main__":
    main()
