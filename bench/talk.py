"""Talk mode speed: rehearse the shipped track, then replay it as on stage.

1. `talk rehearse` of the default track: every step headless, filling fresh caches; the total
   and the slowest steps.
2. On stage after the rehearsal: next step -> fully drawn (every worker done but the Next-token
   look-ahead, and the frame painted) for each step, from the caches; the median against the
   100 ms target, and against a bare switch to the same screen measured the same way.

    python bench/talk.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's lab/ and screens/


async def rehearse_track(track, dirs) -> list:
    from screens.app import make_app
    from screens.talk import rehearse

    report: list = []
    app = make_app(**dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await rehearse(pilot, track, report, print)
    return report


SPECULATIVE = {"next-ahead"}  # the Next-token look-ahead: states one key away, shown nowhere until a key asks


def drawing(app) -> list:
    """The workers whose results the step's screen shows (every one but the look-ahead)."""
    return [w for w in app.workers if w.is_running and w.group not in SPECULATIVE]


async def drawn(app, pilot) -> None:
    """Until nothing is left to draw: every worker done but the look-ahead (it computes states a
    key away in the background and draws nothing), then the frame after (one more round if that
    frame's messages started work)."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        busy = drawing(app)
        try:
            await app.workers.wait_for_complete(busy)
        except WorkerCancelled:  # replaced by a newer one: wait for that on the next round
            busy = [True]
        await pilot.pause()
        if not busy and not drawing(app):
            return


async def replay_track(track, dirs) -> tuple[list[tuple[int, str, float, bool]], list[float]]:
    """Each step's time on stage, and (the reference, same run) a bare switch to that step's
    screen from another one, measured the same way."""
    from screens.app import make_app
    from screens.headless import settle

    app = make_app(**dirs)
    timings, bare = [], []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_talk(track, go=False)
        await app.talk.warm()  # as `deepdive-lab talk` does before the first step
        await settle(app, pilot)
        for i, step in enumerate(track.steps):
            t0 = time.perf_counter()
            await app.talk.go(i)
            await drawn(app, pilot)
            timings.append((step.index, step.screen, time.perf_counter() - t0, app.talk.live))
            await settle(app, pilot)
            other = "tokens" if step.screen != "tokens" else "training"
            await app.switch_mode(other)
            await settle(app, pilot)
            t0 = time.perf_counter()
            await app.switch_mode(step.screen)
            await drawn(app, pilot)
            bare.append(time.perf_counter() - t0)
            await settle(app, pilot)
    return timings, bare


def main() -> None:
    from lab.talk import load_track

    track = load_track()
    root = Path(tempfile.mkdtemp(prefix="deepdive-talk-bench-"))
    dirs = {"failures_dir": root / "failures", "samples_dir": root / "samples", "training_dir": root / "tiny"}
    print(f"rehearsing {len(track.steps)} steps of {track.title!r} (fresh caches in {root})")
    t0 = time.perf_counter()
    asyncio.run(rehearse_track(track, dirs))
    print(f"rehearsal wall time {time.perf_counter() - t0:.1f} s")
    timings, bare = asyncio.run(replay_track(track, dirs))
    print("\non stage, next step -> fully drawn (and a bare switch to the same screen, same run):")
    for (index, screen, seconds, live), ref in zip(timings, bare):
        print(f"  step {index:>2} {screen:<9} {seconds * 1000:7.1f} ms  (bare switch {ref * 1000:6.1f} ms)"
              f"{'  computed live: not cached' if live else ''}")
    median = statistics.median(t for _, _, t, _ in timings)
    ref = statistics.median(bare)
    print(f"median {median * 1000:.1f} ms across {len(timings)} steps; target 100 ms: ratio {median / 0.1:.2f}; "
          f"a bare screen switch {ref * 1000:.1f} ms: ratio {median / ref:.2f}")


if __name__ == "__main__":
    main()
