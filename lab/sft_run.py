"""A tiny-chat run (pretrain, then SFT) owned by the app, read by the Post-training screen as snapshots.

    run = SFTRun()
    run.start(cfg)            # a lab.sft.SFTConfig; a thread runs lab.sft.TinyChat
    view = run.snapshot()     # lab.training_run.RunView: state, message, curves, samples

It is `lab.training_run.TrainingRun` (the same lock, states, pause/stop and snapshots) with
another worker: the stages' events go on one step axis (the SFT steps follow the pretraining
steps), and the message says which stage is running. With `experiment=True` it runs the
answer-first vs working-first experiment instead. Plain Python, no Textual.
"""

from __future__ import annotations

from dataclasses import replace

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
    """One tiny-chat run, or with `experiment` the answer-first vs working-first experiment
    (lab.sft.StyleExperiment, whose `results` land in `results` when it ends)."""

    def __init__(self, preset: str = "cpu-quick", experiment: bool = False) -> None:
        super().__init__(preset)
        self.experiment = experiment
        self.results: dict = {}  # style -> [lab.sft.Scored], once the experiment has run

    def _train(self, cfg) -> None:
        from lab.sft import StyleExperiment, TinyChat

        try:
            if self.experiment:
                cfg = replace(cfg, counts=(0, max(cfg.counts[1], 120), 0, 0))
                job, stages = StyleExperiment(cfg), ("pretrain", "sft answer", "sft working")
            else:
                job, stages = TinyChat(cfg), ("pretrain", "sft")
        except Exception as exc:  # a LabError says what to do; anything else still must not leave "preparing"
            self._could_not_start(exc)
            return
        if not self._begin(job, "pretraining (after a vocabulary is trained)"):
            return
        lengths = {"pretrain": cfg.pretrain_iters}
        offsets, total = {}, 0
        for stage in stages:  # one step axis: each stage's steps follow the previous stage's
            offsets[stage] = total
            total += lengths.get(stage, cfg.max_iters)
        try:
            for phase, ev in job.run():
                if ev.step == 0 and not ev.stopped and phase != "pretrain":
                    self._set(message=f"{phase}: the loss counts only the assistant's tokens")
                ev = replace(ev, step=ev.step + offsets[phase], max_iters=total)
                if ev.stopped == "done" and phase != stages[-1]:
                    continue  # the next stage follows: the run is not over
                self.record(ev)
        except Exception as exc:
            self._set(state="failed", message=f"training failed: {exc.__class__.__name__}: {exc}")
            return
        if self.experiment:
            with self._lock:
                self.results = dict(job.results)
                self.version += 1
