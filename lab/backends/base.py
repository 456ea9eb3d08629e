"""The backend protocol: one model, spoken to in token ids.

A backend implements a handful of primitives (`tokenize`, `token_bytes`, `_last_logits`,
and optionally `_chat_template`, `_is_special`, `_layer_logits`); everything a screen
needs (distributions, streams, chat rendering) is built here on top of them, so every
backend behaves the same way. Nothing returned holds a tensor: see `lab.types`.

The same inputs give the same numbers, whatever ran before. A model's floating-point
results depend on how a sequence is split into batches (llama.cpp: a token evaluated alone
and the same token inside a batch differ by up to ~0.8 in a logit), so every state is
computed one canonical way: the first `prompt_len` ids as one prompt evaluation from
position 0, every later id one at a time. The logits after `ids` are then a function of
(`ids`, `prompt_len`) alone; a cached state is reused only where it was computed that same
way (`_plan`). A stream's prompt is its `prompt_len`, so a seeded stream is a function of
(model, prompt, settings, seed); `logits(ids)` without `prompt_len` evaluates `ids` whole.

`stream_batch` draws N samples of one prompt, one per seed, together where a backend has a
batched path (`_batch_steps`: one forward per token for the batch), else one after another;
sample i is the stream its seed gives alone, up to the arithmetic of a batch. A backend may
sample on its device (`_step_logits` / `_pick_rows`); `activity` says what it does in the
background (e.g. compiling), for a screen to show.

Backends are not thread-safe: use one from one worker thread at a time.
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence

import numpy as np

from lab.errors import LabError
from lab.sampling import (SamplingSettings, entropy, log_softmax, logsumexp, make_rng, sample_with_prob,
                          top_indices)
from lab.types import (
    Capabilities,
    ChatMessage,
    Distribution,
    GenerationResult,
    LayerPrediction,
    ModelInfo,
    RenderedChat,
    Span,
    TokenEvent,
    TokenProb,
    TokenSurprise,
)


class Backend(ABC):
    """A loaded model. Subclasses fill in the primitives marked abstract."""

    info: ModelInfo
    capabilities: Capabilities
    sliding_window = False  # True: a sequence longer than the context is read through its last window

    def __init__(self) -> None:
        # Tokens actually run through the network since load (prefix-cache hits excluded).
        self.tokens_evaluated = 0
        # Held around every forward pass: two screens' workers may share one model.
        self.lock = threading.RLock()
        self._piece_cache: dict[int, bytes] = {}
        self._prompt_logits: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()  # prompt -> logits after it

    # ---- primitives --------------------------------------------------------------
    @abstractmethod
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Text to ids. `add_special` adds BOS when the model wants one; `parse_special`
        turns "<|im_start|>" in the text into its special token instead of plain text."""

    @abstractmethod
    def _token_bytes(self, token_id: int) -> bytes:
        """The raw bytes of one token (special tokens: their text form)."""

    @abstractmethod
    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        """Logits (float32, vocab) for the position after `ids`, computed the canonical way:
        `ids[:prompt_len]` as one prompt evaluation, each later id alone (see the module
        docstring). Cached state may be reused where `_plan` says it was computed that way."""

    @property
    @abstractmethod
    def eos_ids(self) -> frozenset[int]:
        """Ids that end a generation."""

    def _chat_template(self) -> str | None:
        return None

    def _special_tokens(self) -> dict[str, str]:
        """bos_token / eos_token strings for the chat template."""
        return {}

    def _is_special(self, token_id: int) -> bool:
        return False

    def _position_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits after every prefix of `ids`, shape (len(ids), vocab). Default: one step each."""
        return np.stack([np.array(self._last_logits(list(ids[:i + 1]), i + 1)) for i in range(len(ids))])

    def _plan(self, ids: list[int], prompt_len: int, state: list[int], state_prompt: int,
              state_logits: np.ndarray | None) -> tuple[int, np.ndarray | None]:
        """How to compute the canonical logits after (`ids`, `prompt_len`) from a cached state
        (the ids `state`, computed with prompt length `state_prompt`, its logits `state_logits`).

        Returns (keep, logits): `logits` when no model call is needed; else `keep`, the number
        of leading positions of the cached state to keep: 0 means evaluate the prompt from
        scratch, then the rest one at a time; keep >= prompt_len means evaluate ids[keep:]
        one at a time on top of the kept state. Example: state [1,2,3,4] with prompt 2, ids
        [1,2,3,9] with prompt 2 -> keep 3; the same ids with prompt 3 -> keep 0.
        """
        keep = 0
        if state_prompt == prompt_len and state[:prompt_len] == ids[:prompt_len]:
            keep, limit = prompt_len, min(len(state), len(ids))
            while keep < limit and state[keep] == ids[keep]:
                keep += 1
        if keep == len(ids):
            if len(state) == len(ids) and state_logits is not None:
                return keep, state_logits
            if len(ids) == prompt_len:
                memo = self._prompt_logits.get(tuple(ids))
                if memo is not None:
                    return keep, memo
                return 0, None  # the prompt's last logits come only from evaluating it whole
            keep = len(ids) - 1  # a position after the prompt: run it alone again
        return keep, None

    def _remember_prompt(self, prompt: Sequence[int], logits: np.ndarray) -> None:
        """Keep the logits after a whole prompt: the next stream from it starts without a model call."""
        self._prompt_logits[tuple(prompt)] = logits
        self._prompt_logits.move_to_end(tuple(prompt))
        while len(self._prompt_logits) > 8:
            self._prompt_logits.popitem(last=False)

    def _step_logits(self, ids: list[int], prompt_len: int):
        """The logits a stream samples from after (`ids`, `prompt_len`), in whatever form
        `_pick_rows` reads: a numpy array here; a device tensor where a backend samples on its device."""
        return self._last_logits(ids, prompt_len)

    def _pick_rows(self, rows, settings: SamplingSettings, rngs: Sequence[np.random.Generator],
                   top_n: int) -> list[tuple[int, float, float, list[tuple[int, float]]]]:
        """Sample one token per row of logits, each row with its own rng: (token, probability under
        `settings`, raw probability, the raw top `top_n` as (id, logprob)). Numpy on the host."""
        out = []
        for logits, rng in zip(rows, rngs):
            token, used_prob = sample_with_prob(logits, settings, rng)
            lse = logsumexp(logits)
            raw_prob = math.exp(float(logits[token]) - lse)
            out.append((token, used_prob, raw_prob,
                        [(int(i), float(logits[i]) - lse) for i in top_indices(logits, top_n)]))
        return out

    def _pick(self, logits, settings: SamplingSettings, rng: np.random.Generator,
              top_n: int) -> tuple[int, float, float, tuple[TokenProb, ...]]:
        """`_pick_rows` for one stream, with the top alternatives as `TokenProb`s."""
        token, used_prob, raw_prob, top = self._pick_rows(logits[None], settings, [rng], top_n)[0]
        return token, used_prob, raw_prob, tuple(TokenProb(i, self.token_bytes(i), math.exp(lp), lp) for i, lp in top)

    def _batch_steps(self, prompt: list[int], n: int, max_tokens: int) -> Generator | None:
        """A generator for batched sampling, or None (then `stream_batch` runs the samples one after
        another). It yields the logits rows (n, vocab) after the prompt, then, sent one token per
        row, the rows after each (at most `max_tokens` rows in all); every row must be what `_step_logits` gives for that sequence,
        up to the arithmetic of a batch."""
        return None

    @property
    def activity(self) -> str:
        """What the backend is doing in the background, for a screen to show ("" when nothing),
        e.g. "compiling the decode step, first time only"."""
        return ""

    def _layer_logits(self, ids: Sequence[int]) -> list[np.ndarray]:
        raise LabError(f"{self.info.backend} does not expose hidden states; the logit lens needs the transformers backend.")

    def close(self) -> None:
        """Free the model."""

    # ---- built on the primitives ------------------------------------------------
    def token_bytes(self, token_id: int) -> bytes:
        piece = self._piece_cache.get(token_id)
        if piece is None:
            if not 0 <= token_id < self.info.vocab_size:
                raise LabError(f"token id {token_id} is outside the vocabulary (0..{self.info.vocab_size - 1}).")
            piece = self._token_bytes(token_id)
            self._piece_cache[token_id] = piece
        return piece

    def detokenize_bytes(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.token_bytes(i) for i in ids)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.detokenize_bytes(ids).decode("utf-8", errors="replace")

    def logits(self, ids: Sequence[int], prompt_len: int | None = None) -> np.ndarray:
        """The raw next-token logits after `ids` (a copy the caller may keep).

        `prompt_len`: how many leading ids are the prompt (evaluated together); the ids after
        it are evaluated one at a time, as a stream generates them. Default: all of `ids`."""
        ids = self._check_ids(ids)
        with self.lock:
            return np.array(self._last_logits(ids, self._check_prompt_len(ids, prompt_len)), dtype=np.float32,
                            copy=True)

    def distribution_from_logits(
        self, logits: np.ndarray, n_ids: int, top_k: int = 10, query_ids: Sequence[int] = ()
    ) -> Distribution:
        logprobs = log_softmax(logits)
        return self._distribution(logprobs, n_ids, top_k, query_ids)

    def next_token(self, ids: Sequence[int], top_k: int = 10, query_ids: Sequence[int] = (),
                   prompt_len: int | None = None) -> Distribution:
        """The model's (temperature 1, unfiltered) distribution for the token after `ids`
        (`prompt_len` as for `logits`)."""
        return self.distribution_from_logits(self.logits(ids, prompt_len), len(ids), top_k, query_ids)

    def _distribution(self, logprobs: np.ndarray, n_ids: int, top_k: int, query_ids: Sequence[int]) -> Distribution:
        idx = top_indices(logprobs, top_k)
        top = tuple(
            TokenProb(int(i), self.token_bytes(int(i)), float(np.exp(logprobs[i])), float(logprobs[i])) for i in idx
        )
        queried = []
        for qid in query_ids:
            if not 0 <= qid < logprobs.size:
                raise LabError(f"token id {qid} is outside the vocabulary (0..{logprobs.size - 1}).")
            lp = logprobs[qid]
            rank = int(np.count_nonzero(logprobs > lp)) + 1
            queried.append((int(qid), float(np.exp(lp)), rank))
        return Distribution(top, entropy(logprobs), int(logprobs.size), n_ids, tuple(queried))

    def stream(
        self,
        ids: Sequence[int],
        settings: SamplingSettings = SamplingSettings(),
        max_tokens: int = 64,
        cancel: threading.Event | None = None,
        top_n: int = 5,
        stop_at_eos: bool = True,
        stop_text: str = "",
    ) -> Generation:
        """Generate up to `max_tokens` after `ids`; iterate the result for `TokenEvent`s.

        `cancel` is checked before every token: setting it stops the stream within one token.
        `stop_text` ends the stream at the token that completes it (reason "stop text"; the
        text, which then contains it, is the caller's to cut).
        """
        return Generation(self, self._check_ids(ids), settings, max_tokens, cancel, top_n, stop_at_eos, stop_text)

    def generate(self, ids: Sequence[int], settings: SamplingSettings = SamplingSettings(), max_tokens: int = 64,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run a stream to its end and return the result."""
        gen = self.stream(ids, settings, max_tokens, cancel)
        for _ in gen:
            pass
        assert gen.result is not None
        return gen.result

    def stream_batch(self, ids: Sequence[int], settings: SamplingSettings, seeds: Sequence[int],
                     max_tokens: int = 64, cancel: threading.Event | None = None, top_n: int = 5,
                     stop_at_eos: bool = True, stop_text: str = "") -> BatchGeneration:
        """N samples of one prompt, one per seed (`settings.seed` is ignored), computed together
        where the backend can (one forward per token for the whole batch); iterate the result for
        (sample index, `TokenEvent`). Sample i is the stream `stream(ids, settings with seeds[i])`
        gives, up to the arithmetic of a batch (greedy: the same ids)."""
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise LabError("a batch needs at least one seed.")
        return BatchGeneration(self, self._check_ids(ids), settings, seeds, max_tokens, cancel, top_n, stop_at_eos,
                               stop_text)

    def generate_batch(self, ids: Sequence[int], settings: SamplingSettings, seeds: Sequence[int],
                       max_tokens: int = 64, cancel: threading.Event | None = None, top_n: int = 5,
                       stop_at_eos: bool = True, stop_text: str = "") -> list[GenerationResult]:
        """Run `stream_batch` to its end: one result per seed, in the seeds' order."""
        gen = self.stream_batch(ids, settings, seeds, max_tokens, cancel, top_n, stop_at_eos, stop_text)
        for _ in gen:
            pass
        return list(gen.results)

    def render_chat(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> RenderedChat:
        """Render a conversation with the model's own chat template, then tokenize it.

        Special tokens (e.g. <|im_start|>) are parsed as such and their spans marked.
        """
        from lab.chat import render_template

        template = self._chat_template()
        if not template:
            raise LabError(f"{self.info.name} has no chat template (it is a base model).",
                           "Use a chat/instruct model, or the few-shot prompt.")
        text = render_template(template, messages, add_generation_prompt, **self._special_tokens())
        ids = self.tokenize(text, add_special=False, parse_special=True)
        spans = []
        byte_pos = 0
        encoded = text.encode("utf-8")
        for pos, tid in enumerate(ids):
            piece = self.token_bytes(tid)
            start = byte_pos
            byte_pos += len(piece)
            if self._is_special(tid):
                c0 = len(encoded[:start].decode("utf-8", errors="ignore"))
                c1 = len(encoded[:byte_pos].decode("utf-8", errors="ignore"))
                spans.append(Span(pos, pos + 1, c0, c1))
        return RenderedChat(text, tuple(ids), tuple(spans), self._template_source())

    def _template_source(self) -> str:
        return "model"

    def surprisal(self, ids: Sequence[int], top_k: int = 5) -> list[TokenSurprise]:
        """How expected each token of `ids` was: its probability given the tokens before it.

        The first token has no context and gets probability 1 (nothing to predict it from).
        """
        ids = self._check_ids(ids)
        with self.lock:
            rows = self._position_logits(ids)
        out = [TokenSurprise(0, ids[0], self.token_bytes(ids[0]), 1.0, 0.0, 1, ())]
        for i in range(1, len(ids)):
            logprobs = log_softmax(rows[i - 1])
            lp = float(logprobs[ids[i]])
            rank = int(np.count_nonzero(logprobs > lp)) + 1
            top = self._distribution(logprobs, i, top_k, ()).top
            out.append(TokenSurprise(i, ids[i], self.token_bytes(ids[i]), math.exp(lp), -lp / math.log(2), rank, top))
        return out

    def lens(self, ids: Sequence[int], top_k: int = 1) -> list[LayerPrediction]:
        """Logit lens: the top tokens read from every layer's hidden state at the last position."""
        ids = self._check_ids(ids)
        out = []
        with self.lock:
            layer_logits = self._layer_logits(ids)
        for layer, logits in enumerate(layer_logits):
            dist = self._distribution(log_softmax(logits), len(ids), top_k, ())
            out.append(LayerPrediction(layer, dist.top))
        return out

    def _check_ids(self, ids: Sequence[int]) -> list[int]:
        ids = [int(i) for i in ids]
        if not ids:
            raise LabError("the sequence is empty: give at least one token.")
        bad = [i for i in ids if not 0 <= i < self.info.vocab_size]
        if bad:
            raise LabError(f"token id {bad[0]} is outside the vocabulary (0..{self.info.vocab_size - 1}).")
        if len(ids) > self.info.context_length and not self.sliding_window:
            raise LabError(f"{len(ids)} tokens do not fit the context window of {self.info.context_length}.")
        return ids

    @staticmethod
    def _check_prompt_len(ids: list[int], prompt_len: int | None) -> int:
        if prompt_len is None:
            return len(ids)
        if not 1 <= prompt_len <= len(ids):
            raise LabError(f"the prompt length {prompt_len} is not between 1 and the {len(ids)} ids given.")
        return int(prompt_len)


class Generation:
    """An iterator of `TokenEvent`s; `.result` is set once it is exhausted."""

    def __init__(self, backend: Backend, ids: list[int], settings: SamplingSettings, max_tokens: int,
                 cancel: threading.Event | None, top_n: int, stop_at_eos: bool, stop_text: str = "") -> None:
        self.backend = backend
        self.prompt = ids
        self.settings = settings
        self.max_tokens = max_tokens
        self.cancel = cancel
        self.top_n = top_n
        self.stop_at_eos = stop_at_eos
        self.stop_text = stop_text
        self.result: GenerationResult | None = None
        self._iter = self._run()

    def __iter__(self) -> Iterator[TokenEvent]:
        return self._iter

    def __next__(self) -> TokenEvent:
        return next(self._iter)

    def _run(self) -> Iterator[TokenEvent]:
        b = self.backend
        sample = _Sample(self.settings.seed)
        ids = list(self.prompt)
        t0 = time.perf_counter()
        for index in range(self.max_tokens):
            if self.cancel is not None and self.cancel.is_set():
                sample.reason = "cancelled"
                break
            if len(ids) >= b.info.context_length and not b.sliding_window:
                sample.reason = "context"
                break
            with b.lock:
                logits = b._step_logits(ids, len(self.prompt))
                token, used_prob, raw_prob, top = b._pick(logits, self.settings, sample.rng, self.top_n)
            ids.append(token)
            yield sample.take(b, index, token, used_prob, raw_prob, top, self.stop_at_eos, self.stop_text)
            if sample.reason:
                break
        self.result = sample.finish(t0)


class _Sample:
    """The running state of one sample (alone, or one row of a batch): its tokens, text and stop reason."""

    def __init__(self, seed: int) -> None:
        self.rng = make_rng(seed)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.ids: list[int] = []
        self.parts: list[str] = []
        self.tail = ""
        self.reason = ""  # "" while running

    def take(self, b: Backend, index: int, token: int, used_prob: float, raw_prob: float, top: tuple,
             stop_at_eos: bool, stop_text: str) -> TokenEvent:
        """Append one sampled token and return its event; `reason` is set when it ends the sample
        (its end-of-sequence token, or the stop text complete in what was decoded so far)."""
        piece = b.token_bytes(token)
        self.ids.append(token)
        if stop_at_eos and token in b.eos_ids:
            self.reason = "eos"
            return TokenEvent(index, token, piece, used_prob, raw_prob, top, "")
        text = self.decoder.decode(piece)
        self.parts.append(text)
        if stop_text:
            self.tail = (self.tail + text)[-(len(stop_text) + len(text)):]
            if stop_text in self.tail:
                self.reason = "stop text"
        return TokenEvent(index, token, piece, used_prob, raw_prob, top, text)

    def finish(self, t0: float) -> GenerationResult:
        self.parts.append(self.decoder.decode(b"", final=True))
        return GenerationResult(tuple(self.ids), "".join(self.parts), self.reason or "length",
                                time.perf_counter() - t0)


class BatchGeneration:
    """An iterator of (sample index, `TokenEvent`) for N samples of one prompt; `.results` (one
    `GenerationResult` per seed) is set once it is exhausted. `cancel` is checked before every
    step; each sample stops on its own (eos, stop text) while the others go on."""

    def __init__(self, backend: Backend, ids: list[int], settings: SamplingSettings, seeds: list[int],
                 max_tokens: int, cancel: threading.Event | None, top_n: int, stop_at_eos: bool,
                 stop_text: str) -> None:
        self.backend = backend
        self.prompt = ids
        self.settings = settings
        self.seeds = seeds
        self.max_tokens = max_tokens
        self.cancel = cancel
        self.top_n = top_n
        self.stop_at_eos = stop_at_eos
        self.stop_text = stop_text
        self.results: tuple[GenerationResult, ...] | None = None
        self._iter = self._run()

    def __iter__(self) -> Iterator[tuple[int, TokenEvent]]:
        return self._iter

    def __next__(self) -> tuple[int, TokenEvent]:
        return next(self._iter)

    def _run(self) -> Iterator[tuple[int, TokenEvent]]:
        from dataclasses import replace

        b = self.backend
        with b.lock:
            steps = b._batch_steps(list(self.prompt), len(self.seeds), self.max_tokens)
        if steps is None:  # no batched path: the same samples one after another
            results = []
            for k, seed in enumerate(self.seeds):
                gen = b.stream(self.prompt, replace(self.settings, seed=seed), self.max_tokens, self.cancel,
                               self.top_n, self.stop_at_eos, self.stop_text)  # a backend's own stream (remote)
                for ev in gen:
                    yield k, ev
                results.append(gen.result)
            self.results = tuple(results)
            return
        samples = [_Sample(seed) for seed in self.seeds]
        last = [0] * len(samples)  # the token each row of the batch ran last (stopped rows run on, unread)
        t0 = time.perf_counter()
        try:
            rows = None
            for index in range(self.max_tokens):
                running = [s for s in samples if not s.reason]
                if not running:
                    break
                if self.cancel is not None and self.cancel.is_set():
                    for s in running:
                        s.reason = "cancelled"
                    break
                if len(self.prompt) + index >= b.info.context_length and not b.sliding_window:
                    for s in running:
                        s.reason = "context"
                    break
                with b.lock:
                    rows = next(steps) if rows is None else steps.send(list(last))
                    picks = b._pick_rows(rows, self.settings, [s.rng for s in samples], self.top_n)
                for k, (s, (token, used_prob, raw_prob, top_pairs)) in enumerate(zip(samples, picks)):
                    last[k] = token
                    if s.reason:
                        continue
                    top = tuple(TokenProb(i, b.token_bytes(i), math.exp(lp), lp) for i, lp in top_pairs)
                    yield k, s.take(b, index, token, used_prob, raw_prob, top, self.stop_at_eos, self.stop_text)
        finally:
            steps.close()
        self.results = tuple(s.finish(t0) for s in samples)
