"""A tiny-chat run (pretrain, then SFT) owned by the app, read by the Post-training screen as snapshots.

    run = SFTRun()
    run.start(cfg)            # a lab.sft.SFTConfig; a thread runs lab.sft.TinyChat
    view = run.snapshot()     # lab.training_run.RunView: state, message, curves, samples

It is `lab.training_run.TrainingRun` (the same lock, states, pause/stop and snapshots) with
another worker: both stages' events go on one step axis (the SFT steps follow the pretraining
steps), and the message says which stage is running. Plain Python, no Textual.
"""

from __future__ import annotations

from dataclasses import replace

from lab.errors import LabError
from lab.training_run import TrainingRun


def preset_cost(name: str) -> str:
    """What a preset is and costs, in words, before it starts (measured on a 2-core laptop CPU)."""
    from lab.sft import PRESETS

    minutes = {"cpu-quick": "about 2 minutes on a 2-core CPU", "cpu": "about 10 minutes on a 2-core CPU",
               "gpu": "a few minutes on a GPU"}[name]
    c = PRESETS[name]
    return (f"{name}: {c.n_layer} layers × {c.n_embd} wide, {c.pretrain_iters:,} pretraining + {c.max_iters:,} "
            f"SFT steps, {minutes}")


class SFTRun(TrainingRun):
    """One tiny-chat run; see the module docstring."""

    def _train(self, cfg) -> None:
        from lab.sft import TinyChat

        try:
            chat = TinyChat(cfg)
        except Exception as exc:  # a LabError says what to do; anything else still must not leave "preparing"
            text = str(exc) if isinstance(exc, LabError) else f"{exc.__class__.__name__}: {exc}"
            self._set(state="failed", message=f"could not start: {text}")
            return
        with self._lock:
            self.trainer = None if self._stop_requested else chat
            if self._stop_requested:
                self.state, self.message = "stopped", "stopped before the first step (nothing saved)"
            else:
                self.state, self.message = "running", f"pretraining (vocabulary of {len(chat.vocab.pieces)} tokens)"
            self.version += 1
            if self._stop_requested:
                return
        offset = cfg.pretrain_iters if chat.pretrainer is not None else 0
        try:
            for phase, ev in chat.run():
                if phase == "sft":
                    ev = replace(ev, step=ev.step + offset, max_iters=ev.max_iters + offset)
                    if ev.step == offset and not ev.stopped:
                        self._set(message="SFT: the loss counts only the assistant's tokens")
                elif not ev.stopped:
                    ev = replace(ev, max_iters=ev.max_iters + cfg.max_iters)
                if phase == "pretrain" and ev.stopped == "done":
                    continue  # SFT follows: the run is not over
                self.record(ev)
        except Exception as exc:
            self._set(state="failed", message=f"training failed: {exc.__class__.__name__}: {exc}")
