"""GPU check of the transformers backend: one prepared script for the GPU machine, with a CPU smoke mode.

    python bench/gpu_check.py make FOLDER         # here: SmolLM2-135M's config and real tokenizer (< 5 MB)
    python bench/gpu_check.py run FOLDER          # on the GPU machine (prints, and writes $OUT/gpu_check.json)
    python bench/gpu_check.py run FOLDER --cpu    # the same script on this CPU, a small shape: it works

Real weights do not fit the 64 MiB that travels, so the model is built on the device from
SmolLM2-135M's config with seeded random weights (bf16 on CUDA): the speed of a decode step
does not depend on the values of the weights. Every figure is a ratio against a reference
measured in the same run on the same machine:

- streaming tokens/s of the lab's backend (static KV cache, decode step compiled in the
  background, sampling on the device) vs Hugging Face `generate()` with its static cache
  (compiled by transformers) on the same model; and vs its dynamic cache;
- the same backend on this machine's CPU (float32, the numpy path);
- a batch of 8 samples (`generate_batch`, one forward per token) vs one sample;
- that the first token does not wait for the compile, how long the compile took, and that the
  compiled path agrees with the eager one (top-1, probabilities) and repeats a seeded sample.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                    rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1,
                    eos_token_id=2)
SMOKE = dict(SMOLLM2_135M, hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2)


def make(folder: str) -> None:
    """Write SmolLM2-135M's config (no weights) and SmolLM2's real tokenizer into `folder`."""
    import shutil

    from transformers import LlamaConfig

    from lab.backends.hf import converted_cache_folder
    from lab.catalogue import smollm2_path

    src = converted_cache_folder(str(smollm2_path()))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    LlamaConfig(**SMOLLM2_135M).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, out)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")


def _backend(model, tok, device: str, **kwargs):
    from lab.backends.hf import TransformersBackend
    from lab.types import ModelInfo

    info = ModelInfo(name="smollm2-135m-shape (random weights)", architecture="llama",
                     parameters=sum(p.numel() for p in model.parameters()),
                     vocab_size=model.config.vocab_size, context_length=model.config.max_position_embeddings,
                     quantisation=str(next(model.parameters()).dtype).replace("torch.", ""), backend="transformers",
                     device=device, has_chat_template=False, source="bench/gpu_check.py")
    return TransformersBackend(model, tok, info, device, **kwargs)


def _stream_rate(backend, ids, settings, n: int) -> tuple[float, float]:
    """(tokens/s, seconds to the first token) of one stream of n tokens that ignores EOS."""
    t0 = time.perf_counter()
    first = None
    count = 0
    for _ in backend.stream(ids, settings, n, stop_at_eos=False):
        count += 1
        first = first or time.perf_counter() - t0
    return count / (time.perf_counter() - t0), first


def _best(fn, repeats: int = 3) -> float:
    return max(fn() for _ in range(repeats))


def run(folder: str, cpu: bool, tokens: int) -> dict:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lab.sampling import SamplingSettings

    dev = "cpu" if cpu else "cuda"
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu for the smoke mode")
    card = torch.cuda.get_device_name(0) if dev == "cuda" else f"CPU ({os.cpu_count()} cores)"
    cfg = LlamaConfig(**(SMOKE if cpu else SMOLLM2_135M))
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    model = LlamaForCausalLM(cfg).to(dtype).to(dev).eval()
    ids = tok("The capital of France is Paris. The capital of Spain is", add_special_tokens=False)["input_ids"]
    greedy = SamplingSettings(temperature=0)
    figures: dict = {"card": card, "torch": torch.__version__, "tokens": tokens, "shape": cfg.to_dict()["hidden_size"]}
    print(f"device: {card}; torch {torch.__version__}; model {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"params, {dtype}; {tokens} tokens per stream")

    # The lab's backend: the compile starts in the background at construction.
    t_build = time.perf_counter()
    options = {"backend": "eager", "dynamic": False} if cpu else None  # CPU smoke: the wiring, not inductor
    lab = _backend(model, tok, dev, decode="static", compile_options=options) if cpu else _backend(model, tok, dev)
    activity = lab.activity
    rate_eager, first = _stream_rate(lab, ids, greedy, tokens)
    figures["first_token_s_while_compiling"] = first
    figures["lab_tok_s_before_compile"] = rate_eager
    print(f"lab, while the step compiles (status {activity!r}): first token after {first:.3f} s, "
          f"{rate_eager:.1f} tok/s")
    assert lab._static.wait(600), "the compile did not finish"
    figures["compile_s"] = time.perf_counter() - t_build
    print(f"compile: {lab._static.status} after {figures['compile_s']:.1f} s")
    probe = ids + [13]  # one decode step after the prompt
    eager_logits = lab.logits(probe, prompt_len=len(ids))  # on the state started before the switch: eager
    lab.logits(tok(" unrelated", add_special_tokens=False)["input_ids"])  # a fresh prompt: the static path
    lab_rate = _best(lambda: _stream_rate(lab, ids, greedy, tokens)[0])
    assert lab._on_static, "the stream did not use the static cache"
    figures["lab_tok_s"] = lab_rate
    fast_logits = lab.logits(probe, prompt_len=len(ids))  # the compiled step on the static cache
    pe, pf = np.exp(eager_logits - eager_logits.max()), np.exp(fast_logits - fast_logits.max())
    pe, pf = pe / pe.sum(), pf / pf.sum()
    figures["tv_compiled_vs_eager"] = float(0.5 * np.abs(pe - pf).sum())
    figures["top1_agree"] = int(pe.argmax()) == int(pf.argmax())
    seeded = SamplingSettings(temperature=1.0, seed=7)
    figures["seeded_repeats"] = lab.generate(ids, seeded, 32).ids == lab.generate(ids, seeded, 32).ids
    print(f"lab, compiled static path: {lab_rate:.1f} tok/s; compiled vs eager: total variation "
          f"{figures['tv_compiled_vs_eager']:.4f}, top-1 agree {figures['top1_agree']}; seeded sample repeats "
          f"{figures['seeded_repeats']}")

    # Hugging Face generate() on the same model: static cache (compiled by transformers on CUDA), dynamic cache.
    x = torch.tensor([ids], device=dev)

    def hf_rate(**kw) -> float:
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(x, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, **kw)
        if dev == "cuda":
            torch.cuda.synchronize()
        return (out.shape[1] - x.shape[1]) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    hf_rate(cache_implementation="static")
    figures["hf_static_first_call_s"] = time.perf_counter() - t0
    figures["hf_static_tok_s"] = _best(lambda: hf_rate(cache_implementation="static"))
    figures["hf_dynamic_tok_s"] = _best(lambda: hf_rate(), 2)
    print(f"HF generate(): static cache {figures['hf_static_tok_s']:.1f} tok/s (first call "
          f"{figures['hf_static_first_call_s']:.1f} s), dynamic cache {figures['hf_dynamic_tok_s']:.1f} tok/s")

    # Batch of 8 vs one sample (sampled, temperature 1), the lab's backend, both on their compiled static path.
    sampled = SamplingSettings(temperature=1.0)

    def batch_rate(n: int) -> float:
        t0 = time.perf_counter()
        results = lab.generate_batch(ids, sampled, list(range(n)), tokens, stop_at_eos=False)
        return sum(len(r.ids) for r in results) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for n in (1, 8):  # each batch size gets its own static cache and compiled step, in the background
        lab.generate_batch(ids, sampled, list(range(n)), 2)
    for n in (1, 8):
        assert lab._batch_decoders[n].wait(600), f"the batch-{n} compile did not finish"
    figures["batch_compile_s"] = time.perf_counter() - t0
    print(f"batch decode steps (1, 8) compiled in {figures['batch_compile_s']:.1f} s: "
          f"{lab._batch_decoders[8].status}")
    figures["batch1_tok_s"] = _best(lambda: batch_rate(1), 2)
    figures["batch8_tok_s"] = _best(lambda: batch_rate(8), 2)
    figures["single_sampled_tok_s"] = _best(lambda: _stream_rate(lab, ids, sampled, tokens)[0], 2)
    print(f"batch: 8 samples {figures['batch8_tok_s']:.1f} tok/s, 1 sample through the batch path "
          f"{figures['batch1_tok_s']:.1f} tok/s, one sampled stream {figures['single_sampled_tok_s']:.1f} tok/s")

    # The same backend on this machine's CPU (float32, numpy sampling).
    cpu_model = copy.deepcopy(model).to(torch.float32).to("cpu")
    on_cpu = _backend(cpu_model, tok, "cpu", decode="dynamic")
    n_cpu = min(tokens, 64)
    figures["cpu_tok_s"] = _best(lambda: _stream_rate(on_cpu, ids, greedy, n_cpu)[0], 2)
    print(f"same backend on this machine's CPU ({os.cpu_count()} cores, float32): {figures['cpu_tok_s']:.1f} tok/s")

    ratios = {
        "lab / HF generate static": figures["lab_tok_s"] / figures["hf_static_tok_s"],
        "lab / HF generate dynamic": figures["lab_tok_s"] / figures["hf_dynamic_tok_s"],
        "lab device / lab CPU": figures["lab_tok_s"] / figures["cpu_tok_s"],
        "batch 8 / batch 1": figures["batch8_tok_s"] / figures["batch1_tok_s"],
        "batch 8 / one compiled stream": figures["batch8_tok_s"] / figures["single_sampled_tok_s"],
    }
    figures["ratios"] = ratios
    print(f"\nratios on {card} (targets: >= 1.0, -, >= 3, >= 5, -):")
    for name, value in ratios.items():
        print(f"  {name:<32} {value:6.2f}x")
    lab.close()
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_check.json").write_text(json.dumps(figures, indent=1))
    print("GPU CHECK OK" if not cpu else "CPU SMOKE OK")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["make", "run"])
    parser.add_argument("folder")
    parser.add_argument("--cpu", action="store_true", help="smoke mode: a small shape on this CPU")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per stream (128 on a GPU, 16 with --cpu)")
    args = parser.parse_args(argv)
    if args.action == "make":
        make(args.folder)
    else:
        run(args.folder, args.cpu, args.tokens or (16 if args.cpu else 128))


if __name__ == "__main__":
    main()
