"""Training speed and quality: nanoGPT's README CPU Shakespeare configuration, headless.

Character level, 4 layers, 4 heads, width 128, context 64, batch 12, 2,000 iterations,
dropout 0, lr decay over 2,000 iterations (our `cpu` preset). Prints median ms per iteration,
tokens/s, total wall time and the final validation loss.

The reference measured in the same run: a bare loop (the same model, optimizer, batches and
gradient clipping, no events, evaluation or samples) timed just before the lab's loop. Their
ratio shows what the lab's loop costs on top of the arithmetic (target: >= 0.95).

Figures from elsewhere, for orientation only (DESIGN.md, nanoGPT's own train.py on this machine
type): 2 min 24 s wall, 55-75 ms per iteration, final val loss 1.886.

    python bench/train_cpu.py [--iters 2000] [--ref-iters 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace

from lab.train import PRESETS, Trainer

NANOGPT_MS_PER_ITER = (55.0, 75.0)
NANOGPT_VAL = 1.886


def bare_loop_ms(cfg, iters: int) -> float:
    """Median ms per step of a plain forward/backward/clip/step loop on a fresh trainer's model."""
    import torch

    t = Trainer(cfg)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        x, y = t.batch("train")
        _, loss = t.model(x, y)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t.model.parameters(), cfg.grad_clip)
        t.optimizer.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[10:]) * 1000  # the first steps warm up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--ref-iters", type=int, default=200, help="steps of the bare reference loop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = replace(PRESETS["cpu"], max_iters=args.iters, lr_decay_iters=args.iters, out_dir=out)
        ref_ms = bare_loop_ms(cfg, args.ref_iters)
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
    # tokens_per_sec averages the last 20 steps; the median of those is the loop's steady pace
    ms = statistics.median(step_times) * 1000
    tps = cfg.batch_size * cfg.block_size / (ms / 1000)
    print(f"{args.iters} iterations on {trainer.device}: median {ms:.1f} ms/iter, {tps:,.0f} tok/s, wall {wall:.0f} s, "
          f"final val loss {last.val_loss:.4f} (20 batches, as nanoGPT reports it; {val_200:.4f} over 200 batches)")
    print(f"bare reference loop, same run: median {ref_ms:.1f} ms/iter over {args.ref_iters} steps; "
          f"the lab's loop runs at {ref_ms / ms:.2f}x its speed (target >= 0.95)")
    print(f"for orientation, nanoGPT's train.py measured elsewhere: {NANOGPT_MS_PER_ITER[0]:.0f}-"
          f"{NANOGPT_MS_PER_ITER[1]:.0f} ms/iter, val {NANOGPT_VAL}")


if __name__ == "__main__":
    main()
