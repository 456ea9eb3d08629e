"""The next-token explorer: a path of token ids you extend one token at a time.

Headless state behind the Next-token screen. It keeps the logits of the current sequence,
so temperature, top-k and top-p views are pure functions of them (no new forward pass);
extending the sequence by one token costs one decode thanks to the backend's KV cache.
History is a list of states; undo moves back, appending after an undo branches (the
states ahead are dropped), and redo moves forward again.

While the user looks at the bars, `prefetch` can compute the states one key away (the token
the next sample will draw, candidates 1-9) in a background thread, so a pick usually shows
its bars without waiting for the model. A step that asks for a state being prefetched waits
for that computation instead of starting a second one.

Every state is the backend's canonical one for (path, prompt length): the prompt evaluated
whole, each token after it alone, as a stream would. So the bars shown for a path do not
depend on the order in which it was reached (picked, prefetched, undone and redone).

With a `LogitsStore` (the rehearsal cache on disk), a state missing from memory is read from
disk before the model is asked, and, while `record()` holds (talk mode), a state computed live
is written there: a rehearsed talk then shows its Next-token steps without a forward pass. The
store is keyed by everything that changes the numbers (the model's identity, the ids, the prompt
length) and holds the float32 logits exactly, so a stored state is the live one bit for bit.

Thread safety: the path (history and position) changes only under the explorer's own lock, so
a worker appending tokens while the UI thread undoes or redoes leaves a consistent path (each
state is the one before it plus one token). Read the path at one instant with `state()`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


class LogitsStore:
    """Explorer states on disk: one float32 `.npy` per (model identity, ids, prompt length).

    A missing, damaged or wrong-shaped file is a miss; a folder that cannot be written only
    costs the replay (the state is computed live). Files are written atomically."""

    def __init__(self, folder: Path, model: str, vocab_size: int) -> None:
        self.folder, self.model, self.vocab_size = Path(folder), model, vocab_size

    def path(self, ids: Sequence[int], prompt_len: int) -> Path:
        key = hashlib.sha256(json.dumps([self.model, [int(i) for i in ids], int(prompt_len), 1]).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, ids: Sequence[int], prompt_len: int) -> np.ndarray | None:
        try:
            found = np.load(self.path(ids, prompt_len), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if found.dtype != np.float32 or found.shape != (self.vocab_size,):
            return None
        return found

    def put(self, ids: Sequence[int], prompt_len: int, logits: np.ndarray) -> None:
        path = self.path(ids, prompt_len)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(logits, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only cache only costs the replay


class Explorer:
    def __init__(self, backend, store: LogitsStore | None = None, record: Callable[[], bool] = lambda: False) -> None:
        self.backend = backend
        self.store = store  # the rehearsal cache on disk, read on a miss in memory
        self.record = record  # while true, states computed live are written to `store`
        self.history: list[PathStep] = []
        self.position = -1
        self.model_calls = 0  # states of the path computed (live or read from `store`; memory hits excluded)
        self.prefetch_calls = 0  # states computed ahead of the user, in the background (idem)
        self.live_calls = 0  # states of the path the backend computed (neither memory nor `store` held them)
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()  # states of the path
        self._ahead: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()  # states one key away
        self._lock = threading.Lock()  # guards both caches and the in-flight table
        self._path_lock = threading.Lock()  # guards history and position (never held during a model call)
        self._inflight: dict[tuple[int, ...], threading.Event] = {}
        self._prompt_len = 0  # states are computed with this many leading ids as the prompt

    # ---- the path -------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        with self._path_lock:
            return self.history[self.position].ids if self.history else ()

    def state(self) -> tuple[PathStep | None, int, int]:
        """(the current step, its index, how many states) read at one instant."""
        with self._path_lock:
            return (self.history[self.position] if self.history else None), self.position, len(self.history)

    def set_prompt(self, text: str) -> tuple[int, ...]:
        ids = tuple(self.backend.tokenize(text, add_special=True))
        if not ids:
            raise LabError("the prompt is empty: type something for the model to continue.")
        with self._path_lock:
            self.history = [PathStep(ids, "prompt")]
            self.position = 0
        self._new_prompt(len(ids))
        self._logits_for(ids, ahead=False)
        return ids

    def _new_prompt(self, prompt_len: int) -> None:
        with self._lock:  # states of another prompt were computed with another prompt length
            self._ahead.clear()
            self._cache.clear()
            self._prompt_len = prompt_len

    def restore(self, steps: list[tuple[tuple[int, ...], str]], position: int) -> tuple[int, ...]:
        """Put back a saved path: `steps` of (ids, how), each one token longer than the one
        before; `position` the state shown. Raises LabError when the path does not fit the model."""
        vocab = self.backend.info.vocab_size
        if not steps or not 0 <= position < len(steps):
            raise LabError("the saved path is empty or its position is outside it.")
        path = [PathStep(tuple(int(i) for i in ids), str(how)) for ids, how in steps]
        for before, after in zip(path, path[1:]):
            if after.ids[:-1] != before.ids or len(after.ids) != len(before.ids) + 1:
                raise LabError("the saved path is damaged: each step must add one token to the one before.")
        if any(not 0 <= i < vocab for i in path[-1].ids):
            raise LabError("the saved path holds token ids outside this model's vocabulary.")
        with self._path_lock:
            self.history, self.position = path, position
        self._new_prompt(len(path[0].ids))
        ids = path[position].ids
        self._logits_for(ids, ahead=False)
        return ids

    def append(self, token_id: int, how: str) -> tuple[int, ...]:
        """Extend the current state by one token; states ahead of it (after an undo) are dropped."""
        if not 0 <= token_id < self.backend.info.vocab_size:
            raise LabError(f"token id {token_id} is outside the vocabulary.")
        with self._path_lock:
            ids = (self.history[self.position].ids if self.history else ()) + (int(token_id),)
            del self.history[self.position + 1:]
            self.history.append(PathStep(ids, how))
            self.position += 1
        self._logits_for(ids, ahead=False)  # this step's state, even if an undo moved the path meanwhile
        return ids

    def undo(self) -> bool:
        with self._path_lock:
            if self.position <= 0:
                return False
            self.position -= 1
            return True

    def redo(self) -> bool:
        with self._path_lock:
            if self.position >= len(self.history) - 1:
                return False
            self.position += 1
            return True

    def logits(self) -> np.ndarray:
        """Logits after the current state (cached; computing them is the only model call)."""
        return self._logits_for(self.ids, ahead=False)

    def cached(self, ids: tuple[int, ...]) -> np.ndarray | None:
        """The logits after `ids` if they were computed already (never calls the model)."""
        with self._lock:
            found = self._cache.get(ids)
            return found if found is not None else self._ahead.get(ids)

    def _logits_for(self, key: tuple[int, ...], ahead: bool) -> np.ndarray:
        while True:
            with self._lock:
                found = self._cache.get(key)
                if found is None and not ahead and key in self._ahead:
                    found = self._ahead.pop(key)  # prefetched: it joins the path
                    self._store(self._cache, key, found, 64)
                elif found is None:
                    found = self._ahead.get(key)
                if found is not None:
                    if key in self._cache:
                        self._cache.move_to_end(key)
                    return found
                event = self._inflight.get(key)
                mine = event is None
                if mine:
                    event = self._inflight[key] = threading.Event()
                prompt_len = self._prompt_len
            if not mine:
                event.wait()  # another thread is computing exactly this state
                continue
            try:
                found = self._disk_or_live(key, min(prompt_len, len(key)), ahead)
            finally:
                with self._lock:
                    del self._inflight[key]
                event.set()
            with self._lock:
                if prompt_len != self._prompt_len:
                    return found  # the prompt changed meanwhile: not a state of this path
                if ahead:
                    self.prefetch_calls += 1
                    self._store(self._ahead, key, found, 16)
                else:
                    self.model_calls += 1
                    self._store(self._cache, key, found, 64)
            return found

    def _disk_or_live(self, key: tuple[int, ...], prompt_len: int, ahead: bool) -> np.ndarray:
        found = self.store.get(key, prompt_len) if self.store is not None else None
        if found is not None:
            return found
        found = self.backend.logits(list(key), prompt_len=prompt_len)
        if not ahead:
            with self._lock:
                self.live_calls += 1
        if self.store is not None and self.record():
            self.store.put(key, prompt_len, found)
        return found

    @staticmethod
    def _store(cache: OrderedDict, key, value, limit: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)

    def prefetch(self, ids: tuple[int, ...], tokens: Sequence[int], wanted: Callable[[], bool]) -> int:
        """Compute the states `ids + (t,)` for each token, in order, while `wanted()` holds.
        Blocks: call from a background thread. Returns how many were computed."""
        done = 0
        for t in tokens:
            if not wanted():
                break
            key = ids + (int(t),)
            if self.cached(key) is None:
                self._logits_for(key, ahead=True)
                done += 1
        return done

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
