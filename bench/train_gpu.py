"""GPU training speed: MFU of the gpu-gpt2 preset (GPT-2 small's shape) for a short run.

    python bench/train_gpu.py [--steps 60] [--no-compile]

Reports median step time, tokens/s and MFU over the steps after warm-up (compile excluded).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace

from lab.train import PRESETS, Trainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as out:
        cfg = replace(PRESETS["gpu-gpt2"], max_iters=args.steps, lr_decay_iters=args.steps, eval_interval=10**9,
                      sample_interval=0, out_dir=out, batch_size=args.batch, compile=not args.no_compile)
        t = Trainer(cfg)
        print(f"{torch.cuda.get_device_name(0)}: {t.model.n_params() / 1e6:.1f}M parameters "
              f"(+ {t.model.wpe.weight.numel() / 1e6:.1f}M position embeddings), batch {cfg.batch_size} x "
              f"{cfg.block_size} tokens, bf16 autocast {t.autocast is not None}, compile {cfg.compile}", flush=True)
        tps, mfu = [], []
        for ev in t.run():
            if ev.train_loss is not None and ev.step >= 10:
                tps.append(ev.tokens_per_sec)
                if ev.mfu is not None:
                    mfu.append(ev.mfu)
            if ev.step % 10 == 0 and ev.train_loss is not None:
                print(f"step {ev.step} loss {ev.train_loss:.3f} {ev.tokens_per_sec:,.0f} tok/s "
                      f"mfu {ev.mfu * 100 if ev.mfu else float('nan'):.1f}%", flush=True)
    print(f"median over steps 10-{args.steps}: {statistics.median(tps):,.0f} tok/s, "
          f"MFU {statistics.median(mfu) * 100:.1f}% (target >= 45% on an H100); "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
