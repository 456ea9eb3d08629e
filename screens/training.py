"""Training screen: pretrain a tiny GPT live; the loss falls while the samples turn into text.

The run belongs to the app (`TrainingRun`), not to the screen: leaving the screen does not
stop it, coming back shows where it is, and quitting the app stops it with a checkpoint.
Keys (this screen has no text box): s start, p pause/resume, x stop, c save a checkpoint,
l log scale, n next preset.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ProgressBar, RichLog, Sparkline, Static

from lab.errors import LabError
from screens.widgets import ModelStatus
from screens.training_run import PRESET_ORDER, TrainingRun
from screens.widgets.key_bar import KeyBar

class TrainingScreen(Screen):
    area_title = "Training"

    BINDINGS = [
        Binding("s", "start", "Start", id="training.start"),
        Binding("p", "pause", "Pause/resume", id="training.pause"),
        Binding("x", "stop", "Stop", id="training.stop"),
        Binding("c", "checkpoint", "Save", id="training.save"),
        Binding("l", "log_scale", "Log", id="training.log"),
        Binding("n", "next_preset", "Preset", id="training.preset"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.log_scale = False
        self.show_speed = True  # tokens/s, ETA and the sparkline (off for reproducible snapshots)
        self._drawn_version = -1
        self._samples_shown = 0

    @property
    def run(self) -> TrainingRun:
        return self.app.training

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Static(id="train-readout")
        yield ProgressBar(id="train-bar", show_eta=False)
        with Horizontal(id="train-main"):
            with Vertical(id="train-left"):
                yield Static(id="train-plot")
                yield Static("tokens/s", id="train-tps-label")
                yield Sparkline([], id="train-tps")
            yield RichLog(id="train-samples", wrap=True, max_lines=4000)
        yield KeyBar()

    def on_mount(self) -> None:
        self._samples_shown = 0
        self.set_interval(0.25, self.redraw)
        self.redraw(force=True)

    def on_screen_resume(self) -> None:
        self.redraw(force=True)

    # ---- actions ------------------------------------------------------------------------
    def action_next_preset(self) -> None:
        if self.run.active:
            self.notify("Stop the run before changing the preset.", severity="warning")
            return
        i = PRESET_ORDER.index(self.run.preset)
        self.run.preset = PRESET_ORDER[(i + 1) % len(PRESET_ORDER)]
        self.run.version += 1

    def action_start(self) -> None:
        run = self.run
        if run.active:
            self.notify("A run is already going (x stops it).")
            return
        from lab.train import PRESETS

        cfg = replace(PRESETS[run.preset], out_dir=str(self.app.training_dir))
        fresh = TrainingRun()
        fresh.preset = run.preset
        fresh.state, fresh.message = "preparing", f"preparing {run.preset}…"
        self.app.training = fresh
        self._samples_shown = 0
        self.query_one("#train-samples", RichLog).clear()
        # A plain thread, owned by the run: it reports only through `fresh` (polled by the screen),
        # and the app joins it on quit so the final checkpoint is written.
        fresh.thread = threading.Thread(target=self._train, args=(fresh, cfg), name="deepdive-training", daemon=True)
        fresh.thread.start()
        self.redraw(force=True)

    @staticmethod
    def _train(run: TrainingRun, cfg) -> None:
        """Worker thread: build the trainer and record every event."""
        from lab.devices import pick_torch_device
        from lab.train import Trainer

        try:
            if run.preset.startswith("gpu") and pick_torch_device(cfg.device) == "cpu":
                raise LabError(f"the {run.preset} preset is sized for a GPU and this machine has none "
                               "(it would need tens of GB of memory on the CPU); press n for cpu or cpu-quick.")
            trainer = Trainer(cfg)
        except (LabError, RuntimeError, MemoryError) as exc:
            with run.lock:
                run.state, run.message = "failed", f"could not start: {exc}"
                run.version += 1
            return
        with run.lock:
            run.trainer = trainer
            run.state = "running"
            run.message = (f"{trainer.model.n_params():,} parameters · {len(trainer.train_data):,} training tokens "
                           f"({trainer.corpus.kind}, vocab {len(trainer.corpus.pieces)})")
            run.version += 1
        try:
            for ev in trainer.run():
                run.record(ev)
        except Exception as exc:  # out of memory on a GPU preset, say: report, do not crash the app
            with run.lock:
                run.state, run.message = "failed", f"training failed: {exc.__class__.__name__}: {exc}"
                run.version += 1

    def action_pause(self) -> None:
        t = self.run.trainer
        if t is None or not self.run.active:
            return
        if t.paused:
            t.resume()
            self.run.state = "running"
        else:
            t.pause()
            self.run.state = "paused"
        self.run.version += 1

    def action_stop(self) -> None:
        if self.run.trainer is not None and self.run.active:
            self.run.trainer.stop()

    def action_checkpoint(self) -> None:
        t = self.run.trainer
        if t is None:
            self.notify("Nothing to save yet: start a run (s).")
            return
        if self.run.state == "running":
            self.notify("Pause first (p): a checkpoint is taken between steps.", severity="warning")
            return
        try:
            path = t.save()
        except OSError as exc:
            self.notify(f"Could not save: {exc}", severity="error")
            return
        self.notify(f"Saved {path} (step {t.step}); open it as the 'tiny' model.", title="Checkpoint")

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.redraw(force=True)

    # ---- drawing --------------------------------------------------------------------------
    def redraw(self, force: bool = False) -> None:
        run = self.run
        if not force and run.version == self._drawn_version:
            return
        self._drawn_version = run.version
        with run.lock:
            steps, losses = list(run.steps), list(run.losses)
            vsteps, vlosses = list(run.val_steps), list(run.val_losses)
            tps, samples, last = list(run.tps), list(run.samples), run.last
            state, message, preset = run.state, run.message, run.preset
        ev = last
        parts = [f"preset {preset} · {state}"]
        if ev is not None:
            parts.append(f"step {ev.step}/{ev.max_iters}")
            if losses:
                parts.append(f"loss {losses[-1]:.4f}")
            if vlosses:
                parts.append(f"val {vlosses[-1]:.4f}")
            if self.show_speed:
                parts += [f"{ev.tokens_per_sec:,.0f} tok/s",
                          f"MFU {ev.mfu * 100:.1f}%" if ev.mfu is not None else "MFU n/a (CPU)", f"ETA {ev.eta:.0f}s"]
            parts.append(f"device {ev.device}")
        line = " · ".join(parts) + (f"\n{message}" if message else "\ns start · p pause · x stop · n preset")
        self.query_one("#train-readout", Static).update(Text(line))
        bar = self.query_one("#train-bar", ProgressBar)
        if ev is not None:
            bar.update(total=ev.max_iters, progress=ev.step)
        try:
            plot = self._plot(steps, losses, vsteps, vlosses)
        except Exception as exc:  # plotting must never take the screen down
            plot = Text(f"(the loss plot could not be drawn: {exc.__class__.__name__}: {exc})")
        self.query_one("#train-plot", Static).update(plot)
        self.query_one("#train-tps", Sparkline).data = (tps[-120:] if self.show_speed else []) or [0]
        log = self.query_one("#train-samples", RichLog)
        for step, text in samples[self._samples_shown:]:
            log.write(Text(f"── step {step} ──", style="bold"))
            log.write(Text(text))
        self._samples_shown = len(samples)

    def _plot(self, steps, losses, vsteps, vlosses) -> Text:
        if not losses:
            return Text("The loss plot appears when training starts.")
        import plotext as plt

        widget = self.query_one("#train-plot", Static)
        w, h = max(30, widget.size.width), max(8, widget.size.height)
        plt.clf()
        plt.plotsize(w, h)
        plt.theme("clear")
        stride = max(1, len(steps) // 400)
        plt.plot(steps[::stride], losses[::stride], label="train")
        if vlosses:
            plt.plot(vsteps, vlosses, label="val", marker="dot")
        if self.log_scale:
            plt.yscale("log")
        plt.xlabel("step")
        plt.title("loss" + (" (log scale)" if self.log_scale else ""))
        return Text.from_ansi(plt.build())
