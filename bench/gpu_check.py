"""GPU check for the transformers backend (run where CUDA exists; the CPU run is the reference).

    python bench/gpu_check.py make FOLDER    # here: a small random-weight Llama + SmolLM2's tokenizer
    python bench/gpu_check.py run FOLDER     # on the GPU machine

A real model does not fit the 64 MiB that travels to the GPU machine, so this checks the device
path with a small Llama of random weights (seeded) and SmolLM2's real tokenizer: device choice
(CUDA first), bf16 on GPU, KV-cache reuse, the logit lens, seeded streams, and agreement between
the GPU (bf16) and the CPU (float32) distributions.
"""

from __future__ import annotations

import sys
import time


def make(folder: str) -> None:
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lab.backends.hf import converted_cache_folder
    from lab.catalogue import smollm2_path

    src = converted_cache_folder(str(smollm2_path()))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, folder)
    print(f"wrote {folder}")


def run(folder: str) -> None:
    import torch

    from lab import catalogue
    from lab.devices import pick_torch_device
    from lab.sampling import SamplingSettings

    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, "
          f"device {torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'}")
    print(f"pick_torch_device('auto') -> {pick_torch_device('auto')}")
    gpu = catalogue.load(folder, device="auto")
    cpu = catalogue.load(folder, device="cpu")
    print(f"gpu backend: device={gpu.info.device}, quantisation={gpu.info.quantisation}; "
          f"cpu backend: device={cpu.info.device}, quantisation={cpu.info.quantisation}")
    assert cpu.info.device == "cpu" and gpu.info.device == ("cuda" if torch.cuda.is_available() else "cpu")
    ids = gpu.tokenize("The capital of France is Paris. " * 20)
    dg, dc = gpu.next_token(ids, 5), cpu.next_token(ids, 5)
    diff = max(abs(a.prob - b.prob) for a, b in zip(dg.top, dc.top))
    print(f"top-5 ids gpu {[t.id for t in dg.top]} cpu {[t.id for t in dc.top]}; max prob diff {diff:.4f}")
    g_logits, c_logits = gpu.logits(ids), cpu.logits(ids)
    import numpy as np

    pg = np.exp(g_logits - g_logits.max()); pg /= pg.sum()
    pc = np.exp(c_logits - c_logits.max()); pc /= pc.sum()
    print(f"total variation distance gpu(bf16) vs cpu(fp32): {0.5 * np.abs(pg - pc).sum():.4f}")
    before = gpu.tokens_evaluated
    gpu.next_token(ids + [13])
    print(f"KV cache on GPU: extending by one token evaluated {gpu.tokens_evaluated - before} token(s)")
    assert gpu.tokens_evaluated - before == 1
    layers = gpu.lens(ids, top_k=1)
    print(f"logit lens: {len(layers)} readouts; last layer top-1 {layers[-1].top[0].id} "
          f"== model top-1 {gpu.next_token(ids, 1).top[0].id}")
    assert layers[-1].top[0].id == gpu.next_token(ids, 1).top[0].id
    s = SamplingSettings(temperature=1.0, seed=7)
    a, b = gpu.generate(ids, s, 32), gpu.generate(ids, s, 32)
    assert a.ids == b.ids
    for name, backend in (("gpu", gpu), ("cpu", cpu)):
        t0 = time.perf_counter()
        r = backend.generate(ids, SamplingSettings(temperature=0), 64)
        print(f"{name}: 64 greedy tokens in {time.perf_counter() - t0:.2f} s ({len(r.ids) / (time.perf_counter() - t0):.0f} tok/s)")
    print("GPU CHECK OK")


if __name__ == "__main__":
    {"make": make, "run": run}[sys.argv[1]](sys.argv[2])
