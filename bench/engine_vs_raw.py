"""Engine vs raw llama-cpp-python, same model, same run.

1. Stream 128 tokens through the engine and through raw llama-cpp-python; print tokens/s
   and the ratio engine/raw (target >= 0.9).
2. One-token step after a 500-token prefix: the engine's KV-cache step vs a raw single
   `eval` of one token on top of the same cached prefix (target <= 1.2x).

    python bench/engine_vs_raw.py [--model smollm2-135m-instruct] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from lab import catalogue
from lab.sampling import SamplingSettings


def raw_stream(llm, prompt_ids: list[int], n: int) -> float:
    """Greedy 128-token stream with raw llama-cpp-python's own sampler; returns tokens/s."""
    llm.reset()
    t0 = time.perf_counter()
    count = 0
    for _ in llm.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
        count += 1
        if count >= n:
            break
    return count / (time.perf_counter() - t0)


def engine_stream(backend, prompt_ids: list[int], n: int) -> float:
    backend._evaluated, backend._last = [], None  # start cold, like the raw run
    gen = backend.stream(prompt_ids, SamplingSettings(temperature=0.0), max_tokens=n, stop_at_eos=False)
    t0 = time.perf_counter()
    count = sum(1 for _ in gen)
    return count / (time.perf_counter() - t0)


def raw_step(llm, prefix: list[int], token: int) -> float:
    llm.reset()
    llm.eval(prefix)
    t0 = time.perf_counter()
    llm.eval([token])
    return time.perf_counter() - t0


def engine_step(backend, prefix: list[int], token: int) -> float:
    backend.next_token(prefix)  # prefix cached
    t0 = time.perf_counter()
    backend.next_token(prefix + [token])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=catalogue.CHAT_DEFAULT)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    backend = catalogue.load(args.model, backend="llama.cpp", device="cpu")
    from llama_cpp import Llama

    raw = Llama(model_path=catalogue.resolve(args.model).path, n_ctx=backend.info.context_length,
                n_gpu_layers=0, logits_all=False, verbose=False)
    prompt = backend.tokenize("Once upon a time, in a small village by the sea,")
    from lab.paths import default_corpus

    prefix = backend.tokenize(default_corpus().read_text()[:4000])[:500]
    token = prefix[-1]

    print(f"model {args.model} ({backend.info.quantisation}, vocab {backend.info.vocab_size}), "
          f"llama-cpp-python, CPU, {args.repeats} alternating repeats")
    raw_tps, eng_tps = [], []
    for _ in range(args.repeats):
        raw_tps.append(raw_stream(raw, prompt, args.tokens))
        eng_tps.append(engine_stream(backend, prompt, args.tokens))
    r, e = statistics.median(raw_tps), statistics.median(eng_tps)
    print(f"stream {args.tokens} tokens: raw {r:.1f} tok/s, engine {e:.1f} tok/s, "
          f"ratio engine/raw {e / r:.3f} (target >= 0.9)")

    raw_ms, eng_ms = [], []
    for _ in range(args.repeats * 3):
        raw_ms.append(raw_step(raw, prefix, token) * 1000)
        eng_ms.append(engine_step(backend, prefix, token) * 1000)
    r, e = statistics.median(raw_ms), statistics.median(eng_ms)
    print(f"one-token step after a {len(prefix)}-token prefix: raw eval {r:.2f} ms, engine {e:.2f} ms, "
          f"ratio {e / r:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
