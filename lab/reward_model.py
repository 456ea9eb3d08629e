"""A reward model: the tiny GPT's trunk with a scalar head, trained on rankings with the Bradley-Terry loss.

    rm = RewardModel.from_policy(sft_model)        # the trunk starts as the SFT model (as InstructGPT's did)
    idx, lengths = pad_batch([ids_a, ids_b], rm.cfg.block_size, pad=0)
    scores = rm(idx, lengths)                       # one float per sequence: the trunk's state at its last token
    loss = bradley_terry_loss(scores_better, scores_worse)

The trunk is `lab.gpt.GPT` used as it is (its embeddings, blocks and final norm; its language-model head is
left unused), so a tiny-chat checkpoint's weights load into it unchanged. Imports torch: import this module
lazily.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.gpt import GPT, GPTConfig


class RewardModel(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = GPT(cfg)
        self.score = nn.Linear(cfg.n_embd, 1)
        nn.init.zeros_(self.score.weight)  # every sequence scores 0 before training: no preference yet
        nn.init.zeros_(self.score.bias)

    @classmethod
    def from_policy(cls, policy: GPT) -> "RewardModel":
        rm = cls(policy.cfg)
        rm.trunk.load_state_dict(policy.state_dict())
        return rm

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """idx (B, T) right-padded token ids, lengths (B,) -> (B,) scores read at each sequence's last token
        (attention is causal, so the padding after it changes nothing)."""
        t = self.trunk
        x = t.drop(t.wte(idx) + t.wpe(torch.arange(idx.shape[1], device=idx.device)))
        for block in t.blocks:
            x = block(x)
        h = t.ln_f(x)[torch.arange(idx.shape[0], device=idx.device), lengths - 1]
        return self.score(h).squeeze(-1)


def pad_batch(seqs: list[list[int]], block_size: int, pad: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences into one right-padded batch, each cut to its last block_size tokens.
    Example: [[5, 6, 7], [8]], block 2, pad 0 -> idx [[6, 7], [8, 0]], lengths [2, 1]."""
    cut = [list(s[-block_size:]) or [pad] for s in seqs]
    width = max(len(s) for s in cut)
    idx = torch.tensor([s + [pad] * (width - len(s)) for s in cut], dtype=torch.long, device=device)
    return idx, torch.tensor([len(s) for s in cut], dtype=torch.long, device=device)


def bradley_terry_loss(better: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """-log P(better is preferred) under Bradley-Terry, P = sigmoid(r_better - r_worse), averaged over pairs.
    Example: equal scores -> log 2 = 0.693; a margin of 2 -> 0.127."""
    return -F.logsigmoid(better - worse).mean()
