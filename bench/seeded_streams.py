"""Seeded streams: speed against raw llama-cpp-python, and whether a seed's text depends on order.

The Failures and Base vs chat screens sample one answer per seed from the same prompt. This
runs seeds 1-10 (forward, then reverse) on SmolLM2 through the engine and reports the time
against a reference measured in the same run: raw llama-cpp-python evaluating the prompt
once and then, per seed, the same number of one-token decodes (no sampling). It also prints whether
the reverse order gave the same texts (it must: see lab/backends/base.py).

    python bench/seeded_streams.py [--tokens 24]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace


def raw_seconds(path: str, prompt: list[int], seeds: int, tokens: int) -> float:
    """The least a model can do: the prompt once, then per seed `tokens` one-token decodes on it."""
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=4096, n_gpu_layers=0, logits_all=False, verbose=False)
    llm.eval(prompt[:2])  # warm up
    llm.n_tokens = 0
    t0 = time.perf_counter()
    llm.eval(prompt)
    for _ in range(seeds):
        llm.n_tokens = len(prompt)
        for _ in range(tokens):
            llm.eval([prompt[-1]])
    seconds = time.perf_counter() - t0
    llm.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=24)
    args = ap.parse_args()
    from lab import catalogue
    from lab.failures import CARD_BY_KEY, make_prompt
    from lab.sampling import SamplingSettings

    b = catalogue.load(catalogue.CHAT_DEFAULT, backend="llama.cpp", device="cpu")
    variant = CARD_BY_KEY["count"].experiment().variants[0]
    prompt = list(make_prompt(b, variant, "chat").ids)
    settings = SamplingSettings(temperature=0.7, top_p=0.95, seed=0)
    seeds = list(range(1, 11))

    def text(seed: int) -> str:  # every answer runs the full length, as the reference does
        return "".join(ev.text for ev in b.stream(prompt, replace(settings, seed=seed), args.tokens,
                                                   stop_at_eos=False))

    text(0)  # warm up
    t0 = time.perf_counter()
    forward = {s: text(s) for s in seeds}
    engine = time.perf_counter() - t0
    start = len(prompt) - 8
    for k in range(start + 1, len(prompt) + 1):  # leave the prompt's end evaluated one token at a time
        b.logits(prompt[:k], prompt_len=start)
    reverse = {s: text(s) for s in reversed(seeds)}
    raw = raw_seconds(b.llm.model_path, prompt, len(seeds), args.tokens)
    print(f"10 seeds x {args.tokens} tokens after a {len(prompt)}-token prompt (SmolLM2, llama.cpp, CPU): "
          f"engine {engine:.2f} s, raw llama-cpp-python {raw:.2f} s, ratio {engine / raw:.2f}")
    print(f"reverse order, after other states, gives the same texts: {forward == reverse}")
    assert forward == reverse


if __name__ == "__main__":
    main()
