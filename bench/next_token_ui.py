"""Next-token screen speed: candidate key -> new bars on screen, after a 500-token prompt.

Reference, measured in the same run on the same model: a raw llama-cpp-python one-token
decode on top of the same 500-token prefix (target: screen <= 1.2x raw). Also checks that
changing the temperature redraws without any model call.

    python bench/next_token_ui.py [--steps 20] [--size 120x40]

Three patterns: keys back to back (each as soon as the bars are drawn), and at a person's pace
(0.4 s to read the bars) picking candidate 1 or a random candidate 1-9. The screen computes the
states one key away in the background while the bars are read.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tokens_ui import track_repaints  # bench/ is on the path when a bench script runs


def raw_decodes(path: str, prefix: list[int], steps: int) -> list[float]:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=4096, n_gpu_layers=0, logits_all=False, verbose=False)
    llm.eval(prefix)
    times = []
    token = prefix[-1]
    for _ in range(steps):
        t0 = time.perf_counter()
        llm.eval([token])
        times.append(time.perf_counter() - t0)
    llm.close()
    return times


async def screen_steps(steps: int, size: tuple[int, int]) -> tuple[dict[str, list[float]], list[int], str, int, int]:
    from textual.widgets import Input, TextArea

    from lab.paths import default_corpus
    from screens.app import make_app
    from screens.headless import settle

    app = make_app()
    times = []
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        backend = app.session.loaded("chat")
        text = default_corpus().read_text()[:4000]
        ids = backend.tokenize(text)[:500]
        prompt = backend.detokenize(ids[1:] if ids[0] == backend.llm.token_bos() else ids)
        screen.query_one("#next-prompt", TextArea).load_text(prompt)
        await settle(app, pilot)
        await pilot.press("escape")
        prefix = list(screen.explorer.ids)
        model_path = backend.llm.model_path
        ends = track_repaints(screen)
        import random

        rng = random.Random(7)
        patterns = {  # name -> (pause before each key, which candidate key)
            "back to back, key 1": (0.0, lambda: "1"),
            "a person's pace (0.4 s), key 1": (0.4, lambda: "1"),
            "a person's pace (0.4 s), keys 1-9 at random": (0.4, lambda: str(rng.randint(1, 9))),
        }
        times: dict[str, list[float]] = {}
        for name, (pause, key) in patterns.items():
            times[name] = []
            for _ in range(steps):
                if pause:
                    await asyncio.sleep(pause)
                n = len(screen.explorer.ids)
                ends.clear()
                t0 = time.perf_counter()
                await pilot.press(key())
                while len(screen.explorer.ids) == n or screen.explorer.cached(screen.explorer.ids) is None:
                    await asyncio.sleep(0.0005)
                await pilot.pause()
                await pilot.pause()
                times[name].append(ends[-1] - t0)
        calls = screen.explorer.model_calls
        for t in ("0.5", "0", "1.3", "1"):
            screen.query_one("#next-temperature", Input).value = t
            await pilot.pause()
        extra_calls = screen.explorer.model_calls - calls
        ahead = screen.explorer.prefetch_calls
    return times, prefix, model_path, extra_calls, ahead


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", default="120x40", help="terminal columns x lines, e.g. 80x24 or 200x50")
    args = ap.parse_args()
    size = tuple(int(n) for n in args.size.lower().split("x"))
    times, prefix, path, extra, ahead = asyncio.run(screen_steps(args.steps, size))
    raw = raw_decodes(path, prefix, args.steps)
    r = statistics.median(raw[2:]) * 1000
    print(f"candidate key -> new bars at {args.size} after a {len(prefix)}-token prompt (SmolLM2, llama.cpp, CPU); "
          f"raw one-token decode {r:.1f} ms (target <= 1.2x):")
    for name, ts in times.items():
        s = statistics.median(ts[2:]) * 1000
        print(f"  {name}: median {s:.1f} ms, p90 {statistics.quantiles(ts[2:], n=10)[-1] * 1000:.1f} ms, "
              f"ratio {s / r:.2f}")
    print(f"  (states computed ahead in the background: {ahead}; slowest keys, ms: "
          f"{sorted(round(t * 1000) for t in times[name])[-4:]})")
    print(f"temperature changed 4 times: {extra} model calls (must be 0)")
    assert extra == 0


if __name__ == "__main__":
    main()
