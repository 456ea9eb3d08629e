"""RL speed and effect on the tiny chat model, as ratios measured in one run (medians of interleaved repeats).

1. Rollouts: G=8 samples of one prompt in one batch (lab.rollouts.sample_groups, one forward per token
   over a KV cache) vs the same 8 generated one after another with the same code (group=1, eight calls).
   Target >= 4x on a 2-core CPU.
2. One RL step end to end (rollouts + checker scores + update) on the `tiny` preset: seconds per step,
   and the held-out pass rate after N steps against the SFT model's before RL (greedy, same problems).

    python bench/rl.py [--base PATH/tiny-chat/ckpt.pt] [--steps 20] [--rule grpo|keep] [--repeats 5] [--prompts 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace


def rollouts(model, vocab, prompts, tokens: int, repeats: int) -> None:
    from lab.rollouts import sample_groups

    ratios = []
    for i, prompt in enumerate(prompts):
        batched, one_by_one = [], []
        for k in range(repeats):  # interleaved: both see the same machine load
            t0 = time.perf_counter()
            groups = sample_groups(model, vocab, [prompt], 8, tokens, seed=k)
            batched.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for s in range(8):
                sample_groups(model, vocab, [prompt], 1, tokens, seed=k * 8 + s)
            one_by_one.append(time.perf_counter() - t0)
        n = sum(len(r.ids) for r in groups[0])
        b, o = statistics.median(batched), statistics.median(one_by_one)
        ratios.append(o / b)
        print(f"rollouts of held-out prompt {i}, G=8, up to {tokens} tokens: batched {b:.3f}s ({n} tokens in the "
              f"last group) · one after another {o:.3f}s · batched is {o / b:.1f}x faster")
    print(f"rollouts: batched is {statistics.median(ratios):.1f}x faster than one after another (median of "
          f"{len(prompts)} prompts; target >= 4x)")


def rl_steps(base: str, steps: int, rule: str) -> None:
    from lab.rl import PRESETS, trainer_for

    cfg = replace(PRESETS["tiny" if rule == "grpo" else "tiny-keep"], base=base, steps=steps,
                  eval_interval=steps, out_dir=tempfile.mkdtemp(prefix="bench-rl-"))
    t = trainer_for(cfg)
    events = list(t.run())
    before, after = events[0].held_out, events[-1].held_out
    secs = statistics.median(e.seconds for e in events[1:])
    print(f"RL ({rule}) on {t.model.n_params():,} parameters, {cfg.prompts_per_step} prompts x {cfg.group} samples: "
          f"{secs:.2f} s/step (median over {steps}, held-out scoring not included)")
    print(f"held-out pass rate ({len(t.held_set)} problems, greedy): SFT before RL {before:.0%} · after {steps} "
          f"steps {after:.0%} · ratio {after / before if before else float('nan'):.2f}")


def main() -> None:
    from lab.conversations import render_prompt
    from lab.rl import default_base, load_chat, problems

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default=str(default_base()))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rule", default="grpo", choices=["grpo", "keep"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompts", type=int, default=3, help="held-out prompts to time rollouts on")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: a tiny model gains nothing from more, "
                                                          "and on a loaded 2-core machine they wait on each other)")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    model, vocab, tc = load_chat(a.base)
    _, held = problems(tc, ("apples", "letters", "arithmetic"))
    rollouts(model, vocab, [list(render_prompt(vocab.chat_format(), e.prompt)) for e in held[:a.prompts]], a.tokens,
             a.repeats)
    rl_steps(a.base, a.steps, a.rule)


if __name__ == "__main__":
    main()
