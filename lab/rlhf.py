"""RLHF on the tiny chat model, the talk's three steps, with a simulated person standing in for human taste.

    job = RLHF.from_checkpoint("…/tiny-chat/ckpt.pt", RLHFConfig(seed=0))
    for event in job.run():                  # step 1 rank, step 2 reward model, step 3 RL against it
        print(event.line())
    job.curves                               # per RL step: the reward model's mean score and the person's

Step 1: for each prompt of an unverifiable task ("Write a line of verse about the sea."), 5 rollouts are
sampled and ranked, by a person (the F6 view's keys; `Ranking.check` refuses ties and missing items with
a message) or by the simulated person: `simulated_person(prompt, reply) -> float`, a hidden scoring
function in code standing for taste (names the topic, a sensible length, ends a sentence, no
repetition, one line). It is a parameter (`taste=`) wherever it is used, so it can be replaced.
`Cost` sets the judgments this used against "a human scores every rollout of the RL run".

Step 2: a reward model (lab.reward_model: the SFT model's trunk plus a scalar head) trained on the
pairs each ranking implies with the Bradley-Terry loss; its accuracy on pairs of held-out prompts.

Step 3: RL (lab.rollouts.sample_groups, lab.rl.group_advantages and policy_gradient_step) with the
reward model as the reward. Each step records the reward model's mean score and the simulated
person's true mean score on the same rollouts, and the step's most over-rated rollouts (reward
model high, person low, each measured against the SFT model's first-step rollouts). Defences:
`kl_coef` (a KL penalty to the SFT model) and `patience` (stop early when the person's score on
held-out prompts has not improved for that many evaluations; the policy goes back to its best).
Nothing is scripted: the curves are whatever the models give. Same seeds => same curves.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.errors import LabError
from lab.types import ChatMessage

ROLLOUTS = 5  # rollouts ranked per prompt in step 1 (the talk's five)
# Words Tiny Shakespeare uses often, so the tiny model can name them.
TOPICS = ("sea", "love", "king", "night", "moon", "death", "crown", "heaven", "queen", "sword", "rose", "war",
          "sun", "heart", "blood", "fool", "horse", "gold", "grave", "storm")
FORMS = ("Write a line of verse about the {}.", "Tell me a one-line joke about the {}.",
         "Say something kind about the {}.")


@dataclass(frozen=True)
class Prompt:
    text: str
    topic: str

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        return (ChatMessage("user", self.text),)


def make_prompts(n: int, seed: int = 0) -> list[Prompt]:
    """n distinct prompts (topic x form), in a seeded order. Example: make_prompts(1, 0)[0].text ends in '.'."""
    every = [Prompt(form.format(t), t) for t in TOPICS for form in FORMS]
    if not 0 < n <= len(every):
        raise LabError(f"ask for 1 to {len(every)} prompts (got {n}).")
    random.Random(seed).shuffle(every)
    return every[:n]


# ---- the simulated person ----------------------------------------------------------------------

Taste = Callable[[Prompt, str], float]
_WORD = re.compile(r"[a-z']+")


def simulated_person(prompt: Prompt, reply: str) -> float:
    """Hidden taste, 0 to 1: names the topic 0.3, 5-14 words 0.2, ends a sentence 0.15, no repeated words 0.25
    (distinct/total, squared), one line 0.1. Example: ("…the sea.", "The sea is wide and blue.") -> 1.0;
    "sea sea sea sea sea" -> 0.3 + 0.2 + 0 + 0.01 + 0.1 = 0.61."""
    words = _WORD.findall(reply.lower())
    if not words:
        return 0.0
    n = len(words)
    topic = any(w in (prompt.topic, prompt.topic + "s", prompt.topic + "'s") for w in words)
    length = 1.0 if 5 <= n <= 14 else n / 5 if n < 5 else max(0.0, 1 - (n - 14) / 14)
    ends = reply.rstrip().endswith((".", "!", "?"))
    fresh = (len(set(words)) / n) ** 2
    one_line = "\n" not in reply.strip()
    return 0.3 * topic + 0.2 * length + 0.15 * ends + 0.25 * fresh + 0.1 * one_line


def person_scores(taste: Taste, prompt: Prompt, replies: list[str]) -> list[float]:
    """The person's score of each reply; a score that is not a finite number is refused with a message."""
    out = []
    for k, reply in enumerate(replies):
        s = float(taste(prompt, reply))
        if not math.isfinite(s):
            raise LabError(f"the scoring function gave {s} for rollout {k + 1} of {prompt.text!r}; "
                           "it must return a finite number.")
        out.append(s)
    return out


# ---- step 1: rankings --------------------------------------------------------------------------

@dataclass(frozen=True)
class Ranking:
    """A prompt's rollouts and their order, best first (indices into replies). Items the ranker held equal
    (`ties`, index pairs) give no pair for the reward model."""

    prompt: Prompt
    replies: tuple[str, ...]
    order: tuple[int, ...]
    ties: frozenset[tuple[int, int]] = frozenset()
    by: str = "person"  # "person" (keys) or "simulated"

    @staticmethod
    def check(order, n: int) -> tuple[int, ...]:
        """An order must name each of the n rollouts once. Example: check([2, 0, 1], 3) -> (2, 0, 1)."""
        order = tuple(int(i) for i in order)
        bad = [i + 1 for i in order if not 0 <= i < n]
        if bad:
            raise LabError(f"there is no rollout {bad[0]}: choose from 1 to {n}.")
        twice = sorted({i + 1 for i in order if order.count(i) > 1})
        if twice:
            raise LabError(f"rollout {twice[0]} is ranked twice: each rollout gets one place (a tie is not a ranking).")
        missing = [i + 1 for i in range(n) if i not in order]
        if missing:
            raise LabError(f"rollout{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} "
                           f"{'are' if len(missing) > 1 else 'is'} not ranked: order all {n}.")
        return order

    @classmethod
    def by_person(cls, prompt: Prompt, replies: list[str], order) -> "Ranking":
        return cls(prompt, tuple(replies), cls.check(order, len(replies)))

    @classmethod
    def by_taste(cls, prompt: Prompt, replies: list[str], taste: Taste = simulated_person) -> "Ranking":
        """The simulated person's order (best first; equal scores keep rollout order and are recorded as ties)."""
        scores = person_scores(taste, prompt, replies)
        order = tuple(sorted(range(len(replies)), key=lambda i: -scores[i]))
        ties = frozenset((a, b) for a in range(len(replies)) for b in range(len(replies))
                         if a != b and scores[a] == scores[b])
        return cls(prompt, tuple(replies), order, ties, "simulated")

    def pairs(self) -> list[tuple[str, str]]:
        """(better, worse) for every two rollouts in order, ties left out: 5 ranked rollouts give 10 pairs."""
        return [(self.replies[a], self.replies[b]) for k, a in enumerate(self.order) for b in self.order[k + 1:]
                if (a, b) not in self.ties]


@dataclass(frozen=True)
class Cost:
    """Human judgments: RLHF's rankings vs a person scoring every rollout of the same RL run."""

    rankings: int  # prompts ranked (one judgment each: an order of `rollouts`)
    rollouts: int
    rl_steps: int
    prompts_per_step: int
    group: int
    by_person: int = 0  # of the rankings, those a person made by keys (the rest: the simulated person)

    @property
    def naive(self) -> int:
        return self.rl_steps * self.prompts_per_step * self.group

    def short(self) -> str:
        who = f" ({self.by_person:,} by you, {self.rankings - self.by_person:,} simulated)" if self.rankings else ""
        return (f"human judgments: {self.rankings:,} ranking{'' if self.rankings == 1 else 's'}{who} vs {self.naive:,} scores if a person scored every "
                "RL rollout (the talk: ~5,000 vs 1,000,000,000)")

    def line(self) -> str:
        return (f"human judgments: {self.rankings:,} rankings of {self.rollouts} rollouts "
                f"({self.rankings * self.rollouts:,} replies read) vs {self.naive:,} scores if a person scored every "
                f"rollout ({self.rl_steps:,} steps x {self.prompts_per_step} prompts x {self.group}); the talk's "
                "scale: 1,000 updates x 1,000 prompts x 1,000 rollouts = 1,000,000,000 vs about 5,000 rankings")


# ---- configuration and events -------------------------------------------------------------------

@dataclass
class RLHFConfig:
    prompts: int = 48  # prompts ranked in step 1
    held_out: float = 0.25  # fraction of them kept for the reward model's held-out accuracy (and RL's held-out score)
    max_tokens: int = 32  # tokens per rollout
    temperature: float = 1.0
    rm_steps: int = 150
    rm_lr: float = 3e-4
    rm_batch: int = 32
    rl_steps: int = 60
    rl_prompts: int = 8  # prompts per RL step
    group: int = 4  # rollouts per prompt per RL step
    rl_lr: float = 1e-3
    kl_coef: float = 0.0  # KL penalty to the SFT model (a defence)
    eval_every: int = 5  # RL steps between held-out evaluations of the person's score
    patience: int = 0  # stop after this many evaluations without a better held-out score (0: never; a defence)
    keep_over_rated: int = 6
    seed: int = 0


@dataclass(frozen=True)
class RLHFEvent:
    phase: str  # "rollouts", "rank", "reward model", "rl", "done", "stopped"
    step: int = 0
    total: int = 0
    text: str = ""
    rm_score: float | None = None  # reward model's mean on this step's rollouts
    true_score: float | None = None  # the person's mean on the same rollouts
    held_true: float | None = None  # the person's mean on held-out prompts (at evaluations)
    loss: float | None = None
    accuracy: float | None = None  # reward model: held-out pair accuracy

    def line(self) -> str:
        parts = [f"{self.phase} step {self.step}/{self.total}" if self.total else self.phase]
        for name, v in (("rm", self.rm_score), ("true", self.true_score), ("held-out true", self.held_true),
                        ("loss", self.loss), ("held-out accuracy", self.accuracy)):
            if v is not None:
                parts.append(f"{name} {v:.3f}")
        if self.text:
            parts.append(self.text)
        return " · ".join(parts)


@dataclass(frozen=True)
class OverRated:
    step: int
    prompt: str
    reply: str
    rm_score: float
    true_score: float
    gap: float  # (rm - rm0) / sd_rm0 - (true - true0) / sd_true0: how much more the RM likes it than the person


@dataclass
class Curves:
    steps: list[int] = field(default_factory=list)
    rm: list[float] = field(default_factory=list)
    true: list[float] = field(default_factory=list)
    held_steps: list[int] = field(default_factory=list)
    held_true: list[float] = field(default_factory=list)
    stopped_early_at: int | None = None


# ---- the job -------------------------------------------------------------------------------------

def load_chat(path: str | Path):
    """(model, vocab) of a tiny-chat checkpoint (lab.rl.load_chat), or a LabError saying how to make one."""
    from lab import rl

    if not Path(path).is_file():
        raise LabError(f"no tiny-chat model at {path}: train one first (Post-training's run view: s; "
                       "or `deepdive-lab sft tiny`).")
    model, vocab, _ = rl.load_chat(path)
    return model, vocab


class RLHF:
    """The three steps on one SFT model; call `run()` (all three, simulated person), or the steps one by one:
    `sample_for_ranking()`, `add_ranking()`, `train_reward_model()`, `reinforce()` (each a generator of
    RLHFEvents except the first two). `stop()` from another thread ends the step running at its next check."""

    def __init__(self, model, vocab, cfg: RLHFConfig | None = None, taste: Taste = simulated_person) -> None:
        import copy

        self.cfg = cfg or RLHFConfig()
        if self.cfg.prompts < 2:
            raise LabError("rank at least 2 prompts: one to train the reward model on and one to hold out.")
        self.taste = taste
        self.vocab = vocab
        self.sft = model.eval()
        self.policy = copy.deepcopy(model)
        self.prompts = make_prompts(self.cfg.prompts, self.cfg.seed)
        n_held = min(len(self.prompts) - 1, max(1, round(self.cfg.held_out * len(self.prompts))))
        self.held_prompts, self.train_prompts = self.prompts[:n_held], self.prompts[n_held:]
        self.rankings: dict[str, Ranking] = {}  # prompt text -> its ranking
        self.reward_model = None
        self.rm_accuracy: float | None = None
        self.curves = Curves()
        self.over_rated: list[OverRated] = []
        self.cancel = threading.Event()
        self.seconds: dict[str, float] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, cfg: RLHFConfig | None = None, taste: Taste = simulated_person) -> "RLHF":
        model, vocab = load_chat(path)
        return cls(model, vocab, cfg, taste)

    def stop(self) -> None:
        self.cancel.set()

    def cost(self) -> Cost:
        return Cost(len(self.rankings), ROLLOUTS, self.cfg.rl_steps, self.cfg.rl_prompts, self.cfg.group,
                    sum(r.by == "person" for r in self.rankings.values()))

    # ---- step 1 --------------------------------------------------------------------------
    def _sample(self, model, prompts: list[Prompt], group: int, seed: int) -> list[list[str]]:
        """group replies per prompt from `model` (lab.rollouts: batched and seeded)."""
        return [[r.text for r in g] for g in self._rollouts(model, prompts, group, seed)]

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        from lab.conversations import render_prompt

        return list(render_prompt(self.vocab.chat_format(), prompt.messages))

    def _rollouts(self, model, prompts: list[Prompt], group: int, seed: int):
        """lab.rollouts.sample_groups on the prompts' chat renderings (a set cancel raises CancelledError)."""
        from lab.rollouts import sample_groups

        return sample_groups(model, self.vocab, [self._prompt_ids(p) for p in prompts], group, self.cfg.max_tokens,
                             self.cfg.temperature, seed, self.cancel)

    def sample_for_ranking(self, prompts: list[Prompt] | None = None) -> list[tuple[Prompt, list[str]]]:
        """ROLLOUTS replies of the SFT model to each prompt (default: all of step 1's), to be ranked."""
        prompts = self.prompts if prompts is None else prompts
        return list(zip(prompts, self._sample(self.sft, prompts, ROLLOUTS, self.cfg.seed + 1)))

    def add_ranking(self, ranking: Ranking) -> None:
        self.rankings[ranking.prompt.text] = ranking

    def rank_all(self) -> Iterator:
        """Step 1 with the simulated person: sample and rank every prompt (yields one event per prompt)."""
        t0 = time.perf_counter()
        yield RLHFEvent("rollouts", 0, len(self.prompts), f"sampling {ROLLOUTS} rollouts for each of "
                                                          f"{len(self.prompts)} prompts")
        from lab.errors import CancelledError

        try:
            sampled = self.sample_for_ranking()
        except CancelledError:
            return
        for k, (prompt, replies) in enumerate(sampled):
            if self.cancel.is_set():
                return
            self.add_ranking(Ranking.by_taste(prompt, replies, self.taste))
            yield RLHFEvent("rank", k + 1, len(sampled), prompt.text)
        self.seconds["rank"] = time.perf_counter() - t0

    # ---- step 2 --------------------------------------------------------------------------
    def _pairs(self, prompts: list[Prompt]) -> list[tuple[list[int], list[int]]]:
        out = []
        for p in prompts:
            r = self.rankings.get(p.text)
            if r is not None:
                out += [(self._ids(p, a), self._ids(p, b)) for a, b in r.pairs()]
        return out

    def _ids(self, prompt: Prompt, reply: str) -> list[int]:
        return self._prompt_ids(prompt) + self.vocab.encode_plain(reply) + [self.vocab.end_of_turn]

    def train_reward_model(self):
        """Step 2: Bradley-Terry on the pairs of the ranked train prompts; accuracy on the held-out prompts' pairs."""
        import torch

        from lab.reward_model import RewardModel, bradley_terry_loss, pad_batch

        train, held = self._pairs(self.train_prompts), self._pairs(self.held_prompts)
        if not train:
            if self.rankings:  # every prompt ranked so far is one kept to measure the reward model
                raise LabError(f"no pairs to train on yet: the {len(self.rankings)} prompt(s) ranked so far are among "
                               f"the {len(self.held_prompts)} kept aside to measure the reward model; rank more (n), "
                               "or a: the simulated person ranks the rest.")
            raise LabError("no ranked pairs to learn from: rank some rollouts first (step 1).")
        t0 = time.perf_counter()
        rm = RewardModel.from_policy(self.sft).train()
        opt = torch.optim.AdamW(rm.parameters(), lr=self.cfg.rm_lr, weight_decay=0.0)
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        block, pad = rm.cfg.block_size, self.vocab.end_of_turn
        steps = self.cfg.rm_steps
        for step in range(steps):
            if self.cancel.is_set():
                return
            pick = torch.randint(len(train), (min(self.cfg.rm_batch, len(train)),), generator=g).tolist()
            idx, lengths = pad_batch([train[i][0] for i in pick] + [train[i][1] for i in pick], block, pad)
            scores = rm(idx, lengths)
            loss = bradley_terry_loss(scores[:len(pick)], scores[len(pick):])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
            opt.step()
            last = step == steps - 1
            if last or step % 25 == 0:
                acc = self.pair_accuracy(rm, held) if last and held else None
                yield RLHFEvent("reward model", step + 1, steps, f"{len(train)} train pairs, {len(held)} held-out",
                                loss=loss.item(), accuracy=acc)
        self.reward_model = rm.eval()
        self.rm_accuracy = self.pair_accuracy(rm, held) if held else None
        self.seconds["reward model"] = time.perf_counter() - t0

    def pair_accuracy(self, rm, pairs) -> float:
        """Fraction of (better, worse) pairs the model scores in the person's order (a tie counts as wrong)."""
        better = self.rm_scores(rm, [a for a, _ in pairs])
        worse = self.rm_scores(rm, [b for _, b in pairs])
        return sum(a > b for a, b in zip(better, worse)) / len(pairs)

    @staticmethod
    def rm_scores(rm, seqs: list[list[int]], batch: int = 64) -> list[float]:
        import torch

        from lab.reward_model import pad_batch

        was = rm.training
        rm.eval()
        out: list[float] = []
        with torch.no_grad():
            for i in range(0, len(seqs), batch):
                idx, lengths = pad_batch(seqs[i:i + batch], rm.cfg.block_size, 0)
                out += rm(idx, lengths).tolist()
        rm.train(was)
        return out

    def score_replies(self, prompts: list[Prompt], replies: list[list[str]]) -> tuple[list[list[float]], list[list[float]]]:
        """(reward model scores, person scores) of each prompt's replies."""
        flat = [(p, r) for p, rs in zip(prompts, replies) for r in rs]
        rm = self.rm_scores(self.reward_model, [self._ids(p, r) for p, r in flat])
        true = [float(self.taste(p, r)) for p, r in flat]
        sizes = [len(rs) for rs in replies]
        return _split(rm, sizes), _split(true, sizes)

    # ---- step 3 --------------------------------------------------------------------------
    def reinforce(self):
        """Step 3: RL against the reward model; records both curves, over-rated rollouts, held-out evaluations.
        Ends with a "done" event, or "stopped" when `stop()` was called (checked between tokens and steps)."""
        from lab.errors import CancelledError

        try:
            yield from self._reinforce()
        except CancelledError:
            yield RLHFEvent("stopped", len(self.curves.steps), self.cfg.rl_steps, "stopped")

    def _reinforce(self):
        import copy

        import torch

        from lab.rl import group_advantages, policy_gradient_step

        if self.reward_model is None:
            raise LabError("train a reward model first (step 2).")
        cfg = self.cfg
        t0 = time.perf_counter()
        opt = torch.optim.AdamW(self.policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
        order = random.Random(cfg.seed + 5)
        base = None  # step 0's (mean, sd) of both scores: the yardstick of "over-rated"
        best, best_state, waited = -math.inf, None, 0
        for step in range(cfg.rl_steps + 1):
            if self.cancel.is_set():
                yield RLHFEvent("stopped", step, cfg.rl_steps, "stopped")
                return
            if step % cfg.eval_every == 0 or step == cfg.rl_steps:
                held = self.held_score(step)
                self.curves.held_steps.append(step)
                self.curves.held_true.append(held)
                if held > best:
                    best, best_state, waited = held, copy.deepcopy(self.policy.state_dict()), 0
                else:
                    waited += 1
                if cfg.patience and waited >= cfg.patience:
                    self.policy.load_state_dict(best_state)
                    self.curves.stopped_early_at = step
                    yield RLHFEvent("done", step, cfg.rl_steps, f"stopped early: the held-out score has not "
                                    f"improved for {waited} evaluations; the policy is back at its best",
                                    held_true=held)
                    return
            prompts = order.sample(self.train_prompts, min(cfg.rl_prompts, len(self.train_prompts)))
            groups = self._rollouts(self.policy, prompts, cfg.group, cfg.seed + 100 + step)
            if self.cancel.is_set():
                yield RLHFEvent("stopped", step, cfg.rl_steps, "stopped")
                return
            rm, true = self.score_replies(prompts, [[r.text for r in g] for g in groups])
            rm_mean, true_mean = _mean(rm), _mean(true)
            if base is None:
                base = (rm_mean, _sd(rm) or 1.0, true_mean, _sd(true) or 1.0)
            self._keep_over_rated(step, prompts, groups, rm, true, base)
            self.curves.steps.append(step)
            self.curves.rm.append(rm_mean)
            self.curves.true.append(true_mean)
            loss = None
            if step < cfg.rl_steps:
                stats = policy_gradient_step(self.policy, opt, groups, [group_advantages(g) for g in rm],
                                             ref_model=self.sft if cfg.kl_coef else None, kl_coef=cfg.kl_coef,
                                             prompts=[self._prompt_ids(p) for p in prompts])
                loss = stats["loss"]
            yield RLHFEvent("rl", step, cfg.rl_steps, rm_score=rm_mean, true_score=true_mean, loss=loss,
                            held_true=self.curves.held_true[-1] if self.curves.held_steps[-1] == step else None)
        self.seconds["rl"] = time.perf_counter() - t0
        yield RLHFEvent("done", cfg.rl_steps, cfg.rl_steps, "finished")

    def held_score(self, step: int) -> float:
        """The person's mean score of the policy's replies to the held-out prompts (one rollout each, seeded)."""
        replies = self._sample(self.policy, self.held_prompts, 1, self.cfg.seed + 50_000)
        return _mean([person_scores(self.taste, p, r) for p, r in zip(self.held_prompts, replies)])

    def _keep_over_rated(self, step, prompts, groups, rm, true, base) -> None:
        rm0, rm_sd, t0, t_sd = base
        for p, g, rs, ts in zip(prompts, groups, rm, true):
            for r, a, b in zip(g, rs, ts):
                if math.isfinite(a):
                    self.over_rated.append(OverRated(step, p.text, r.text, a, b, (a - rm0) / rm_sd - (b - t0) / t_sd))
        self.over_rated.sort(key=lambda o: -o.gap)
        seen, kept = set(), []
        for o in self.over_rated:
            if o.reply not in seen:
                seen.add(o.reply)
                kept.append(o)
        self.over_rated = kept[:self.cfg.keep_over_rated]

    def arm(self, taste: Taste | None = None, **changes) -> "RLHF":
        """A new RL run from the SFT model that shares this job's rankings and reward model, with other
        settings (a defence: `kl_coef=0.1`, `patience=2`) or another person scoring it (`taste`): the same
        seeds, so only the change differs."""
        from dataclasses import replace

        other = RLHF(self.sft, self.vocab, replace(self.cfg, **changes), taste or self.taste)
        other.rankings, other.reward_model, other.rm_accuracy = self.rankings, self.reward_model, self.rm_accuracy
        other.cancel = self.cancel
        return other

    # ---- all three --------------------------------------------------------------------------
    def run(self):
        yield from self.rank_all()
        if self.cancel.is_set():
            yield RLHFEvent("stopped", text="stopped while ranking")
            return
        yield RLHFEvent("rank", len(self.rankings), len(self.prompts), self.cost().line())
        yield from self.train_reward_model()
        if self.reward_model is None:
            yield RLHFEvent("stopped", text="stopped while training the reward model")
            return
        yield from self.reinforce()


def _split(flat: list, sizes: list[int]) -> list[list]:
    out, i = [], 0
    for n in sizes:
        out.append(flat[i:i + n])
        i += n
    return out


def _mean(groups) -> float:
    vals = [v for g in groups for v in (g if isinstance(g, list) else [g]) if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _sd(groups) -> float:
    vals = [v for g in groups for v in g if math.isfinite(v)]
    if len(vals) < 2:
        return 0.0
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))



DEFENCES = {"none": {}, "kl penalty": {"kl_coef": 0.1}, "early stop": {"patience": 2}}


def summary(curves: Curves) -> str:
    """Where both curves went: start, the person's peak, the end."""
    if not curves.steps:
        return "no RL steps"
    peak = max(range(len(curves.true)), key=lambda i: curves.true[i])
    end = f"stopped early at step {curves.stopped_early_at}" if curves.stopped_early_at is not None else \
        f"step {curves.steps[-1]}"
    return (f"rm {curves.rm[0]:.3f} -> {curves.rm[-1]:.3f} · true {curves.true[0]:.3f} -> peak "
            f"{curves.true[peak]:.3f} at step {curves.steps[peak]} -> {curves.true[-1]:.3f} ({end})")
