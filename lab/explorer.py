"""The next-token explorer: a path of token ids you extend one token at a time.

Headless state behind the Next-token screen. It keeps the logits of the current sequence,
so temperature, top-k and top-p views are pure functions of them (no new forward pass);
extending the sequence by one token costs one decode thanks to the backend's KV cache.
History is a list of states; undo moves back, appending after an undo branches (the
states ahead are dropped), and redo moves forward again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from lab.errors import LabError
from lab.sampling import (SamplingSettings, entropy, log_softmax, logsumexp, make_rng, sample, sampling_probs,
                          top_indices)


@dataclass(frozen=True)
class PathStep:
    ids: tuple[int, ...]
    how: str  # "prompt", "picked #2", "sampled (seed 7)", "typed", "auto"


@dataclass(frozen=True)
class FilteredRow:
    id: int
    piece: bytes
    raw_prob: float
    prob: float  # after temperature / top-k / top-p


class Explorer:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.history: list[PathStep] = []
        self.position = -1
        self.model_calls = 0  # forward passes asked of the backend (cache hits excluded)
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()

    # ---- the path -------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        return self.history[self.position].ids if self.history else ()

    def set_prompt(self, text: str) -> tuple[int, ...]:
        ids = tuple(self.backend.tokenize(text, add_special=True))
        if not ids:
            raise LabError("the prompt is empty: type something for the model to continue.")
        self.history = [PathStep(ids, "prompt")]
        self.position = 0
        self.logits()
        return ids

    def append(self, token_id: int, how: str) -> tuple[int, ...]:
        """Extend the current state by one token; states ahead of it (after an undo) are dropped."""
        if not 0 <= token_id < self.backend.info.vocab_size:
            raise LabError(f"token id {token_id} is outside the vocabulary.")
        ids = self.ids + (int(token_id),)
        del self.history[self.position + 1:]
        self.history.append(PathStep(ids, how))
        self.position += 1
        self.logits()
        return ids

    def undo(self) -> bool:
        if self.position <= 0:
            return False
        self.position -= 1
        return True

    def redo(self) -> bool:
        if self.position >= len(self.history) - 1:
            return False
        self.position += 1
        return True

    def logits(self) -> np.ndarray:
        """Logits after the current state (cached; computing them is the only model call)."""
        key = self.ids
        found = self._cache.get(key)
        if found is None:
            found = self.backend.logits(list(key))
            self.model_calls += 1
            self._cache[key] = found
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return found

    def cached(self, ids: tuple[int, ...]) -> np.ndarray | None:
        """The logits after `ids` if they were computed already (never calls the model)."""
        return self._cache.get(ids)

    def filtered(self, settings: SamplingSettings, top_k: int = 10,
                 logits: np.ndarray | None = None) -> list[FilteredRow]:
        """The top tokens by raw probability with their probability after the sampling filters.

        A pure function of the logits (the current state's unless given): no model call."""
        logits = self.logits() if logits is None else logits
        top = top_indices(logits, top_k)
        lse = logsumexp(logits)
        raw = np.exp(np.asarray(logits, dtype=np.float64)[top] - lse)
        if settings.temperature == 1.0 and settings.top_k == 0 and settings.top_p == 1.0:
            after = raw  # no filter: the sampler draws from the model's own distribution
        else:
            after = sampling_probs(logits, settings)[top]
        return [FilteredRow(int(i), self.backend.token_bytes(int(i)), float(r), float(a))
                for i, r, a in zip(top, raw, after)]

    @staticmethod
    def entropy(logits: np.ndarray) -> float:
        return entropy(log_softmax(logits))

    def sample(self, settings: SamplingSettings, seed: int) -> int:
        """The token the sampler draws with `seed` (temperature 0: the argmax)."""
        return sample(self.logits(), settings, make_rng(seed))

    def token_for_text(self, text: str) -> int:
        """The id of a piece of text that is one token (with or without a leading space as typed)."""
        ids = self.backend.tokenize(text, add_special=False)
        if len(ids) != 1:
            pieces = " | ".join(repr(self.backend.token_bytes(i).decode("utf-8", "replace")) for i in ids[:6])
            raise LabError(f"{text!r} is {len(ids)} tokens for {self.backend.info.name} ({pieces}); type one token.")
        return ids[0]
