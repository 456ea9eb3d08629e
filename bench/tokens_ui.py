"""Tokens screen speed, headless, each figure against a reference measured in the same run.

1. Keystroke -> repaint on a 10,000-character text: median time from pressing a key in the
   text box until the screen has re-tokenized and repainted, against a bare TextArea holding the
   same text, measured alternately in the same run (target <= 1.2x the bare TextArea).
2. Launch -> first frame: `deepdive-lab` (its real entry point, models loading after the
   first frame) against a bare Textual app with a header, a static and a footer, both as
   fresh processes, headless (target <= 1.5x).

    python bench/tokens_ui.py [--keys 60] [--rounds 3] [--launches 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import textwrap
import time

BARE = textwrap.dedent("""
    import time
    from textual.app import App
    from textual.widgets import Footer, Header, Static

    class Bare(App):
        def compose(self):
            yield Header()
            yield Static("hello")
            yield Footer()

        def on_mount(self):
            self.call_after_refresh(self.first_frame)

        def first_frame(self):
            print(time.time(), flush=True)
            self.exit()

    Bare().run(headless=True, size=(120, 40))
""")

LAB = textwrap.dedent("""
    import time
    from screens.app import LabApp, make_app

    app = make_app()
    original = app._first_frame_done

    def first_frame():
        print(time.time(), flush=True)
        original()
        app.exit()

    app._first_frame_done = first_frame
    app.run(headless=True, size=(120, 40))
""")


def launch(code: str) -> float:
    """Seconds from starting a fresh Python process to its first frame being painted.

    As a user's machine runs it: byte-code caching on (this environment sets
    PYTHONDONTWRITEBYTECODE, which would make every launch recompile the app's own modules
    while Textual's come precompiled from their wheel). `main` launches once untimed first."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=env).stdout
    return float(out.strip().splitlines()[-1]) - t0


def track_repaints(screen) -> list[float]:
    """Record when each screen repaint finishes (wrapping the screen's compositor refresh)."""
    ends: list[float] = []
    original = screen._compositor_refresh

    def refresh(*args, **kwargs):
        result = original(*args, **kwargs)
        ends.append(time.perf_counter())
        return result

    screen._compositor_refresh = refresh
    return ends


async def keystrokes(n: int, bare: bool = False) -> list[float]:
    """Key press -> end of the repaint that shows its result, per key."""
    from textual.app import App
    from textual.widgets import TextArea

    from lab.paths import default_corpus
    from screens.app import make_app

    if bare:  # the reference: the same text box with nothing listening to it
        class BareArea(App):
            def compose(self):
                yield TextArea(id="tokens-input")

        app = BareArea()
    else:
        app = make_app(load_models=False)
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text(default_corpus().read_text()[:10_000])
        area.focus()
        await pilot.pause()
        area.move_cursor((0, 0))
        await pilot.pause()
        ends = track_repaints(app.screen)
        for i in range(n):
            ends.clear()
            t0 = time.perf_counter()
            await pilot.press("x" if i % 2 == 0 else "backspace")
            await pilot.pause()
            await pilot.pause()
            times.append((ends[-1] if ends else time.perf_counter()) - t0)
        if not bare:
            count = app.screen.query_one("#tokens-stats").render()
            print(f"  (screen shows: {str(count)[:90]})")
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--launches", type=int, default=7)
    args = ap.parse_args()

    ref, times = [], []
    for _ in range(args.rounds):  # alternate, so a burst of load elsewhere slows both alike
        ref += asyncio.run(keystrokes(args.keys, bare=True))[5:]
        times += asyncio.run(keystrokes(args.keys))[5:]
    med, ref_med = statistics.median(times) * 1000, statistics.median(ref) * 1000
    print(f"keystroke -> repaint, 10,000 characters, cl100k: median {med:.1f} ms, "
          f"p90 {statistics.quantiles(times, n=10)[-1] * 1000:.1f} ms over {len(times)} keys; a bare TextArea "
          f"with the same text: {ref_med:.1f} ms; ratio {med / ref_med:.2f} (target <= 1.2)")

    bare, lab = [], []
    launch(BARE), launch(LAB)  # untimed: writes the byte-code caches, as any first run does
    for _ in range(args.launches):  # alternate so both see the same machine load
        bare.append(launch(BARE))
        lab.append(launch(LAB))
    b, l = statistics.median(bare), statistics.median(lab)
    print(f"launch -> first frame (fresh process, headless): bare Textual app {b:.2f} s, "
          f"deepdive-lab {l:.2f} s, ratio {l / b:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
