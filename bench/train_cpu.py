"""Training speed and quality: nanoGPT's README CPU Shakespeare configuration, headless.

Character level, 4 layers, 4 heads, width 128, context 64, batch 12, 2,000 iterations,
dropout 0, lr decay over 2,000 iterations (our `cpu` preset). Prints median ms per iteration,
tokens/s, total wall time and the final validation loss.

The reference, measured in the same run and interleaved step by step with the lab's loop (so a
busy machine slows both alike): a bare step (the same model shape, optimizer, batch and gradient
clipping, no events, evaluation or samples) on a second model. Their ratio shows what the lab's
loop costs on top of the arithmetic (target: >= 0.95).

nanoGPT's own train.py, run side by side with the lab: bench/train_vs_nanogpt.py. Figures from
elsewhere, for orientation only (DESIGN.md, nanoGPT's own train.py on this machine
type): 2 min 24 s wall, 55-75 ms per iteration, final val loss 1.886.

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
NANOGPT_VAL = 1.886


def bare_step(t: Trainer) -> float:
    """Seconds for one plain forward/backward/clip/step on `t`'s model (its loop is not used)."""
    import torch

    t0 = time.perf_counter()
    x, y = t.batch("train")
    _, loss = t.model(x, y)
    t.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(t.model.parameters(), t.cfg.grad_clip)
    t.optimizer.step()
    loss.item()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = replace(PRESETS["cpu"], max_iters=args.iters, lr_decay_iters=args.iters, out_dir=out)
        bare = Trainer(replace(cfg, seed=cfg.seed + 1))
        trainer = Trainer(cfg)
        lab_times, bare_times, last, wall = [], [], None, 0.0
        events = trainer.run()
        while True:
            t0 = time.perf_counter()
            ev = next(events, None)
            dt = time.perf_counter() - t0
            if ev is None:
                break
            wall += dt
            last = ev
            if ev.train_loss is not None and ev.val_loss is None and ev.sample is None and not ev.checkpoint:
                lab_times.append(dt)  # a plain training step, as the app sees it (event included)
                bare_times.append(bare_step(bare))
        trainer.cfg.eval_iters = 200  # a steadier estimate of the same final model
        _, val_200 = trainer.evaluate()
    ms = statistics.median(lab_times[10:]) * 1000  # the first steps warm up
    ref_ms = statistics.median(bare_times[10:]) * 1000
    tps = cfg.batch_size * cfg.block_size / (ms / 1000)
    print(f"{args.iters} iterations on {trainer.device}: median {ms:.1f} ms/iter, {tps:,.0f} tok/s, "
          f"lab loop wall {wall:.0f} s, final val loss {last.val_loss:.4f} (20 batches, as nanoGPT reports it; "
          f"{val_200:.4f} over 200 batches)")
    print(f"bare reference step, interleaved in the same run: median {ref_ms:.1f} ms; the lab's loop runs at "
          f"{ref_ms / ms:.2f}x its speed (target >= 0.95)")
    print(f"for orientation, nanoGPT's train.py measured elsewhere: {NANOGPT_MS_PER_ITER[0]:.0f}-"
          f"{NANOGPT_MS_PER_ITER[1]:.0f} ms/iter, val {NANOGPT_VAL}")


if __name__ == "__main__":
    main()
