"""The app's training run: what it has produced so far, written by the worker thread and read
by the Training screen. Plain Python (no Textual), so the app can own one from its first frame
without importing the Training screen's widgets."""

from __future__ import annotations

import threading

PRESET_ORDER = ("cpu-quick", "cpu", "gpu-small", "gpu-gpt2")


class TrainingRun:
    """What a training run has produced so far; written by the worker thread, read by the screen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trainer = None
        self.thread: threading.Thread | None = None
        self.preset = PRESET_ORDER[0]
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.tps: list[float] = []
        self.samples: list[tuple[int, str]] = []
        self.last = None
        self.state = "idle"  # idle, preparing, running, paused, finished, failed
        self.message = ""
        self.version = 0  # bumped on every change, so the screen redraws only when needed

    def record(self, ev) -> None:
        with self.lock:
            self.last = ev
            if ev.train_loss is not None:
                self.steps.append(ev.step)
                self.losses.append(ev.train_loss)
                self.tps.append(ev.tokens_per_sec)
            if ev.val_loss is not None:
                self.val_steps.append(ev.step)
                self.val_losses.append(ev.val_loss)
            if ev.sample is not None:
                self.samples.append((ev.step, ev.sample))
            if ev.stopped:
                self.state = "finished" if ev.stopped in ("done", "stopped") else "failed"
                self.message = f"stopped: {ev.stopped}" + (f" · checkpoint {ev.checkpoint}" if ev.checkpoint else "")
            self.version += 1

    @property
    def active(self) -> bool:
        return self.state in ("preparing", "running", "paused")

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop a run (it writes a final checkpoint) and wait for its thread."""
        if self.trainer is not None and self.active:
            self.trainer.stop()
        if self.thread is not None:
            self.thread.join(timeout)
