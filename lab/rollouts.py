"""Batched, seeded rollouts on the lab's tiny GPT (lab.gpt.GPT), with a KV cache; log-probs for updates.

    groups = sample_groups(model, vocab, prompts, group=8, max_tokens=60, seed=0)
    groups[p][s]                 # Rollout: prompt p's s-th sample (ids include <|im_end|> when it ended)
    lps = sequence_logprobs(model, [prompt_ids] * 2, [r.ids for r in groups[0][:2]])  # tensors, with grad

sample_groups puts every prompt x `group` samples in ONE batch: prompts are left-padded (a mask hides
the padding; each row's positions start at 0 at its first real token) and read once each (their keys
and values are copied to the group's rows), and each new token costs one forward of the whole batch over a key/value cache (written here over the GPT module's own weights;
`cached_logits` is checked against model.forward in the tests). A row stops at <|im_end|>, or when it
has `max_tokens` tokens, or when it fills the model's context (block_size): then `ended` is False.

Seeds: row (p, s) draws its tokens by inverse CDF on uniforms from its own torch.Generator seeded
from (seed, p, s) (drawn up front, one per token), so the draws of a row do not depend on how many rows are in the batch;
the same inputs and seed give the same rollouts bit-for-bit on one CPU. (The logits themselves can
differ in the last bits between batch shapes, as BLAS kernels change with the shape.)
`cancel` (a threading.Event) is checked between tokens; a set event raises lab.errors.CancelledError.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lab.errors import CancelledError, LabError


@dataclass(frozen=True)
class Rollout:
    prompt: int  # index of the prompt in the list given to sample_groups
    sample: int  # 0 .. group-1
    ids: tuple[int, ...]  # the sampled tokens, <|im_end|> last when `ended`
    text: str  # the decoded reply, without <|im_end|>
    ended: bool  # True when the model wrote its end-of-turn token


def row_seed(seed: int, prompt: int, sample: int) -> int:
    """The seed of one row's generator: distinct rows get distinct streams."""
    return ((seed * 1_000_003 + prompt) * 10_007 + sample) % (2 ** 62)


class KVCache:
    """The keys and values of every block for `batch` rows, allocated once for `capacity` positions: a
    step writes its own slice, so the past is never copied (torch.cat per step copied all of it)."""

    def __init__(self, model, batch: int, capacity: int) -> None:
        import torch

        w = next(model.parameters())
        h = model.cfg.n_head
        shape = (batch, h, capacity, model.cfg.n_embd // h)
        self.k = [torch.empty(shape, dtype=w.dtype, device=w.device) for _ in model.blocks]
        self.v = [torch.empty(shape, dtype=w.dtype, device=w.device) for _ in model.blocks]
        self.n = 0  # positions filled

    def keep(self, rows) -> None:
        """Keep only `rows` (a LongTensor of row indices, repeats allowed), in that order; only the
        filled positions are copied."""
        self.k, self.v = [self._keep(b, rows) for b in self.k], [self._keep(b, rows) for b in self.v]

    def _keep(self, buf, rows):
        out = buf.new_empty((len(rows),) + tuple(buf.shape[1:]))
        out[:, :, :self.n] = buf[:, :, :self.n].index_select(0, rows)
        return out


def cached_logits(model, idx, pos, key_ok, cache: KVCache):
    """One forward of lab.gpt.GPT's blocks over new tokens `idx` (B, T) at positions `pos` (B, T),
    writing their keys/values into `cache` after the `cache.n` already there; `key_ok` (B, Tk) marks the
    real (unpadded) keys of the whole sequence so far (None: no padding anywhere). Returns the last
    position's logits (B, V)."""
    import torch
    import torch.nn.functional as F

    x = model.wte(idx) + model.wpe(pos)
    b, t, c = x.shape
    n0, n1 = cache.n, cache.n + t
    if n1 > cache.k[0].shape[2]:
        raise LabError(f"the cache holds {cache.k[0].shape[2]} positions; {n1} asked.")
    if key_ok is None:  # no padding: plain causal attention (none at all for one new token)
        mask = None
    else:
        tk = key_ok.shape[1]
        if t == 1:
            mask = key_ok[:, None, None, :]  # the new token itself is always a real key
        else:
            causal = torch.ones(t, tk, dtype=torch.bool, device=x.device).tril(tk - t)
            own = torch.zeros(t, tk, dtype=torch.bool, device=x.device)
            own[:, tk - t:] = torch.eye(t, dtype=torch.bool, device=x.device)  # a pad query sees itself: no NaN
            mask = ((key_ok[:, None, :] & causal) | own)[:, None]  # (B, 1, T, Tk)
    causal = mask is None and n0 == 0 and t > 1  # is_causal aligns to the top left: only right for a fresh cache
    if mask is None and n0 > 0 and t > 1:
        mask = torch.ones(t, n1, dtype=torch.bool, device=x.device).tril(n0)
    for i, block in enumerate(model.blocks):
        attn = block.attn
        h = attn.n_head
        q, k, v = attn.qkv(block.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, h, c // h).transpose(1, 2) for z in (q, k, v))
        cache.k[i][:, :, n0:n1] = k
        cache.v[i][:, :, n0:n1] = v
        y = F.scaled_dot_product_attention(q, cache.k[i][:, :, :n1], cache.v[i][:, :, :n1], attn_mask=mask,
                                           is_causal=causal)
        x = x + attn.proj(y.transpose(1, 2).contiguous().view(b, t, c))
        x = x + block.mlp(block.ln2(x))
    cache.n = n1
    return model.head(model.ln_f(x[:, -1]))


COMPACT = 0.75  # rows that finished leave the batch once a quarter of it has (each compaction copies the cache)


def sample_groups(model, vocab, prompts: list[list[int]], group: int, max_tokens: int, temperature: float = 1.0,
                  seed: int = 0, cancel: threading.Event | None = None) -> list[list[Rollout]]:
    """`group` samples of each prompt (token ids, e.g. lab.conversations.render_prompt), all in one batch;
    see the module docstring. temperature <= 0 takes the most likely token (then every sample is the same)."""
    import torch

    if not prompts:
        raise LabError("no prompts to roll out.")
    if group < 1:
        raise LabError(f"a group needs at least one sample (got {group}).")
    block = model.cfg.block_size
    longest = max(len(p) for p in prompts)
    if min(len(p) for p in prompts) == 0:
        raise LabError("a prompt has no tokens.")
    if longest >= block:
        raise LabError(f"a prompt has {longest} tokens; the model reads at most {block}.")
    device = next(model.parameters()).device
    end = vocab.end_of_turn
    rows = [(p, s) for p in range(len(prompts)) for s in range(group)]
    budget = [min(max_tokens, block - len(prompts[p])) for p, _ in rows]
    width = max(1, max(budget))  # each row's uniforms, drawn up front from its own generator
    uniforms = torch.stack([torch.rand(width, generator=torch.Generator().manual_seed(row_seed(seed, p, s)))
                            for p, s in rows])
    pads = [longest - len(p) for p in prompts]  # one row per prompt until the prompts are read
    idx = torch.tensor([[0] * pad + list(p) for pad, p in zip(pads, prompts)], device=device)
    capacity = longest + width
    key_ok = torch.tensor([[False] * pad + [True] * (capacity - pad) for pad in pads], device=device)
    if not any(pads):
        key_ok = None  # the whole sequence so far: key_ok[:, :cache.n + new tokens]
    pos = (torch.arange(longest, device=device)[None, :] - torch.tensor(pads, device=device)[:, None]).clamp(min=0)
    of_prompt = torch.tensor([p for p, _ in rows], device=device)
    out: list[list[int]] = [[] for _ in rows]
    done = [b <= 0 for b in budget]
    ended = [False] * len(rows)
    was_training = model.training
    model.eval()
    cache = KVCache(model, len(prompts), capacity)
    try:
        with torch.no_grad():
            # each prompt is read once; its keys, values and last logits are then copied to its `group` rows
            logits = cached_logits(model, idx, pos, None if key_ok is None else key_ok[:, :longest], cache)
            cache.keep(of_prompt)
            logits, next_pos = logits[of_prompt], pos[of_prompt, -1] + 1
            key_ok = None if key_ok is None else key_ok[of_prompt]
            batch = list(range(len(rows)))  # the rows in the batch, in order (some may be done)
            live_u = uniforms
            steps = 0
            while True:
                if cancel is not None and cancel.is_set():
                    raise CancelledError("the rollouts were cancelled.")
                kept = [j for j, r in enumerate(batch) if not done[r]]
                if not kept:
                    break
                if len(kept) <= COMPACT * len(batch):  # enough rows finished: they leave the batch (and the cache)
                    keep = torch.tensor(kept, device=device)
                    logits, next_pos, live_u = logits[keep], next_pos[keep], live_u[keep.cpu()]
                    key_ok = key_ok[keep] if key_ok is not None else None
                    cache.keep(keep)
                    batch = [batch[j] for j in kept]
                if temperature <= 0:
                    picked = logits.argmax(-1)
                else:
                    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(-1).cpu()
                    u = live_u[:, min(steps, width - 1)] * cdf[:, -1]
                    picked = torch.searchsorted(cdf, u[:, None]).clamp_(max=cdf.shape[1] - 1)[:, 0]
                for r, t in zip(batch, picked.tolist()):
                    if done[r]:  # a finished row still in the batch: its token is thrown away
                        continue
                    out[r].append(t)
                    if t == end:
                        done[r] = ended[r] = True
                    elif len(out[r]) >= budget[r]:
                        done[r] = True
                if all(done[r] for r in batch):
                    break
                step = picked.to(device)[:, None]
                ok = None if key_ok is None else key_ok[:, :cache.n + 1]
                logits = cached_logits(model, step, next_pos[:, None], ok, cache)
                next_pos = (next_pos + 1).clamp_(max=block - 1)  # a live row stops before it fills the context;
                # a finished row still in the batch may not, and its position only has to be valid
                steps += 1
    finally:
        model.train(was_training)
    groups: list[list[Rollout]] = [[] for _ in prompts]
    for r, (p, s) in enumerate(rows):
        text_ids = out[r][:-1] if ended[r] else out[r]
        groups[p].append(Rollout(p, s, tuple(out[r]), vocab.decode(text_ids), ended[r]))
    return groups


def sequence_logprobs(model, prompt_ids, responses):
    """The log-probability of each response token given its prompt and the tokens before it, under `model`
    (with grad unless called under torch.no_grad). `prompt_ids` is one list of ids per response (or one
    list for all); returns one 1-D tensor per response (length len(response))."""
    import torch

    if not responses:
        return []
    if prompt_ids and isinstance(prompt_ids[0], int):
        prompt_ids = [prompt_ids] * len(responses)
    if len(prompt_ids) != len(responses):
        raise LabError(f"{len(prompt_ids)} prompts for {len(responses)} responses.")
    block = model.cfg.block_size
    seqs = [list(p) + list(r) for p, r in zip(prompt_ids, responses)]
    if max(len(s) for s in seqs) > block:
        raise LabError(f"a prompt and its response have {max(len(s) for s in seqs)} tokens; the model reads "
                       f"at most {block}.")
    device = next(model.parameters()).device
    width = max(len(s) for s in seqs)
    idx = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=device)  # right padding: causal
    logits, _ = model(idx, torch.zeros_like(idx))  # targets only to get every position's logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for b, (p, r) in enumerate(zip(prompt_ids, responses)):
        n = len(r)
        if n == 0:
            out.append(logp.new_zeros(0))
            continue
        start = len(p) - 1  # the logits at position i predict token i + 1
        tgt = torch.tensor(list(r), device=device)
        out.append(logp[b, start:start + n].gather(1, tgt[:, None])[:, 0])
    return out
