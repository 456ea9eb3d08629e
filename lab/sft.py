"""SFT on the lab's tiny GPT: a byte-level BPE with chat tokens, pretraining, then finetuning on conversations.

    run = TinyChat(SFTConfig(max_iters=300))     # builds the vocabulary and the data
    for phase, event in run.run():               # "pretrain" then "sft": lab.train's TrainEvents
        print(phase, event.line())               # the result opens as `tiny-chat` in every screen

The vocabulary is the lab's own BPE (`lab.bpe.train_bpe`) trained on the pretraining text, with
ChatML's `<|im_start|>` and `<|im_end|>` added as the last two ids (corpus kind "bpe-chat"), so it
can write any text, digits included. The pretraining text is Tiny Shakespeare plus documents from
the task generators (word problems, spellings, sums: the digits and words the SFT tasks need; never
the identity conversations, whose facts must come from SFT). Pretraining is `lab.train.Trainer` as is.

SFT is the same Trainer (same events, atomic checkpoints, resume, NaN and explosion checks,
stop/pause from another thread) with one change, its batches: whole conversations rendered through
the ChatML template are packed into rows of block_size + 1 tokens (conversations in a row can attend
to earlier ones, as in trl's packing), and targets outside the assistant's tokens are -100, which the
GPT's cross-entropy ignores. Packing keeps padding to the row ends (`padding` reports the fraction),
so a step costs what a pretraining step costs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

from lab.conversations import CHATML_TEMPLATE, ChatFormat, render_conversation, render_prompt
from lab.errors import LabError
from lab.paths import cache_dir, default_corpus
from lab.sft_data import Example, default_set, examples_for
from lab.train import Corpus, TrainConfig, Trainer, load_checkpoint

SPECIALS = ("<|im_start|>", "<|im_end|>")
CHAT_KIND = "bpe-chat"  # corpus kind: byte-level BPE, its merges, then SPECIALS as the last ids


@dataclass
class SFTConfig(TrainConfig):
    """The SFT stage's TrainConfig (max_iters = SFT steps) plus where its data and base model come from."""

    learning_rate: float = 5e-4
    min_lr: float = 5e-5
    warmup_iters: int = 20
    max_iters: int = 600
    lr_decay_iters: int = 600
    block_size: int = 192  # two conversations of the default set fit a row: ~3% padding (128: 16%)
    batch_size: int = 16
    eval_interval: int = 100
    eval_iters: int = 10
    sample_interval: int = 100
    sample_tokens: int = 80  # most tokens per sampled reply
    bpe_vocab: int = 512  # merges + bytes; the two chat tokens come on top
    conversations: str = ""  # a JSONL of OpenAI `messages`; "" = the lab's default set
    style: str = "working"  # solution style of the default word problems: "working" or "answer"
    data_seed: int = 0
    counts: tuple[int, int, int, int] = (300, 300, 200, 200)  # identity, apples, letters, arithmetic
    held_out: float = 0.1
    sample_prompts: int = 3  # held-out questions sampled at each eval
    base: str = ""  # a bpe-chat checkpoint to finetune; "" = pretrain one first (below)
    pretrain_iters: int = 1500
    pretrain_lr: float = 2e-3
    pretrain_bytes: int = 0  # bytes of Tiny Shakespeare to pretrain on (0 = all)
    task_docs: int = 1500  # task documents added to the pretraining text


PRESETS: dict[str, SFTConfig] = {
    # About 2 minutes on a 2-core laptop CPU: a small model, a slice of Shakespeare, a short SFT.
    "cpu-quick": SFTConfig(n_layer=2, n_head=2, n_embd=96, bpe_vocab=384, pretrain_bytes=200_000, task_docs=800,
                           pretrain_iters=400, max_iters=300, lr_decay_iters=300, batch_size=16),
    # About 10 minutes on a 2-core CPU: nanoGPT's CPU shape, all of Tiny Shakespeare.
    "cpu": SFTConfig(),
    "gpu": SFTConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, bpe_vocab=2048,
                     pretrain_iters=4000, max_iters=1500, lr_decay_iters=1500, eval_interval=250,
                     sample_interval=250),
}


# ---- the vocabulary --------------------------------------------------------------------------

@dataclass
class ChatVocab(Corpus):
    """A byte-level BPE vocabulary with the chat tokens: pieces are bytes, merges, then SPECIALS
    (built with kind CHAT_KIND)."""

    @classmethod
    def train(cls, text: bytes, bpe_vocab: int) -> "ChatVocab":
        from lab.bpe import train_bpe

        merges, pieces = train_bpe(text, bpe_vocab)
        vocab = cls(CHAT_KIND, [pieces[i] for i in range(256 + len(merges))] + [s.encode() for s in SPECIALS])
        vocab.ids = vocab.encode_long(text)
        return vocab

    @property
    def specials(self) -> dict[str, int]:
        n = len(self.pieces) - len(SPECIALS)
        return {s: n + k for k, s in enumerate(SPECIALS)}

    @property
    def end_of_turn(self) -> int:
        return self.specials["<|im_end|>"]

    def _ranks(self) -> dict[tuple[int, int], int]:
        """(a, b) -> the id they merge into, recovered from the pieces (the bytes of every merge)."""
        cached = self.__dict__.get("_cached_ranks")
        if cached is None:
            bpe = Corpus("bpe", self.pieces[:-len(SPECIALS)])
            cached = {m.pair: m.new_id for m in bpe._lookup()}
            self.__dict__["_cached_ranks"] = cached
        return cached

    def encode_plain(self, text: str) -> list[int]:
        """Text to ids with no special tokens: "<|im_end|>" in the text stays its bytes."""
        return self._encode_plain(text.encode("utf-8"))

    def _encode_plain(self, data: bytes) -> list[int]:
        """Merge the lowest-ranked adjacent pair until none is left (minbpe's encode; equal to applying
        the merges in order). Example: merges (97,98)->256, (256,99)->257: b"abc" -> [257]."""
        from lab.bpe import merge

        ranks = self._ranks()
        ids = list(data)
        while len(ids) > 1:
            pairs = {(a, b) for a, b in zip(ids, ids[1:]) if (a, b) in ranks}
            if not pairs:
                break
            pair = min(pairs, key=ranks.__getitem__)
            ids = merge(ids, pair, ranks[pair])
        return ids

    def encode_long(self, data: bytes) -> list[int]:
        """The same encoding for a long text (no specials): each merge in order, vectorised."""
        import numpy as np

        from lab.bpe import _merge_positions

        ids = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        for (a, b), new in sorted(self._ranks().items(), key=lambda kv: kv[1]):
            if ids.size < 2:
                break
            pos = _merge_positions((ids[:-1] == a) & (ids[1:] == b))
            if pos.size:
                ids[pos] = new
                keep = np.ones(ids.size, dtype=bool)
                keep[pos + 1] = False
                ids = ids[keep]
        return ids.tolist()

    def encode(self, text: str) -> list[int]:
        """Text to ids; "<|im_start|>" and "<|im_end|>" in the text become their special tokens."""
        out: list[int] = []
        specials = self.specials
        for part in re.split("(" + "|".join(re.escape(s) for s in SPECIALS) + ")", text):
            if part in specials:
                out.append(specials[part])
            elif part:
                out += self._encode_plain(part.encode("utf-8"))
        return out

    def chat_format(self) -> ChatFormat:
        first_special = len(self.pieces) - len(SPECIALS)
        return ChatFormat(CHATML_TEMPLATE, "<|im_end|>", self.encode, self.pieces.__getitem__,
                          lambda i: i >= first_special, source="ChatML (the lab's tiny-chat)")


# ---- data ---------------------------------------------------------------------------------

def pretraining_text(cfg: SFTConfig) -> bytes:
    """Task documents in plain prose, then Tiny Shakespeare (or its first pretrain_bytes; the validation
    split is the text's tail, so it is Shakespeare).

    The documents come from the task generators with another seed, so no SFT conversation is in them;
    identity is left out: who the assistant is must come from the SFT data."""
    shakespeare = default_corpus().read_bytes()
    if cfg.pretrain_bytes:
        shakespeare = shakespeare[:cfg.pretrain_bytes]
    n = cfg.task_docs
    docs = default_set(cfg.data_seed + 10_000, "working", 0, n // 2, n // 4, n - n // 2 - n // 4)
    docs += default_set(cfg.data_seed + 20_000, "answer", 0, n // 4, 0, 0)
    prose = "\n\n".join(f"{e.question}\n{e.messages[-1].content}" for e in docs)
    return prose.encode("utf-8") + b"\n\n" + shakespeare


def render_all(vocab: ChatVocab, examples: list[Example], block_size: int) -> list[tuple[list[int], list[int]]]:
    """Each conversation as (ids, mask), cut to block_size + 1 tokens."""
    fmt = vocab.chat_format()
    out = []
    for e in examples:
        r = render_conversation(fmt, e.messages)
        out.append((list(r.ids[:block_size + 1]), list(r.mask[:block_size + 1])))
    return out


def pack(convs: list[tuple[list[int], list[int]]], width: int, pad: int):
    """Whole conversations into rows of `width` tokens, longest first, each into the first row with room
    for it (first-fit decreasing: little padding); returns (tokens, targets, padding fraction). Ties keep
    the given order, so a shuffled input gives differently mixed rows.

    targets[r, j] is tokens[r, j + 1] where that token is in the mask, else -100 (padding included).
    Example, width 6: ([1, 2], [0, 1]) and ([3, 4, 5], [0, 0, 1]) -> row [1, 2, 3, 4, 5, pad],
    targets [2, -100, -100, 5, -100].
    """
    import torch

    rows: list[list[int]] = []
    masks: list[list[int]] = []
    for ids, m in sorted(convs, key=lambda c: -len(c[0])):
        r = next((k for k, row in enumerate(rows) if len(row) + len(ids) <= width), None)
        if r is None:
            rows.append([])
            masks.append([])
            r = len(rows) - 1
        rows[r] += ids
        masks[r] += m
    used = sum(len(row) for row in rows)
    tokens = torch.tensor([row + [pad] * (width - len(row)) for row in rows], dtype=torch.long)
    keep = torch.tensor([m + [0] * (width - len(m)) for m in masks], dtype=torch.bool)
    targets = torch.where(keep[:, 1:], tokens[:, 1:], torch.full_like(tokens[:, 1:], -100))
    return tokens, targets, 1 - used / max(1, tokens.numel())


# ---- sampling --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    question: str
    text: str
    ended: bool  # True when the model wrote its end-of-turn token


def sample_replies(model, vocab: ChatVocab, examples: list[Example], max_tokens: int = 80, seed: int = 0,
                   temperature: float = 1.0) -> list[Reply]:
    """Sample an answer to each example's prompt, stopping at <|im_end|>; the same seed gives the same replies."""
    import torch

    fmt = vocab.chat_format()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    g = torch.Generator(device=device).manual_seed(seed)
    for e in examples:
        prompt = list(render_prompt(fmt, e.prompt))
        idx = torch.tensor([prompt], dtype=torch.long, device=device)
        ended = False
        with torch.no_grad():
            for _ in range(max_tokens):
                logits, _ = model(idx[:, -model.cfg.block_size:])
                probs = torch.softmax(logits[:, -1, :] / max(temperature, 1e-6), dim=-1)
                nxt = torch.multinomial(probs, 1, generator=g)
                if int(nxt) == vocab.end_of_turn:
                    ended = True
                    break
                idx = torch.cat((idx, nxt), dim=1)
        out.append(Reply(e.question, vocab.decode(idx[0, len(prompt):].tolist()), ended))
    model.train(was_training)
    return out


# ---- the SFT trainer ---------------------------------------------------------------------------

class SFTTrainer(Trainer):
    """lab.train.Trainer on packed, masked conversations (see the module docstring)."""

    def __init__(self, cfg: SFTConfig, vocab: ChatVocab, state: dict | None = None,
                 examples: tuple[list[Example], list[Example]] | None = None) -> None:
        train, held = examples or examples_for(cfg)
        self.train_convs = render_all(vocab, train, cfg.block_size)
        self.val_convs = render_all(vocab, held, cfg.block_size)
        self.held_out = held
        vocab = replace(vocab, ids=[t for ids, _ in self.train_convs for t in ids])
        super().__init__(cfg, vocab)
        if state is not None:
            try:
                self.model.load_state_dict(state)
            except RuntimeError as exc:
                raise LabError(f"the base model does not fit this vocabulary and shape ({str(exc)[:120]}).") from exc
        import torch

        self.val_tokens, self.val_targets, _ = pack(self.val_convs, cfg.block_size + 1, vocab.end_of_turn)
        self._rows = None
        self._next_row = 0
        self.padding = pack(self.train_convs, cfg.block_size + 1, vocab.end_of_turn)[2]
        self._torch = torch

    def batch(self, split: str):
        torch = self._torch
        n = self.cfg.batch_size
        if split == "train":
            if self._rows is None or self._next_row + n > len(self._rows[0]):
                order = torch.randperm(len(self.train_convs), generator=self.generator).tolist()
                tokens, targets, _ = pack([self.train_convs[i] for i in order], self.cfg.block_size + 1,
                                          self.corpus.end_of_turn)
                self._rows, self._next_row = (tokens, targets), 0
                if len(tokens) < n:
                    raise LabError(f"the training conversations fill {len(tokens)} rows; the batch needs {n}.",
                                   "Use more conversations or a smaller batch.")
            tokens, targets = self._rows
            sl = slice(self._next_row, self._next_row + n)
            self._next_row += n
            x, y = tokens[sl, :-1], targets[sl]
        else:
            ix = torch.randint(len(self.val_tokens), (n,), generator=self.generator)
            x, y = self.val_tokens[ix, :-1], self.val_targets[ix]
        return x.to(self.device), y.to(self.device)

    def sample(self, tokens: int | None = None, seed: int = 0) -> str:
        replies = sample_replies(self.model, self.corpus, self.held_out[:self.cfg.sample_prompts],
                                 tokens or self.cfg.sample_tokens, seed)
        return "\n".join(f"Q: {r.question}\nA: {r.text}{' <|im_end|>' if r.ended else ' …'}" for r in replies)

    @classmethod
    def resume_from(cls, path: str | Path, **overrides) -> "SFTTrainer":
        ckpt = load_checkpoint(path)
        if ckpt.get("corpus_kind") != CHAT_KIND:
            raise LabError(f"{Path(path).name} is not a tiny-chat checkpoint.")
        names = {f.name for f in fields(SFTConfig)}
        raw = {k: v for k, v in ckpt["train_config"].items() if k in names}
        raw["counts"] = tuple(raw.get("counts", SFTConfig.counts))
        cfg = replace(SFTConfig(**raw), **overrides)
        t = cls(cfg, ChatVocab(CHAT_KIND, list(ckpt["pieces"])), ckpt["model"])
        t.optimizer.load_state_dict(ckpt["optimizer"])
        t.step = int(ckpt["step"])
        t.generator.set_state(ckpt["generator"])
        return t


def pretrain_config(cfg: SFTConfig) -> TrainConfig:
    """The pretraining stage: the same shape, its own steps and learning rate."""
    base = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}
    base.update(max_iters=cfg.pretrain_iters, lr_decay_iters=cfg.pretrain_iters, learning_rate=cfg.pretrain_lr,
                min_lr=cfg.pretrain_lr / 10, warmup_iters=min(100, cfg.pretrain_iters // 10),
                out_dir=str(Path(cfg.out_dir or cache_dir() / "tiny-chat") / "base"), tokenizer="bpe",
                sample_tokens=cfg.sample_tokens)
    return TrainConfig(**base)


class _Stages:
    """stop / pause / resume (from another thread) reach the stage running now, `current`."""

    current = None
    _stopped = False

    def stop(self) -> None:
        self._stopped = True
        if self.current is not None:
            self.current.stop()

    def pause(self) -> None:
        if self.current is not None:
            self.current.pause()

    def resume(self) -> None:
        if self.current is not None:
            self.current.resume()


class TinyChat(_Stages):
    """Pretrain (unless cfg.base names a bpe-chat checkpoint), then SFT; stop/pause reach the stage running."""

    def __init__(self, cfg: SFTConfig) -> None:
        self.cfg = replace(cfg, out_dir=cfg.out_dir or str(cache_dir() / "tiny-chat"))
        self.pretrainer: Trainer | None = None
        self.sft: SFTTrainer | None = None
        self._stopped = False
        self.examples = examples_for(self.cfg)  # first: bad data is said before minutes of pretraining
        if cfg.base:
            ckpt = load_checkpoint(cfg.base)
            if ckpt.get("corpus_kind") != CHAT_KIND:
                raise LabError(f"{Path(cfg.base).name} has no chat tokens; SFT needs a tiny-chat base "
                               "(pretrain one with `deepdive-lab sft --model tiny`).")
            self.vocab = ChatVocab(CHAT_KIND, list(ckpt["pieces"]))
            self.base_state = ckpt["model"]
        else:
            t0 = time.perf_counter()
            self.vocab = ChatVocab.train(pretraining_text(self.cfg), self.cfg.bpe_vocab)
            self.vocab_seconds = time.perf_counter() - t0
            self.base_state = None
            self.pretrainer = Trainer(pretrain_config(self.cfg), self.vocab)

    @property
    def current(self) -> Trainer | None:
        return self.sft or self.pretrainer

    def run(self):
        """Yields ("pretrain" | "sft", TrainEvent); a stop during pretraining ends the run there."""
        if self.pretrainer is not None:
            for event in self.pretrainer.run():
                yield "pretrain", event
                if event.stopped and event.stopped != "done":
                    return
            self.base_state = self.pretrainer.model.state_dict()
        if self._stopped:
            return
        self.sft = SFTTrainer(self.cfg, self.vocab, self.base_state, self.examples)
        for event in self.sft.run():
            yield "sft", event


# ---- models need tokens to think: answer-first vs working-first -----------------------------------

@dataclass(frozen=True)
class Scored:
    """One held-out problem, the sampled answer, and the code checker's verdict on it."""

    question: str
    truth: str
    reply: str
    ended: bool
    passed: bool
    got: str  # what the checker read in the reply ("3", "no number", ...)


def score(model, vocab: ChatVocab, examples: list[Example], max_tokens: int = 160, seed: int = 0) -> list[Scored]:
    """Sample an answer to each example (seeded) and mark it with its checker (`lab.sft_data.checker`)."""
    from lab.sft_data import checker

    out = []
    for e, r in zip(examples, sample_replies(model, vocab, examples, max_tokens, seed)):
        verdict = checker(e)(r.text)
        out.append(Scored(e.question, e.truth, r.text, r.ended, verdict.passed, verdict.got))
    return out


class StyleExperiment(_Stages):
    """The talk's "models need tokens to think", on the tiny model: one pretraining, then two SFT runs
    from it on the same word problems that differ only in the solution style ("answer": the answer
    first, then why; "working": the working first), each scored on the same held-out problems.

        exp = StyleExperiment(replace(PRESETS["cpu-quick"], counts=(0, 300, 0, 0)))
        for phase, event in exp.run(): ...      # "pretrain", "sft answer", "sft working"
        exp.results["working"]                  # [Scored], one per held-out problem

    Whatever comes out is reported as it is: no run is repeated or picked."""

    def __init__(self, cfg: SFTConfig, problems: int = 40, seed: int = 0) -> None:
        self.cfg = cfg
        self.problems, self.seed = problems, seed
        self.results: dict[str, list[Scored]] = {}
        self.current: TinyChat | SFTTrainer | None = None
        self._stopped = False

    def run(self):
        first = TinyChat(replace(self.cfg, style="answer", out_dir=str(Path(self.cfg.out_dir or cache_dir() /
                                                                                 "tiny-chat-experiment") / "answer")))
        self.current = first
        for phase, event in first.run():
            yield phase if phase == "pretrain" else "sft answer", event
        if self._stopped or first.sft is None:
            return
        self.results["answer"] = score(first.sft.model, first.vocab, self._held(first), seed=self.seed)
        second = SFTTrainer(replace(first.cfg, style="working", out_dir=str(Path(first.cfg.out_dir).parent / "working")),
                            first.vocab, first.base_state)
        self.current = second
        for event in second.run():
            yield "sft working", event
        if not self._stopped:
            self.results["working"] = score(second.model, first.vocab, self._held(second), seed=self.seed)

    def _held(self, chat) -> list[Example]:
        trainer = chat.sft if isinstance(chat, TinyChat) else chat
        return [e for e in trainer.held_out if e.task == "apples"][:self.problems]
