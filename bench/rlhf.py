"""RLHF speed and quality on the tiny chat model, as ratios measured side by side in one run.

1. One RL step against the reward model (rollouts + reward model + person scoring + policy update), median
   seconds, vs sampling as many rollouts alone (lab.rollouts.sample_groups, same group and seeds, with the
   policy where RL left it):
   what the scoring and the update add to a step.
2. Reward-model training: seconds per Bradley-Terry step and in all, vs one RL step; held-out pair accuracy.

    python bench/rlhf.py [--from tiny-chat|PATH] [--steps 10]
With no tiny-chat trained yet, a cpu-quick one is trained first into a temporary folder (about 2 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def chat_checkpoint(source: str, scratch: Path) -> Path:
    from lab.errors import LabError

    if source != "tiny-chat":
        return Path(source)
    try:
        from lab.catalogue import resolve

        return Path(resolve("tiny-chat").path)
    except LabError:
        from lab.sft import PRESETS, TinyChat

        print("no tiny-chat yet: training cpu-quick first")
        for _ in TinyChat(replace(PRESETS["cpu-quick"], out_dir=str(scratch))).run():
            pass
        return scratch / "ckpt.pt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", default="tiny-chat")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    import torch

    from lab.rlhf import RLHF, RLHFConfig

    with tempfile.TemporaryDirectory() as scratch:
        path = chat_checkpoint(args.source, Path(scratch))
        cfg = RLHFConfig(rl_steps=args.steps, eval_every=10_000)
        job = RLHF.from_checkpoint(path, cfg)
        for _ in job.rank_all():
            pass
        t0 = time.perf_counter()
        for _ in job.train_reward_model():
            pass
        rm_seconds = time.perf_counter() - t0
        step_times, last = [], time.perf_counter()
        for ev in job.reinforce():
            now = time.perf_counter()
            if ev.phase == "rl" and ev.step:  # step 0 also evaluates the held-out prompts: left out
                step_times.append(now - last)
            last = now
        sample_times = []
        for step in range(args.steps):
            prompts = job.train_prompts[:cfg.rl_prompts]
            t0 = time.perf_counter()
            job._rollouts(job.policy, prompts, cfg.group, cfg.seed + 100 + step)
            sample_times.append(time.perf_counter() - t0)
    rl_step, sampling = statistics.median(step_times), statistics.median(sample_times)
    rm_step = rm_seconds / cfg.rm_steps
    n = sum(p.numel() for p in job.policy.parameters())
    print(f"tiny chat model {n:,} parameters ({job.policy.cfg.n_layer} layers x {job.policy.cfg.n_embd}), "
          f"{cfg.rl_prompts} prompts x {cfg.group} rollouts of up to {cfg.max_tokens} tokens per RL step, "
          f"torch threads {torch.get_num_threads()}")
    print(f"RL step vs the RM: {rl_step:.3f} s (median of {len(step_times)}) = {rl_step / sampling:.2f}x sampling its "
          f"rollouts alone ({sampling:.3f} s)")
    print(f"reward model: {cfg.rm_steps} steps in {rm_seconds:.2f} s ({rm_step * 1000:.1f} ms a step = "
          f"{rm_step / rl_step:.2f}x an RL step), held-out pair accuracy {job.rm_accuracy:.1%} "
          f"on {len(job._pairs(job.held_prompts))} pairs")
    print(f"curves over {args.steps} steps: rm {job.curves.rm[0]:.3f} -> {job.curves.rm[-1]:.3f}, "
          f"true {job.curves.true[0]:.3f} -> {job.curves.true[-1]:.3f}")


if __name__ == "__main__":
    main()
