"""Training speed and quality: nanoGPT's README CPU Shakespeare configuration, headless.

Character level, 4 layers, 4 heads, width 128, context 64, batch 12, 2,000 iterations,
dropout 0, lr decay over 2,000 iterations (our `cpu` preset). Prints median ms per iteration,
tokens/s, total wall time and the final validation loss.

Reference (DESIGN.md, nanoGPT's own train.py on this machine type): 2 min 24 s wall,
55-75 ms per iteration (10,200-14,000 tok/s), final val loss 1.886. Target: >= 1.2x its tokens/s,
val loss <= 1.88.

    python bench/train_cpu.py [--iters 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace

from lab.train import PRESETS, Trainer

NANOGPT_MS_PER_ITER = (55.0, 75.0)
NANOGPT_WALL_S = 144.0
NANOGPT_VAL = 1.886


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = replace(PRESETS["cpu"], max_iters=args.iters, lr_decay_iters=args.iters, out_dir=out)
        t0 = time.perf_counter()
        trainer = Trainer(cfg)
        step_times, last = [], None
        for ev in trainer.run():
            if ev.train_loss is not None and ev.val_loss is None and ev.sample is None:
                step_times.append(cfg.batch_size * cfg.block_size / ev.tokens_per_sec)
            last = ev
        wall = time.perf_counter() - t0
        trainer.cfg.eval_iters = 200  # a steadier estimate of the same final model
        _, val_200 = trainer.evaluate()
    ms = statistics.median(step_times) * 1000
    tps = cfg.batch_size * cfg.block_size / (ms / 1000)
    ref_tps = [cfg.batch_size * cfg.block_size / (m / 1000) for m in NANOGPT_MS_PER_ITER]
    print(f"{args.iters} iterations on {trainer.device}: median {ms:.1f} ms/iter, {tps:,.0f} tok/s, wall {wall:.0f} s, "
          f"final val loss {last.val_loss:.4f} (20 batches, as nanoGPT reports it; {val_200:.4f} over 200 batches)")
    print(f"vs nanoGPT reference ({NANOGPT_MS_PER_ITER[0]:.0f}-{NANOGPT_MS_PER_ITER[1]:.0f} ms/iter, "
          f"{ref_tps[1]:,.0f}-{ref_tps[0]:,.0f} tok/s, {NANOGPT_WALL_S:.0f} s, val {NANOGPT_VAL}): "
          f"tokens/s ratio {tps / ref_tps[0]:.2f}-{tps / ref_tps[1]:.2f} (target >= 1.2), "
          f"val loss {'<=' if last.val_loss <= 1.88 else '>'} 1.88")


if __name__ == "__main__":
    main()
