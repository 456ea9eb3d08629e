"""Runs of seeded samples: the one loop every screen that samples a model N times uses.

`stream_seeds` streams one answer per seed and reports progress as `SampleUpdate`s (new
tokens in batches, then the end); `RunHandle` numbers runs and owns the cancel event, so a
screen starts a run, cancels the previous one, and drops updates of a run that is no longer
current. Headless: no UI import; safe to call from a worker thread.

    handle = RunHandle()
    run = handle.start()                      # cancels the previous run
    stream_seeds(backend, ids, settings, [1, 2, 3], 48, run.cancel, emit)
    ...
    if handle.is_current(run.id): apply(update)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from lab.cache import JsonCache
from lab.errors import LabError
from lab.sampling import SamplingSettings
from lab.types import TokenEvent, TokenProb


@dataclass(frozen=True)
class SampleUpdate:
    """Progress of the sample for one seed: tokens since the last update, and at the end its
    stop reason (eos | length | stop text | cancelled | error) and duration."""

    index: int  # position of the seed in the run
    seed: int
    events: tuple[TokenEvent, ...] = ()
    stop: str = ""  # "" while streaming
    seconds: float = 0.0
    error: str = ""  # the message when stop == "error"
    cached: bool = False  # replayed from a `SampleCache`, not sampled now

    @property
    def done(self) -> bool:
        return bool(self.stop)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events)


@dataclass(frozen=True)
class Run:
    id: int
    cancel: threading.Event


class RunHandle:
    """Numbers a screen's runs; starting one cancels the one before."""

    def __init__(self) -> None:
        self.current = Run(0, threading.Event())

    def start(self) -> Run:
        self.current.cancel.set()
        self.current = Run(self.current.id + 1, threading.Event())
        return self.current

    def stop(self) -> None:
        self.current.cancel.set()

    def is_current(self, run_id: int) -> bool:
        return run_id == self.current.id

    @property
    def running(self) -> bool:
        return not self.current.cancel.is_set()


def model_identity(backend) -> str:
    """What makes a model's numbers what they are: name, file (and its size and time when loaded, so a
    file retrained or replaced at the same path is another model), quantisation, backend."""
    i = backend.info
    return f"{i.name}|{i.source}|{i.stamp}|{i.quantisation}|{i.backend}"


def events_to_json(events: Sequence[TokenEvent]) -> list[dict]:
    """Token events as plain JSON values (pieces as hex), for caches and saved states."""
    return [{"i": e.index, "id": e.id, "piece": e.piece.hex(), "p": e.prob, "raw": e.raw_prob, "text": e.text,
             "top": [[t.id, t.piece.hex(), t.prob, t.logprob] for t in e.top]} for e in events]


def events_from_json(rows: list[dict]) -> tuple[TokenEvent, ...]:
    """The inverse of `events_to_json`; raises KeyError/ValueError/TypeError on damaged rows."""
    return tuple(TokenEvent(int(e["i"]), int(e["id"]), bytes.fromhex(e["piece"]), float(e["p"]), float(e["raw"]),
                            tuple(TokenProb(int(t[0]), bytes.fromhex(t[1]), float(t[2]), float(t[3]))
                                  for t in e["top"]), str(e["text"])) for e in rows)


class SampleCache(JsonCache):
    """Finished samples on disk, one JSON file per (model, prompt ids, settings, seed), so a
    rehearsed talk replays at once and offline. A damaged file is a miss (sampled again)."""

    @staticmethod
    def key(model: str, ids: Sequence[int], settings: SamplingSettings, seed: int, max_tokens: int,
            stop_text: str, top_n: int) -> str:
        blob = json.dumps([model, list(ids), settings.temperature, settings.top_k, settings.top_p, seed, max_tokens,
                           stop_text, top_n, 1])
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> tuple[tuple[TokenEvent, ...], str, float] | None:
        data = super().get(key)
        try:
            return events_from_json(data["events"]), str(data["stop"]), float(data["seconds"])
        except (ValueError, TypeError, KeyError, IndexError):
            return None

    def put(self, key: str, events: Sequence[TokenEvent], stop: str, seconds: float) -> None:
        super().put(key, {"stop": stop, "seconds": seconds, "events": events_to_json(events)})


def stream_seeds(backend, ids: Sequence[int], settings: SamplingSettings, seeds: Sequence[int], max_tokens: int,
                 cancel: threading.Event, emit: Callable[[SampleUpdate], None], *, top_n: int = 5,
                 stop_text: str = "", every: float = 0.04, first_index: int = 0,
                 cache: SampleCache | None = None) -> None:
    """Sample one continuation of `ids` per seed (temperature etc. from `settings`), calling
    `emit` with new tokens about every `every` seconds and once more when each ends. A
    `LabError` ends that sample with stop "error" and the message; the next seed still runs.
    With a `cache`, a sample already there is replayed (one update, `cached=True`) and a new
    one that ends normally is stored. Blocks: call from a worker thread."""
    model = model_identity(backend) if cache is not None else ""
    for k, seed in enumerate(seeds):
        index = first_index + k
        if cancel.is_set():
            emit(SampleUpdate(index, seed, stop="cancelled"))
            continue
        key = SampleCache.key(model, ids, settings, seed, max_tokens, stop_text, top_n) if cache is not None else ""
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            emit(SampleUpdate(index, seed, hit[0], hit[1], hit[2], cached=True))
            continue
        every_event: list[TokenEvent] = []
        t0 = last = time.perf_counter()
        pending: list[TokenEvent] = []
        try:
            gen = backend.stream(list(ids), replace(settings, seed=seed), max_tokens, cancel, top_n=top_n,
                                 stop_text=stop_text)
            for ev in gen:
                pending.append(ev)
                every_event.append(ev)
                now = time.perf_counter()
                if now - last > every:
                    emit(SampleUpdate(index, seed, tuple(pending)))
                    pending, last = [], now
            stop = gen.result.stop_reason if gen.result else "cancelled"
        except LabError as exc:
            emit(SampleUpdate(index, seed, tuple(pending), "error", time.perf_counter() - t0, str(exc)))
            continue
        seconds = time.perf_counter() - t0
        emit(SampleUpdate(index, seed, tuple(pending), stop, seconds))
        if cache is not None and stop in ("eos", "length", "stop text"):
            cache.put(key, every_event, stop, seconds)
