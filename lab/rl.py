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
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lab.errors import LabError
from lab.rollouts import Rollout, sample_groups, sequence_logprobs
from lab.train import RunControl

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
    return {"loss": loss.item(), "tokens": float(tokens), "kl": float(kl.detach()), "skipped": 0.0}


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
    return {"loss": loss.item(), "tokens": float(tokens), "kl": 0.0, "skipped": 0.0}


# ---- the run: tasks, config, presets, the trainer ------------------------------------------------

TASKS = ("apples", "letters", "arithmetic")
RULES = ("grpo", "keep")


@dataclass
class RLConfig:
    """One RL run on a tiny-chat checkpoint; `steps` updates of `prompts_per_step` x `group` rollouts."""

    base: str = ""  # a tiny-chat checkpoint; "" = the lab's tiny-chat (trained first with sft_preset if missing)
    sft_preset: str = "cpu-quick"
    tasks: tuple[str, ...] = TASKS
    rule: str = "grpo"  # "grpo" (group-normalised policy gradient) or "keep" (SFT on the rollouts that passed)
    steps: int = 30
    prompts_per_step: int = 4
    group: int = 8
    max_tokens: int = 64
    temperature: float = 1.0
    learning_rate: float = 3e-5
    kl_coef: float = 0.0  # > 0: k3 KL to the starting model (grpo only)
    held_out_problems: int = 24  # scored greedily every eval_interval steps
    eval_interval: int = 5
    seed: int = 0
    out_dir: str = ""  # "" = <cache>/tiny-chat-rl (its ckpt.pt opens as a model)


PRESETS: dict[str, RLConfig] = {
    # A step in about a second on a 2-core CPU with the cpu-quick tiny-chat (bench/rl.py measures it).
    "tiny": RLConfig(prompts_per_step=8, steps=40, held_out_problems=40),
    "tiny-keep": RLConfig(rule="keep", learning_rate=1e-4, prompts_per_step=8, steps=40, held_out_problems=40),
}


@dataclass(frozen=True)
class Attempt:
    """One rollout of a step, as the screen shows it."""

    question: str
    truth: str
    text: str
    passed: bool
    got: str  # what the checker read, or why it failed


@dataclass(frozen=True)
class RLEvent:
    step: int
    max_steps: int
    pass_rate: float = 0.0  # of this step's rollouts (train problems)
    held_out: float | None = None  # greedy pass rate on the held-out problems (eval steps)
    mean_length: float = 0.0  # tokens per rollout
    histogram: tuple[int, ...] = ()  # groups by how many of their G rollouts passed (0..G)
    attempts: tuple[Attempt, ...] = ()
    loss: float = 0.0
    kl: float = 0.0
    skipped: bool = False  # no update (no signal: every group all-pass or all-fail)
    seconds: float = 0.0
    stopped: str = ""  # "done", "stopped", or why it failed
    checkpoint: str = ""

    def line(self) -> str:
        if self.step == 0 and not self.stopped:
            return f"step 0/{self.max_steps} · before RL · held-out {self.held_out:.0%}"
        parts = [f"step {self.step}/{self.max_steps}", f"pass {self.pass_rate:.0%}"]
        if self.held_out is not None:
            parts.append(f"held-out {self.held_out:.0%}")
        parts += [f"len {self.mean_length:.1f}", f"loss {self.loss:+.4f}"]
        if self.kl:
            parts.append(f"kl {self.kl:.4f}")
        if self.skipped:
            parts.append("no update")
        parts.append(f"{self.seconds:.2f}s")
        if self.stopped:
            parts.append(self.stopped)
        if self.checkpoint:
            parts.append(f"saved {self.checkpoint}")
        return " · ".join(parts)


def load_chat(path: str | Path):
    """(model, vocab, train_config) of a tiny-chat checkpoint."""
    from lab.gpt import GPT, GPTConfig
    from lab.sft import CHAT_KIND, ChatVocab
    from lab.train import load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt.get("corpus_kind") != CHAT_KIND:
        raise LabError(f"{Path(path).name} is not a tiny-chat checkpoint (RL needs the chat tokens).",
                       "Train one with `deepdive-lab sft` (or start RL from the F6 rl view, which trains one first).")
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model, ChatVocab(CHAT_KIND, list(ckpt["pieces"])), dict(ckpt.get("train_config", {}))


def problems(train_config: dict, tasks: tuple[str, ...]):
    """(train, held-out) problems of `tasks`: the SFT run's own split (from its train_config), so a
    held-out problem was never in the SFT data either."""
    from dataclasses import fields as dc_fields

    from lab.sft import SFTConfig
    from lab.sft_data import checker, examples_for

    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise LabError(f"unknown task {bad[0]!r}; choose from {', '.join(TASKS)}.")
    names = {f.name for f in dc_fields(SFTConfig)}
    raw = {k: v for k, v in train_config.items() if k in names}
    if "counts" in raw:
        raw["counts"] = tuple(raw["counts"])
    raw["conversations"] = ""
    train, held = examples_for(SFTConfig(**raw))
    keep = lambda e: e.task in tasks and checker(e) is not None  # noqa: E731
    train, held = [e for e in train if keep(e)], [e for e in held if keep(e)]
    if not train or not held:
        raise LabError(f"no {'training' if not train else 'held-out'} problems for the tasks {', '.join(tasks)}.")
    return train, held


def verdicts(examples, texts) -> list[tuple[bool, str]]:
    """The code checker's (passed, what it read) per reply; a checker that raises is a failure with its reason."""
    from lab.sft_data import checker

    out = []
    for e, text in zip(examples, texts):
        try:
            v = checker(e)(text)
            out.append((bool(v.passed), str(v.got)))
        except Exception as exc:  # a broken checker fails the rollout, not the run
            out.append((False, f"checker failed: {exc.__class__.__name__}: {exc}"))
    return out


class RLTrainer(RunControl):
    """Runs an RLConfig on a model; `run()` yields an RLEvent per step; stop/pause/resume from another thread.

    `examples` (train, held-out) and `check` (example, text) -> (passed, got) may be given (tests)."""

    def __init__(self, cfg: RLConfig, model, vocab, examples, check=None, base_config: dict | None = None) -> None:
        import copy

        import torch

        if cfg.rule not in RULES:
            raise LabError(f"unknown update rule {cfg.rule!r}; choose from {', '.join(RULES)}.")
        train, held = examples
        if not train:
            raise LabError("no problems to practise on.")
        self.cfg = cfg
        self.model, self.vocab = model, vocab
        self.train_set, self.held_set = list(train), list(held)[:cfg.held_out_problems]
        self.check = check
        self.base_config = base_config or {}
        self.fmt = vocab.chat_format()
        self.ref = copy.deepcopy(model).eval() if cfg.kl_coef > 0 and cfg.rule == "grpo" else None
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
        self.step = 0
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        RunControl.__init__(self)  # stop, pause, resume, wait_parked from any thread

    # ---- one step ----
    def _score(self, examples, texts):
        if self.check is None:
            return verdicts(examples, texts)
        out = []
        for e, t in zip(examples, texts):
            try:
                out.append(self.check(e, t))
            except Exception as exc:
                out.append((False, f"checker failed: {exc.__class__.__name__}: {exc}"))
        return out

    def held_out_rate(self) -> float:
        if not self.held_set:
            return float("nan")
        groups = sample_groups(self.model, self.vocab, [list(render_prompt_ids(self.fmt, e)) for e in self.held_set],
                               1, self.cfg.max_tokens, temperature=0.0, seed=self.cfg.seed, cancel=self._stop)
        v = self._score(self.held_set, [g[0].text for g in groups])
        return sum(p for p, _ in v) / len(v)

    def train_step(self, cancel: threading.Event | None = None) -> RLEvent:
        """Sample, score and update once; returns the step's event (no held-out score)."""
        import random

        t0 = time.perf_counter()
        cfg = self.cfg
        rng = random.Random(f"rl:{cfg.seed}:{self.step}")
        chosen = [self.train_set[i] for i in rng.sample(range(len(self.train_set)),
                                                         min(cfg.prompts_per_step, len(self.train_set)))]
        prompts = [list(render_prompt_ids(self.fmt, e)) for e in chosen]
        groups = sample_groups(self.model, self.vocab, prompts, cfg.group, cfg.max_tokens, cfg.temperature,
                               seed=cfg.seed * 1_000_003 + self.step, cancel=cancel)
        rewards, attempts, hist = [], [], [0] * (cfg.group + 1)
        for e, g in zip(chosen, groups):
            v = self._score([e] * len(g), [r.text for r in g])
            rewards.append([1.0 if p else 0.0 for p, _ in v])
            hist[sum(p for p, _ in v)] += 1
            attempts += [Attempt(e.question, e.truth, r.text, p, got) for r, (p, got) in zip(g, v)]
        if cfg.rule == "keep":
            info = keep_step(self.model, self.optimizer, groups, rewards, prompts=prompts)
        else:
            adv = [group_advantages(rs) for rs in rewards]
            info = policy_gradient_step(self.model, self.optimizer, groups, adv, self.ref, cfg.kl_coef, prompts=prompts)
        self.step += 1
        n = sum(len(g) for g in groups)
        return RLEvent(self.step, cfg.steps, sum(map(sum, rewards)) / n,
                       mean_length=sum(len(r.ids) for g in groups for r in g) / n, histogram=tuple(hist),
                       attempts=tuple(attempts), loss=info["loss"], kl=info["kl"], skipped=bool(info["skipped"]),
                       seconds=time.perf_counter() - t0)

    def run(self):
        """Step 0 (the starting model's held-out rate), then one event per step; the last says why it ended
        and where the checkpoint is (a stop writes one too)."""
        from lab.errors import CancelledError

        finished = False
        try:
            yield RLEvent(0, self.cfg.steps, held_out=self.held_out_rate())
            while self.step < self.cfg.steps:
                self.wait_if_paused()
                if self._stop.is_set():
                    break
                ev = self.train_step(cancel=self._stop)
                if self.step % self.cfg.eval_interval == 0 or self.step == self.cfg.steps:
                    ev = replace(ev, held_out=self.held_out_rate())
                if self.step == self.cfg.steps:
                    ev = replace(ev, stopped="done", checkpoint=self._save())
                    finished = True
                yield ev
        except CancelledError:  # a stop while sampling: the step in flight is dropped
            pass
        if not finished:
            yield RLEvent(self.step, self.cfg.steps, stopped="stopped", checkpoint=self._save())

    def _save(self) -> str:
        return str(self.save()) if self.out_dir is not None else ""

    def save(self, path: Path | None = None) -> Path:
        """A checkpoint in tiny-chat's format (it opens as a model: lab.backends.tiny)."""
        from lab.sft import CHAT_KIND
        from lab.train import save_atomic

        if path is None and self.out_dir is None:
            raise LabError("this run has no out_dir to save to.")
        path = path or self.out_dir / "ckpt.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "model_config": self.model.cfg.to_dict(), "train_config": {**self.base_config, **_plain(self.cfg)},
                     "step": self.step, "corpus_kind": CHAT_KIND, "pieces": list(self.vocab.pieces)}, path)
        return path


def _plain(cfg: RLConfig) -> dict:
    d = asdict(cfg)
    d["tasks"] = list(d["tasks"])
    return {f"rl_{k}": v for k, v in d.items()}


def render_prompt_ids(fmt, example) -> tuple[int, ...]:
    from lab.conversations import render_prompt

    return render_prompt(fmt, example.prompt)


def default_base() -> Path:
    from lab.paths import cache_dir

    return cache_dir() / "tiny-chat" / "ckpt.pt"


def default_out() -> Path:
    from lab.paths import cache_dir

    return cache_dir() / "tiny-chat-rl"


def trainer_for(cfg: RLConfig) -> RLTrainer:
    """An RLTrainer on cfg.base (or the lab's tiny-chat), writing to cfg.out_dir (or <cache>/tiny-chat-rl)."""
    base = Path(cfg.base) if cfg.base else default_base()
    if not base.exists():
        raise LabError(f"no tiny-chat checkpoint at {base}.",
                       "Train one with `deepdive-lab sft` (or start RL from the F6 rl view, which trains one first).")
    model, vocab, tc = load_chat(base)
    cfg = replace(cfg, out_dir=cfg.out_dir or str(default_out()))
    return RLTrainer(cfg, model, vocab, problems(tc, tuple(cfg.tasks)), base_config=tc)


# ---- beyond imitation (the AlphaGo point) -----------------------------------------------------------

def corrupt(examples, fraction: float, seed: int = 0):
    """A copy of `examples` where `fraction` of those with a numeric truth have a wrong worked solution:
    the truth's number in the answer replaced by a nearby wrong one (the checker would fail it)."""
    import random
    import re

    from lab.sft_data import Example
    from lab.types import ChatMessage

    rng = random.Random(f"corrupt:{seed}")
    out = []
    for e in examples:
        if e.truth.isdigit() and rng.random() < fraction:
            wrong = str(max(0, int(e.truth) + rng.choice([-3, -2, -1, 1, 2, 3])) or int(e.truth) + 1)
            text = re.sub(rf"(?<![\d.]){re.escape(e.truth)}(?!\d)", wrong, e.messages[-1].content)
            e = Example(e.messages[:-1] + (ChatMessage("assistant", text),), e.task, e.truth)
        out.append(e)
    return out


class ImperfectExperiment:
    """SFT on data with a `wrong` fraction of wrong worked solutions (lab.sft.TinyChat from scratch), then RL
    (`rl`) from that model on the same tasks; `results` = {"data": the SFT data's accuracy, "sft": held-out pass
    rate after SFT, "rl": after RL}. Reported as it comes out: no run is repeated or picked."""

    def __init__(self, sft_cfg, rl: RLConfig, wrong: float = 0.3) -> None:
        self.sft_cfg, self.rl_cfg, self.wrong = sft_cfg, rl, wrong
        self.results: dict[str, float] = {}
        self.current = None
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True
        if self.current is not None:
            self.current.stop()

    def run(self):
        """Yields (phase, event): "pretrain"/"sft" (lab.train.TrainEvent), then "rl" (RLEvent)."""
        from lab.sft import TinyChat

        chat = TinyChat(self.sft_cfg)
        train, held = chat.examples
        chat.examples = (corrupt(train, self.wrong, self.sft_cfg.data_seed), held)
        from lab.sft_data import checker

        graded = [e for e in chat.examples[0] if e.task in self.rl_cfg.tasks and checker(e) is not None]
        self.results["data"] = sum(checker(e)(e.messages[-1].content).passed for e in graded) / max(1, len(graded))
        self.current = chat
        for phase, ev in chat.run():
            yield phase, ev
        if self._stopped or chat.sft is None:
            return
        model, vocab = chat.sft.model, chat.vocab
        base_config = {"counts": list(self.sft_cfg.counts), "data_seed": self.sft_cfg.data_seed,
                       "held_out": self.sft_cfg.held_out, "style": self.sft_cfg.style}
        trainer = RLTrainer(self.rl_cfg, model, vocab, problems(base_config, tuple(self.rl_cfg.tasks)),
                            base_config=base_config)
        self.current = trainer
        for ev in trainer.run():
            if ev.step == 0:
                self.results["sft"] = ev.held_out
            if ev.held_out is not None:
                self.results["rl"] = ev.held_out
            yield "rl", ev
