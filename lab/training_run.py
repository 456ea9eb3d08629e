"""A training run owned by the app: one worker thread trains, the screen reads snapshots.

    run = TrainingRun()
    run.start(cfg)            # a thread builds the Trainer and records every TrainEvent
    view = run.snapshot()     # a consistent, frozen copy: state, message, curves, samples
    run.toggle_pause(); run.stop(); run.save_now(); run.shutdown()

Every write happens under the run's own lock (the worker's and the caller's alike), and
`snapshot()` copies under the same lock, so a reader never sees a half-recorded step.
`version` grows with every change, so a reader redraws only when something changed.
Plain Python (no Textual): the app owns one from its first frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

PRESET_ORDER = ("cpu-quick", "cpu", "gpu-small", "gpu-gpt2")

# idle → preparing → running ⇄ paused → stopped (by the user) | finished (all steps) | failed
STATES = ("idle", "preparing", "running", "paused", "stopped", "finished", "failed")


@dataclass(frozen=True)
class RunView:
    """What a run has produced so far, copied at one instant."""

    version: int
    preset: str
    state: str
    message: str
    steps: tuple[int, ...] = ()  # steps with a training loss
    losses: tuple[float, ...] = ()
    tps: tuple[float, ...] = ()  # tokens/s at those steps
    val_steps: tuple[int, ...] = ()  # steps with a validation loss
    val_losses: tuple[float, ...] = ()
    samples: tuple[tuple[int, str], ...] = ()  # (step, text)
    last: object = None  # the latest lab.train.TrainEvent
    has_trainer: bool = False  # a model exists (it can be saved)

    @property
    def active(self) -> bool:
        return self.state in ("preparing", "running", "paused")


class TrainingRun:
    """One training run: written by its worker thread and by the UI's commands, always under `_lock`."""

    presets: tuple[str, ...] = PRESET_ORDER  # the names set_preset accepts (() = any)
    preset_kind = "training preset"  # as error messages name them

    def __init__(self, preset: str = PRESET_ORDER[0]) -> None:
        self._lock = threading.Lock()
        self.trainer = None
        self.thread: threading.Thread | None = None
        self.preset = preset
        self.state = "idle"
        self.message = ""
        self.version = 0
        self.last = None
        self._stop_requested = False
        self._save_lock = threading.Lock()  # held while save_now writes; pause and stop wait for it
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._tps: list[float] = []
        self._val_steps: list[int] = []
        self._val_losses: list[float] = []
        self._samples: list[tuple[int, str]] = []

    # ---- reading -----------------------------------------------------------------------
    def snapshot(self) -> RunView:
        with self._lock:
            return RunView(self.version, self.preset, self.state, self.message, tuple(self._steps),
                           tuple(self._losses), tuple(self._tps), tuple(self._val_steps), tuple(self._val_losses),
                           tuple(self._samples), self.last, self.trainer is not None)

    @property
    def active(self) -> bool:
        with self._lock:
            return self.state in ("preparing", "running", "paused")

    # ---- writing (all under the lock) -----------------------------------------------------
    def _set(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)
            self.version += 1

    def record(self, ev) -> None:
        """Add one TrainEvent (from the worker, or replayed)."""
        with self._lock:
            self.last = ev
            if ev.train_loss is not None:
                self._steps.append(ev.step)
                self._losses.append(ev.train_loss)
                self._tps.append(ev.tokens_per_sec)
            if ev.val_loss is not None:
                self._val_steps.append(ev.step)
                self._val_losses.append(ev.val_loss)
            if ev.sample is not None:
                self._samples.append((ev.step, ev.sample))
            self._note_end(ev)
            self.version += 1

    def _note_end(self, ev) -> None:
        """State and message from an event's `stopped` and `checkpoint` (under the lock)."""
        if ev.stopped:
            saved = " (checkpoint saved)" if ev.checkpoint else ""
            if ev.stopped == "stopped":
                self.state, self.message = "stopped", f"stopped at step {ev.step}{saved}"
            elif ev.stopped == "done":
                self.state, self.message = "finished", f"finished: {ev.step} steps{saved}"
            else:
                self.state, self.message = "failed", f"failed at step {ev.step}: {ev.stopped}"
            if ev.checkpoint:
                self.message += f" · {ev.checkpoint}"

    def set_preset(self, name: str) -> None:
        """Choose the preset of the next run (refused while a run is going, or for an unknown name)."""
        if self.presets and name not in self.presets:
            raise LabError(f"unknown {self.preset_kind} {name!r}; choose from {', '.join(self.presets)}.")
        with self._lock:
            if self.state in ("preparing", "running", "paused"):
                raise LabError("stop the run before changing the preset (x).")
            self.preset = name
            self.version += 1

    def next_preset(self) -> str:
        """Cycle the preset (refused while a run is going)."""
        names = self.presets or (self.preset,)
        name = names[(names.index(self.preset) + 1) % len(names)] if self.preset in names else names[0]
        self.set_preset(name)
        return name

    # ---- commands ------------------------------------------------------------------------
    def start(self, cfg) -> None:
        """Train `cfg` (a lab.train.TrainConfig) in a thread owned by this run. Call once per run."""
        with self._lock:
            if self.state != "idle":
                raise LabError("this run has already started; make a new TrainingRun.")
            self.state, self.message = "preparing", f"preparing {self.preset}…"
            self.version += 1
        # A plain thread owned by the run (not a UI worker): the app joins it on quit so the final
        # checkpoint is written, and it reports only through this object.
        self.thread = threading.Thread(target=self._train, args=(cfg,), name="deepdive-training", daemon=True)
        self.thread.start()

    def _train(self, cfg) -> None:
        from lab.devices import pick_torch_device
        from lab.train import Trainer

        try:
            if self.preset.startswith("gpu") and pick_torch_device(cfg.device) == "cpu":
                raise LabError(f"the {self.preset} preset is sized for a GPU and this machine has none "
                               "(it would need tens of GB of memory on the CPU); press n for cpu or cpu-quick.")
            trainer = Trainer(cfg)
        except Exception as exc:  # a LabError says what to do; anything else still must not leave "preparing"
            self._could_not_start(exc)
            return
        info = (f"{trainer.model.n_params():,} parameters · {len(trainer.train_data):,} training tokens "
                f"({trainer.corpus.kind}, vocab {len(trainer.corpus.pieces)})")
        if not self._begin(trainer, info):
            return
        try:
            for ev in trainer.run():
                self.record(ev)
        except Exception as exc:  # out of memory on a GPU preset, say: report, do not crash the app
            self._set(state="failed", message=f"training failed: {exc.__class__.__name__}: {exc}")
        if trainer.kept_previous is not None:
            with self._lock:
                self.message += f" · the previous checkpoint is kept as {trainer.kept_previous.name}"
                self.version += 1

    def _could_not_start(self, exc: Exception) -> None:
        text = str(exc) if isinstance(exc, LabError) else f"{exc.__class__.__name__}: {exc}"
        self._set(state="failed", message=f"could not start: {text}")

    def _begin(self, job, message: str) -> bool:
        """The job is built: hand it to the run and go on (True), unless a stop came while preparing."""
        with self._lock:
            self.trainer = None if self._stop_requested else job
            if self._stop_requested:  # x pressed (or the app quit) while preparing: nothing to save
                self.state, self.message = "stopped", "stopped before the first step (nothing saved)"
            else:
                self.state, self.message = "running", message
            self.version += 1
            return not self._stop_requested

    def toggle_pause(self) -> str:
        """Pause a running run or resume a paused one; returns the new state."""
        with self._lock:
            trainer, state = self.trainer, self.state
            if trainer is None or state not in ("running", "paused"):
                raise LabError("no run to pause: start one (s).")
            if self._save_lock.locked():
                raise LabError("a checkpoint is being written; try again in a moment.")
            if state == "running":
                trainer.pause()
                self.state = "paused"
            else:
                trainer.resume()
                self.state = "running"
            self.version += 1
            return self.state

    def stop(self) -> None:
        """Ask the run to stop; it writes a checkpoint and reports "stopped at step N"."""
        with self._lock:
            if self.state not in ("preparing", "running", "paused"):
                raise LabError("no run to stop.")
            if self._save_lock.locked():
                raise LabError("a checkpoint is being written; try again in a moment.")
            self._stop_requested = True
            self.message = "stopping: writing a checkpoint…" if self.trainer is not None else "stopping…"
            trainer = self.trainer
            self.version += 1
        if trainer is not None:
            trainer.stop()

    def save_now(self) -> tuple[Path, int]:
        """Write a checkpoint of a paused (or ended) run; returns (path, step)."""
        if not self._save_lock.acquire(blocking=False):
            raise LabError("a checkpoint is already being written.")
        try:  # pause and stop are refused from here on, so the weights hold still while written
            with self._lock:
                trainer, state = self.trainer, self.state
            if trainer is None:
                raise LabError("nothing to save yet: start a run (s).")
            if state in ("running", "preparing"):
                raise LabError("pause first (p): a checkpoint is taken between steps.")
            if state == "paused" and not trainer.wait_parked(timeout=60):
                raise LabError("the run has not paused yet (a step is still running); try again.")
            return trainer.save(), trainer.step
        except OSError as exc:
            raise LabError(f"could not save the checkpoint: {exc.strerror or exc}.") from exc
        finally:
            self._save_lock.release()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop a run (it writes a final checkpoint) and wait for its thread."""
        with self._save_lock:  # a save in progress finishes first
            pass
        try:
            self.stop()
        except LabError:
            pass  # nothing running
        if self.thread is not None:
            self.thread.join(timeout)
