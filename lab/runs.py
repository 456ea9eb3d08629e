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

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from lab.errors import LabError
from lab.sampling import SamplingSettings
from lab.types import TokenEvent


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


def stream_seeds(backend, ids: Sequence[int], settings: SamplingSettings, seeds: Sequence[int], max_tokens: int,
                 cancel: threading.Event, emit: Callable[[SampleUpdate], None], *, top_n: int = 5,
                 stop_text: str = "", every: float = 0.04, first_index: int = 0) -> None:
    """Sample one continuation of `ids` per seed (temperature etc. from `settings`), calling
    `emit` with new tokens about every `every` seconds and once more when each ends. A
    `LabError` ends that sample with stop "error" and the message; the next seed still runs.
    Blocks: call from a worker thread."""
    for k, seed in enumerate(seeds):
        index = first_index + k
        if cancel.is_set():
            emit(SampleUpdate(index, seed, stop="cancelled"))
            continue
        t0 = last = time.perf_counter()
        pending: list[TokenEvent] = []
        try:
            gen = backend.stream(list(ids), replace(settings, seed=seed), max_tokens, cancel, top_n=top_n,
                                 stop_text=stop_text)
            for ev in gen:
                pending.append(ev)
                now = time.perf_counter()
                if now - last > every:
                    emit(SampleUpdate(index, seed, tuple(pending)))
                    pending, last = [], now
            stop = gen.result.stop_reason if gen.result else "cancelled"
        except LabError as exc:
            emit(SampleUpdate(index, seed, tuple(pending), "error", time.perf_counter() - t0, str(exc)))
            continue
        emit(SampleUpdate(index, seed, tuple(pending), stop, time.perf_counter() - t0))
