"""The two RL update rules on the tiny GPT, over lab.rollouts' groups (headless, plain torch).

    adv = [group_advantages(rs) for rs in rewards]           # per group: (r - mean) / (std + eps)
    info = policy_gradient_step(model, opt, groups, adv, prompts=prompt_ids, ref_model=ref, kl_coef=0.05)
    info = keep_step(model, opt, groups, rewards, prompts=prompt_ids)   # SFT on the rollouts that passed

group_advantages: the group's mean and (population) std over its finite rewards; a NaN reward (a
broken scorer) gets advantage 0 and takes no part in the stats; all rewards equal => exactly 0.

policy_gradient_step (GRPO-style, one on-policy step, so the clipped ratio is 1 and drops out):
loss = -sum over all response tokens of A_row * log pi(token) / number of tokens (token-level, as
DAPO), plus kl_coef * the mean of the k3 estimator of KL(pi || ref) per token,
k3 = exp(ref - logp) - (ref - logp) - 1 (>= 0, unbiased). When every advantage is 0 and there is no
KL term, the step is skipped (no optimizer step, so AdamW's weight decay does not move the weights).

keep_step ("keep the good ones", rejection sampling / expert iteration): cross-entropy on the tokens
of the rollouts with reward > 0 (the assistant's tokens only: the prompt is context, not target).
Both return a dict of floats: loss, tokens, kl, skipped (1.0 when nothing was updated).
"""

from __future__ import annotations

import math

from lab.errors import LabError
from lab.rollouts import Rollout, sequence_logprobs

EPS = 1e-6


def group_advantages(rewards) -> list[float]:
    """(r - mean) / (std + eps) over the group's finite rewards; NaN -> 0; all equal -> all exactly 0."""
    rs = [float(r) for r in rewards]
    finite = [r for r in rs if math.isfinite(r)]
    if len(finite) < 2:
        return [0.0] * len(rs)
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((r - mean) ** 2 for r in finite) / len(finite))
    if std == 0.0:
        return [0.0] * len(rs)
    return [(r - mean) / (std + EPS) if math.isfinite(r) else 0.0 for r in rs]


def _rows(groups: list[list[Rollout]], prompts, values) -> list[tuple[list[int], tuple[int, ...], float]]:
    if len(groups) != len(prompts) or len(groups) != len(values):
        raise LabError(f"{len(groups)} groups, {len(prompts)} prompts and {len(values)} value lists: "
                       "they must match.")
    rows = []
    for g, p, vs in zip(groups, prompts, values):
        if len(g) != len(vs):
            raise LabError(f"a group has {len(g)} rollouts and {len(vs)} values.")
        rows += [(list(p), r.ids, float(v)) for r, v in zip(g, vs) if r.ids]
    return rows


def policy_gradient_step(model, optimizer, groups: list[list[Rollout]], advantages, ref_model=None,
                         kl_coef: float = 0.0, *, prompts) -> dict:
    """One GRPO-style update (see the module docstring); `prompts` are the ids each group was sampled from."""
    import torch

    rows = _rows(groups, prompts, advantages)
    use_kl = ref_model is not None and kl_coef > 0
    if not rows or (not use_kl and all(a == 0.0 for _, _, a in rows)):
        return {"loss": 0.0, "tokens": 0.0, "kl": 0.0, "skipped": 1.0}
    model.train()
    lps = sequence_logprobs(model, [p for p, _, _ in rows], [r for _, r, _ in rows])
    tokens = sum(len(lp) for lp in lps)
    pg = -sum(a * lp.sum() for (_, _, a), lp in zip(rows, lps)) / tokens
    kl = torch.zeros(())
    if use_kl:
        with torch.no_grad():
            refs = sequence_logprobs(ref_model, [p for p, _, _ in rows], [r for _, r, _ in rows])
        kl = sum((torch.exp(ref - lp) - (ref - lp) - 1).sum() for ref, lp in zip(refs, lps)) / tokens
    loss = pg + kl_coef * kl if use_kl else pg
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return {"loss": float(loss), "tokens": float(tokens), "kl": float(kl), "skipped": 0.0}


def keep_step(model, optimizer, groups: list[list[Rollout]], rewards, *, prompts) -> dict:
    """SFT on the rollouts whose reward is > 0 (their tokens only); skipped when none passed."""
    import torch

    rows = [(p, r, 1.0) for p, r, v in _rows(groups, prompts, rewards) if math.isfinite(v) and v > 0]
    if not rows:
        return {"loss": 0.0, "tokens": 0.0, "kl": 0.0, "skipped": 1.0}
    model.train()
    lps = sequence_logprobs(model, [p for p, _, _ in rows], [r for _, r, _ in rows])
    tokens = sum(len(lp) for lp in lps)
    loss = -sum(lp.sum() for lp in lps) / tokens
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return {"loss": float(loss), "tokens": float(tokens), "kl": 0.0, "skipped": 0.0}
