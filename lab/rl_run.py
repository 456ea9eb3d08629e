"""An RL job (or any stepped job) owned by the app, read by the Post-training screen as snapshots.

    run = RLRun()                       # make_job defaults to lab.rl.trainer_for; RLHF passes its own
    run.start(cfg)                      # a thread: (train a tiny-chat first if none) make the job, run it
    view = run.snapshot()               # JobView: state, message, every event so far, the latest one
    run.toggle_pause(); run.stop(); run.save_now(); run.shutdown()

It is lab.training_run.TrainingRun (the same lock, states idle/preparing/running/paused/stopped/
finished/failed, pause/stop/save, shutdown on quit) with a generic worker. A job is any object with
run() (yielding events), stop(), pause(), resume(), wait_parked(timeout), save() and `step`; an event
has `step`, `stopped` ("" while running; "done", "stopped" or a reason at the end), `checkpoint` and
line(). The run keeps every event (events), so a view can draw curves from any field of them.
`prepare(cfg, run)` (optional) runs first in the thread, e.g. to train the SFT model RL starts from;
it may call run.note(message) and should return early when run.stop_requested is set.
Plain Python, no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from lab.errors import LabError
from lab.training_run import TrainingRun


@dataclass(frozen=True)
class JobView:
    """What a job has produced so far, copied at one instant."""

    version: int
    preset: str
    state: str
    message: str
    events: tuple = ()
    last: object = None
    has_trainer: bool = False

    @property
    def active(self) -> bool:
        return self.state in ("preparing", "running", "paused")


class JobRun(TrainingRun):
    """A TrainingRun whose worker runs `make_job(cfg)` and records its events (see the module docstring)."""

    def __init__(self, make_job: Callable, preset: str = "", prepare: Callable | None = None,
                 presets: tuple[str, ...] = ()) -> None:
        super().__init__(preset)
        self.make_job = make_job
        self.prepare = prepare
        self.presets = presets  # () = any name (TrainingRun.set_preset)
        self.preset_kind = "preset"
        self._events: list = []

    def snapshot(self) -> JobView:
        with self._lock:
            return JobView(self.version, self.preset, self.state, self.message, tuple(self._events), self.last,
                           self.trainer is not None)

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop_requested

    def note(self, message: str) -> None:
        """A progress line while preparing (from the worker)."""
        self._set(message=message)

    def record(self, ev) -> None:
        with self._lock:
            self.last = ev
            self._events.append(ev)
            self._note_end(ev)
            self.version += 1

    def stop(self) -> None:
        """As TrainingRun.stop, and also while preparing (prepare sees stop_requested)."""
        with self._lock:
            if self.state not in ("preparing", "running", "paused"):
                raise LabError("no run to stop.")
            self._stop_requested = True
            self.message = "stopping: writing a checkpoint…" if self.trainer is not None else "stopping…"
            job, prep = self.trainer, getattr(self, "_prep_job", None)
            self.version += 1
        for target in (job, prep):
            if target is not None:
                target.stop()

    def _train(self, cfg) -> None:
        try:
            if self.prepare is not None:
                self.prepare(cfg, self)
            job = None if self.stop_requested else self.make_job(cfg)
        except Exception as exc:  # a LabError says what to do; anything else still must not leave "preparing"
            self._could_not_start(exc)
            return
        if not self._begin(job, "running"):
            return
        try:
            for ev in job.run():
                self.record(ev)
        except Exception as exc:
            self._set(state="failed", message=f"the run failed: {exc.__class__.__name__}: {exc}")


def train_base_if_missing(cfg, run: "RLRun") -> None:
    """prepare() for RL: when the tiny-chat RL starts from (cfg.base, else the lab's) does not exist, train it
    first (lab.sft.TinyChat with run.sft_config, else cfg.sft_preset) into that checkpoint's folder."""
    from pathlib import Path

    from lab.rl import default_base
    from lab.sft import PRESETS, TinyChat

    base = Path(cfg.base) if cfg.base else default_base()
    if base.exists():
        return
    sft_cfg = replace(run.sft_config or PRESETS[cfg.sft_preset], out_dir=str(base.parent), base="")
    chat = TinyChat(sft_cfg)
    with run._lock:
        run._prep_job = chat
    total = chat.cfg.pretrain_iters + chat.cfg.max_iters
    for phase, ev in chat.run():
        step = ev.step + (chat.cfg.pretrain_iters if phase == "sft" else 0)
        run.note(f"no tiny-chat yet: training one first ({phase} step {step}/{total})")
        if run.stop_requested:
            break
    with run._lock:
        run._prep_job = None


class RLRun(JobRun):
    """The RL view's run: lab.rl.trainer_for on an lab.rl.RLConfig, training the SFT model first if needed
    (with `sft_config`, else the config's sft_preset)."""

    def __init__(self, preset: str = "tiny", sft_config=None) -> None:
        from lab.rl import PRESETS, trainer_for

        super().__init__(trainer_for, preset, train_base_if_missing, tuple(PRESETS))
        self.sft_config = sft_config
