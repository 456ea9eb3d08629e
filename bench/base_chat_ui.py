"""Base vs chat speed: tokens/s in the app's panes against raw llama-cpp-python, same run.

1. One pane (the chat model alone) vs a raw llama-cpp-python stream of the same model and
   settings, measured just before and just after the pane, over `--rounds` rounds; the ratio of
   each round (pane / the mean of its two raw streams) and their median (target >= 0.9). On a
   shared 2-core machine a single raw figure taken after the app can be off several times over.
2. Both panes at once vs the two raw streams run back to back (target >= 0.8; above 1 means
   the two models really run in parallel on the cores).
3. Esc -> both streams stopped (median over a few runs).

    python bench/base_chat_ui.py [--tokens 96] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

PROMPT = "Once upon a time, in a small village by the sea,"


def raw_tps(path: str, ids: list[int], n: int) -> float:
    """Tokens/s of a raw stream (the model load is not timed)."""
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=4096, n_gpu_layers=0, logits_all=False, verbose=False)
    t0 = time.perf_counter()
    count = 0
    for _ in llm.generate(ids, temp=0.8, top_p=0.95, top_k=0, min_p=0.0, reset=True):
        count += 1
        if count >= n:
            break
    tps = count / (time.perf_counter() - t0)
    llm.close()
    return tps


async def app_run(n: int, only_chat: bool):
    from textual.widgets import Input

    from screens.app import make_app
    from screens.headless import settle

    app = make_app()
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await pilot.pause()
        s = app.screen
        s.query_one("#bc-prompt", Input).value = PROMPT
        s.query_one("#bc-max-tokens", Input).value = str(n)
        s.query_one("#bc-system-on").value = False
        s.use_cache = False  # measure sampling, not the replay of a cached sample
        if only_chat:
            app.session._backends.pop("base")  # the base pane sits this one out
        ids = {r: (list(s.request(r)[1].ids) if app.session.loaded(r) else None) for r in ("base", "chat")}
        paths = {r: (app.session.loaded(r).llm.model_path if app.session.loaded(r) else None) for r in ("base", "chat")}
        t0 = time.perf_counter()
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        wall = time.perf_counter() - t0
        await pilot.pause()
        counts = {r: len(s.pane(r).samples[0].events) for r in ("base", "chat") if s.pane(r).samples}
        shown_tps = {r: len(s.pane(r).samples[0].events) / s.pane(r).samples[0].seconds
                     for r in ("base", "chat") if s.pane(r).samples}
        # cancel latency
        cancels = []
        s.query_one("#bc-max-tokens", Input).value = "2000"
        for _ in range(3):
            await pilot.press("ctrl+g")
            await asyncio.sleep(0.5)
            t1 = time.perf_counter()
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            cancels.append(time.perf_counter() - t1)
    return counts, wall, ids, paths, cancels, shown_tps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.tokens

    ratios = []
    for r in range(args.rounds):
        if r == 0:  # the first app run finds the model's path and prompt ids; its raw "before" runs after it
            counts, wall, ids, paths, _, shown = asyncio.run(app_run(n, only_chat=True))
            before = raw_tps(paths["chat"], ids["chat"], counts["chat"])
        else:
            before = raw_tps(paths["chat"], ids["chat"], counts["chat"])
            counts, wall, ids, paths, _, shown = asyncio.run(app_run(n, only_chat=True))
        after = raw_tps(paths["chat"], ids["chat"], counts["chat"])
        raw_chat, pane = (before + after) / 2, shown["chat"]
        ratios.append(pane / raw_chat)
        print(f"one pane (SmolLM2 chat, {counts['chat']} tokens), round {r + 1}: app {pane:.1f} tok/s as the pane "
              f"measures its stream ({counts['chat'] / wall:.1f} tok/s from key press to the end), raw "
              f"llama-cpp-python {before:.1f} / {after:.1f} tok/s around it, ratio {ratios[-1]:.2f}", flush=True)
    print(f"one pane: median ratio {statistics.median(ratios):.2f} over {len(ratios)} rounds (target >= 0.9)")

    counts, wall, ids, paths, cancels, _ = asyncio.run(app_run(n, only_chat=False))
    rb = raw_tps(paths["base"], ids["base"], counts["base"])
    rc = raw_tps(paths["chat"], ids["chat"], counts["chat"])
    raw_wall = counts["base"] / rb + counts["chat"] / rc  # the two raw streams back to back
    both = (counts["base"] + counts["chat"]) / wall
    raw_both = (counts["base"] + counts["chat"]) / raw_wall
    print(f"both panes ({counts['base']} + {counts['chat']} tokens): app {both:.1f} tok/s together, raw back to back "
          f"{raw_both:.1f} tok/s ({rb:.1f} and {rc:.1f} tok/s each), ratio {both / raw_both:.2f} (target >= 0.8)")
    print(f"Esc -> both streams stopped: median {statistics.median(cancels) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{c * 1000:.0f}' for c in cancels)} ms; target <= 500 ms)")


if __name__ == "__main__":
    main()
