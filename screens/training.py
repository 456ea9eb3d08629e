"""Training screen: pretrain a tiny GPT live; the loss falls while the samples turn into text.

The run belongs to the app (`lab.training_run.TrainingRun`), not to the screen: leaving the
screen does not stop it, coming back shows where it is, and quitting the app stops it with a
checkpoint. The screen polls the run's version four times a second and, when it changed, takes
one consistent snapshot (`view`, reactive) that the watchers draw.
Keys (this screen has no text box): s start, p pause/resume, x stop, c save a checkpoint,
l log scale, n next preset; a key that does nothing in the current state is greyed out.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ProgressBar, RichLog, Sparkline, Static
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.tokentext import visible
from lab.training_run import RunView, TrainingRun
from screens.commands import ScreenCommands
from screens.widgets import ModelStatus
from screens.widgets.key_bar import KeyBar
from screens.widgets.loss_plot import LossPlot


def preset_summary(name: str) -> str:
    """`cpu-quick` -> `2 layers × 64 wide, context 32, 400 steps`."""
    from lab.train import PRESETS

    c = PRESETS[name]
    return f"{c.n_layer} layers × {c.n_embd} wide, context {c.block_size}, {c.max_iters:,} steps"


def readout(view: RunView) -> str:
    """The two readout lines: where the run is, then what it last said (or what to press)."""
    parts = [f"preset {view.preset}"]
    ev = view.last
    if view.state == "idle":
        parts += [preset_summary(view.preset), "no run yet"]
    else:
        parts.append(view.state)
    if ev is not None:
        parts.append(f"step {ev.step}/{ev.max_iters}")
        if view.losses:
            parts.append(f"loss {view.losses[-1]:.4f}")
        if view.val_losses:
            parts.append(f"val {view.val_losses[-1]:.4f} @ step {view.val_steps[-1]}")
        if view.active:  # a distributed run's tokens/s are the whole run's, all processes together
            parts += [f"{ev.tokens_per_sec:,.0f} tok/s{' global' if ev.world_size > 1 else ''}",
                      f"MFU {ev.mfu * 100:.1f}%" if ev.mfu is not None else "MFU n/a (CPU)", f"ETA {ev.eta:.0f}s"]
        parts.append(f"device {ev.device}")
        if ev.world_size > 1:
            parts.append(f"world size {ev.world_size}")
    hint = "s start · n next preset" if view.state == "idle" else ""
    return " · ".join(parts) + "\n" + (view.message or hint)


class TrainingScreen(Screen):
    area_title = "Training"
    COMMANDS = {ScreenCommands}

    BINDINGS = [
        Binding("s", "start", "Start", id="training.start", tooltip="Start a run with the current preset"),
        Binding("p", "pause", "Pause/resume", id="training.pause", tooltip="Pause or resume the run"),
        Binding("x", "stop", "Stop", id="training.stop", tooltip="Stop the run (writes a checkpoint)"),
        Binding("c", "checkpoint", "Save", id="training.save", tooltip="Save a checkpoint (while paused)"),
        Binding("l", "log_scale", "Log", id="training.log", tooltip="Log scale for the loss plot"),
        Binding("n", "next_preset", "Preset", id="training.preset", tooltip="Next preset"),
    ]

    view: reactive[RunView | None] = reactive(None, always_update=True)
    log_scale: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown_run: TrainingRun | None = None  # the run whose samples the log holds
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
                yield LossPlot(id="train-plot")
                yield Static("tokens/s", id="train-tps-label")
                yield Sparkline([], id="train-tps")
            yield RichLog(id="train-samples", wrap=True, max_lines=4000)
        yield KeyBar()

    def on_mount(self) -> None:
        self.set_interval(0.25, self.poll)
        self.poll(force=True)

    def on_screen_resume(self) -> None:
        self.poll(force=True)

    def poll(self, force: bool = False) -> None:
        """Take a snapshot of the run when it changed (or a new run replaced it)."""
        run = self.run
        if force or run is not self._shown_run or self.view is None or run.version != self.view.version:
            if run is not self._shown_run:
                self._shown_run, self._samples_shown = run, 0
                log = self.query_one("#train-samples", RichLog)
                log.clear()
                log.write(Text("Samples of the model's text appear here as it trains.", style="italic"))
            self.view = run.snapshot()

    # ---- drawing ------------------------------------------------------------------------
    def watch_view(self, old: RunView | None, view: RunView | None) -> None:
        if view is None:
            return
        self.query_one("#train-readout", Static).update(Text(readout(view)))
        bar = self.query_one("#train-bar", ProgressBar)
        if view.last is not None:
            bar.update(total=view.last.max_iters, progress=view.last.step)
        else:  # before any run: the preset's steps, none done (not the indeterminate animation)
            from lab.train import PRESETS

            bar.update(total=PRESETS[view.preset].max_iters, progress=0)
        self.query_one("#train-plot", LossPlot).curves = (view.steps, view.losses, view.val_steps, view.val_losses)
        spark = self.query_one("#train-tps", Sparkline)
        spark.data = list(view.tps[-240:])
        spark.display = bool(view.tps)  # before any run: nothing drawn (an empty sparkline draws a baseline)
        world = view.last.world_size if view.last is not None else 1
        self.query_one("#train-tps-label", Static).update(
            ("tokens/s" if world == 1 else f"global tokens/s ({world} processes)") if view.tps
            else "tokens/s (appears when training starts)")
        log = self.query_one("#train-samples", RichLog)
        for step, text in view.samples[self._samples_shown:]:
            log.write(Text(f"── step {step} ──", style="bold"))
            log.write(Text(visible(text, False)))  # control characters shown, never sent to the terminal
        self._samples_shown = len(view.samples)
        if old is None or old.state != view.state or old.preset != view.preset:
            self.refresh_bindings()

    def watch_log_scale(self, log_scale: bool) -> None:
        self.query_one("#train-plot", LossPlot).log_scale = log_scale

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out a key that does nothing in this state (None = shown, disabled)."""
        view = self.view
        if view is None:
            return True
        enabled = {"start": not view.active, "next_preset": not view.active,
                   "pause": view.state in ("running", "paused"), "stop": view.active,
                   "checkpoint": view.state != "running" and view.has_trainer}.get(action, True)
        return True if enabled else None

    # ---- actions ------------------------------------------------------------------------
    def action_next_preset(self) -> None:
        try:
            self.run.next_preset()
        except LabError as exc:
            self.notify(str(exc), severity="warning")
        self.poll()

    def action_start(self) -> None:
        if self.run.active:
            self.notify("A run is already going (x stops it).")
            return
        from lab.train import PRESETS

        preset = self.run.preset
        fresh = TrainingRun(preset)
        self.app.training = fresh
        fresh.start(replace(PRESETS[preset], out_dir=str(self.app.training_dir)))
        self.poll()

    def action_pause(self) -> None:
        try:
            self.run.toggle_pause()
        except LabError as exc:
            self.notify(str(exc), severity="warning")
        self.poll()

    def action_stop(self) -> None:
        try:
            self.run.stop()
        except LabError as exc:
            self.notify(str(exc), severity="warning")
        self.poll()

    def action_checkpoint(self) -> None:
        self.save_checkpoint(self.run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training-save")
    def save_checkpoint(self, run: TrainingRun) -> tuple[str, int]:
        """Write the checkpoint off the UI thread (a GPU preset's is a gigabyte); returns (path, step)."""
        path, step = run.save_now()
        return str(path), step

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "training-save":
            return
        if event.state == WorkerState.SUCCESS:
            path, step = event.worker.result
            self.notify(f"Saved {path} (step {step}); open it as the 'tiny' model.", title="Checkpoint")
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(str(err) if isinstance(err, LabError) else f"Could not save: {err}", severity="error")

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale

    # ---- talk steps and saved states ------------------------------------------------------
    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (lab.talk.FIELDS["training"]): the preset of the next run."""
        if "preset" in fields:
            self.run.set_preset(fields["preset"])  # a LabError names the presets; the talk shows it
            self.poll()

    def state(self) -> dict:
        return {"fields": {"preset": self.run.snapshot().preset}}

    def palette_commands(self):
        from lab.training_run import PRESET_ORDER

        yield "training: start", self.action_start, "Start a run with the current preset"
        yield "training: pause or resume", self.action_pause, "Pause or resume the run"
        yield "training: stop", self.action_stop, "Stop the run (writes a checkpoint)"
        yield "training: log scale", self.action_log_scale, "Log scale for the loss plot"
        for name in PRESET_ORDER:
            yield f"training: preset {name}", (lambda n=name: self.apply_step({"preset": n})), preset_summary(name)

    @staticmethod
    def check_state(state: dict) -> None:
        from lab.training_run import PRESET_ORDER

        if state["fields"].get("preset", PRESET_ORDER[0]) not in PRESET_ORDER:
            raise ValueError("preset")

    def restore_state(self, state: dict) -> None:
        if not self.run.active:
            self.apply_step(state.get("fields", {}))
