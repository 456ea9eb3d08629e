"""Failures speed: a 10-sample card in the app against the engine sampling the same answers
directly, the cached replay of that card, and the sandbox's cost per program, same run.

1. Ctrl+G -> all 10 answers scored on screen (fresh) vs `backend.generate` for the same 10
   seeds back to back (ratio; the app adds scoring, streaming to the screen and caching).
2. Ctrl+G again -> all 10 answers on screen from the cache (what a talk replays).
3. One sandboxed program (guard, limits, audit hook) vs a bare `python -I -S -c` subprocess.

    python bench/failures_ui.py [--samples 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path


async def app_run(n: int):
    from textual.widgets import Input

    from screens.app import make_app
    from screens.headless import settle
    from screens.widgets.result_view import ResultView

    app = make_app(failures_dir=Path(tempfile.mkdtemp(prefix="bench-failures-")))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await pilot.pause()
        s = app.screen
        s.query_one("#fl-samples", Input).value = str(n)
        view = s.query_one("#fl-result-0", ResultView)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            await pilot.press("ctrl+g")
            while not (view.answers and all(a is not None and a.done for a in view.answers)):
                await asyncio.sleep(0.002)
            await pilot.pause()  # the repaint with the last answer
            times.append(time.perf_counter() - t0)
            cached = all(a.cached for a in view.answers)
        backend = app.session.loaded("chat")
        variant = s.experiment.variants[0]
        from lab.failures import make_prompt

        prompt = make_prompt(backend, variant, "chat")
        settings = s.settings()
        texts = [a.text for a in view.answers]
        from dataclasses import replace

        t0 = time.perf_counter()
        direct = [backend.generate(list(prompt.ids), replace(settings, seed=1 + i), variant.max_tokens).text.strip()
                  for i in range(n)]
        engine = time.perf_counter() - t0
    return times, cached, engine, direct == texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10)
    args = ap.parse_args()
    (fresh, replay), cached, engine, same = asyncio.run(app_run(args.samples))
    print(f"count card, {args.samples} answers (SmolLM2): app {fresh:.2f} s key -> all scored on screen, engine alone "
          f"{engine:.2f} s for the same seeds, ratio {fresh / engine:.2f}; identical answers: {same}")
    print(f"cached replay: {replay * 1000:.0f} ms key -> all {args.samples} answers on screen (cached: {cached}), "
          f"{fresh / replay:.0f}x faster than sampling")
    print("sandbox cost per program: see bench/sandbox.py")


if __name__ == "__main__":
    main()
