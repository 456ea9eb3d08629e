"""The deepdive-lab app: wiring only. One mode per area; models load in thread workers.

Built by `make_app(...)` for both the CLI and the tests. The first frame paints before
torch, transformers or llama_cpp are imported: they load inside workers.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.memory import keep_freed_memory
from lab.session import MODEL_ROLES, Session, Settings
from screens.commands import LabCommands

AREAS = {  # mode name -> (title, key, footer label)
    "tokens": ("Tokens", "f1", "Tokens"),
    "next": ("Next token", "f2", "Next"),
    "basechat": ("Base vs chat", "f3", "Base/chat"),
    "failures": ("Failures", "f4", "Failures"),
    "training": ("Training", "f5", "Training"),
    "post": ("Post-training", "f6", "Post-train"),
}

SCREENS = {  # mode name -> (module, class); imported when the mode is first shown
    "tokens": ("screens.tokens", "TokensScreen"),
    "next": ("screens.next_token", "NextTokenScreen"),
    "basechat": ("screens.base_chat", "BaseChatScreen"),
    "failures": ("screens.failures", "FailuresScreen"),
    "training": ("screens.training", "TrainingScreen"),
    "post": ("screens.post_training", "PostTrainingScreen"),
}


def _mode_screen(mode: str):
    def build():
        import importlib

        module, name = SCREENS[mode]
        return getattr(importlib.import_module(module), name)()

    return build


class LabApp(App):
    """deepdive-lab: see how language models work, on real models."""

    TITLE = "deepdive-lab"
    CSS_PATH = "lab.tcss"
    COMMANDS = App.COMMANDS | {LabCommands}  # and each screen's own (screens.commands.ScreenCommands)
    MODES = {mode: _mode_screen(mode) for mode in AREAS}
    DEFAULT_MODE = "tokens"
    BINDINGS = [
        # F6 is also a text box's "select line": the area key wins (priority), so F6 works from every screen.
        *(Binding(key, f"switch_mode('{mode}')", short, id=f"mode.{mode}", tooltip=f"Show the {title} screen",
                  priority=key == "f6")
          for mode, (title, key, short) in AREAS.items()),
        Binding("ctrl+s", "save_screenshot", "Screenshot", id="app.screenshot", tooltip="Save an SVG screenshot",
                show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
        # Talk mode (active only while a track is open): clickers send PageDown / PageUp.
        Binding("pagedown", "talk_step(1)", "Next step", id="talk.next", priority=True, show=False),
        Binding("pageup", "talk_step(-1)", "Previous step", id="talk.previous", priority=True, show=False),
        Binding("right,space", "talk_arrow(1)", "Next step", id="talk.next.arrow", priority=True, show=False),
        Binding("left", "talk_arrow(-1)", "Previous step", id="talk.previous.arrow", priority=True, show=False),
        Binding("home", "talk_restart", "Restart the talk", id="talk.restart", priority=True, show=False),
        Binding("f9", "talk_steps", "Steps", id="talk.steps", priority=True, show=False),
        Binding("escape", "talk_leave", "Leave talk mode", id="talk.leave", priority=True, show=False),
    ]

    def __init__(self, session: Session, load_models: bool = True, screenshot_dir: Path | None = None,
                 training_dir: Path | None = None, failures_dir: Path | None = None, talk=None,
                 samples_dir: Path | None = None, open_state: str | None = None, sft_dir: Path | None = None) -> None:
        super().__init__()
        from lab.paths import cache_dir
        from lab.training_run import TrainingRun

        self.training = TrainingRun()  # the app owns the run: it outlives the Training screen
        self.training_dir = training_dir or cache_dir() / "tiny"
        self.sft_run = None  # the Post-training screen's tiny-chat run (lab.sft_run.SFTRun), made on first use
        self.sft_dir = sft_dir or cache_dir() / "tiny-chat"  # where that run writes (what opens as tiny-chat)
        self.sft_config = None  # its lab.sft.SFTConfig (None: the cpu-quick preset, written to sft_dir)
        self.rl_run = None  # the RL view's run (lab.rl_run.RLRun), made on first use; quitting stops it
        self.rl_config = None  # its lab.rl.RLConfig (None: the preset of the chosen rule)
        self.rlhf_run = None  # Post-training's RLHF job (lab.rlhf_run.RLHFRun), made on first use
        self.failures_dir = failures_dir or cache_dir() / "failures"  # cached answers of the failure demos
        self.samples_dir = samples_dir or cache_dir() / "samples"  # cached Base vs chat samples
        self.session = session
        self.load_models = load_models
        self.screenshot_dir = screenshot_dir
        self.model_states: dict[str, str] = {role: "waiting" for role in MODEL_ROLES}
        self.device_label = session.settings.device if session.settings.device != "auto" else "…"
        self.models_changed: Signal = Signal(self, "models-changed")
        from screens.themes import PROJECTOR_THEMES

        for projector_theme in PROJECTOR_THEMES:
            self.register_theme(projector_theme)
        self.last_screenshot: Path | None = None
        self.heavy_at_first_frame: list[str] | None = None  # heavy libraries already imported at the first frame
        self._after_first_frame: list = []
        self.load_started: dict[str, float] = {}  # role -> when its load began (monotonic)
        self.talk = None  # a screens.talk.TalkMode while a talk track is open
        self._talk_at_start = talk  # a lab.talk.Track to open once the first frame is on screen
        self._open_at_start = open_state  # a saved state file to reopen then
        self.activities: dict[str, str] = {}  # role -> what its model does in the background (Backend.activity)
        self.exit_notes: list[str] = []  # runs quitting stopped, and where they saved (the CLI prints them)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications are plain text unless asked: they carry file paths, model names and
        error messages, whose brackets ("[Errno 2]") must not be read as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ---- talk mode ------------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        if action.startswith("talk_"):
            if self.talk is None or not isinstance(self.screen, Screen) or isinstance(self.screen, ModalScreen):
                return False  # the key goes on to the screen as usual
            if action in ("talk_arrow", "talk_restart") and self._typing():
                return False  # arrows, space and Home edit text in a text box; PageDown/PageUp always step
        return True

    def _typing(self) -> bool:
        from textual.widgets import Input, TextArea

        return isinstance(self.focused, (Input, TextArea))

    def start_talk(self, track, go: bool = True) -> None:
        """Open a talk track (a `lab.talk.Track`) and (unless `go` is False) show its first step."""
        from screens.talk import TalkMode

        self.talk = TalkMode(self, track)
        if go:
            async def begin() -> None:
                await self.talk.warm()
                await self.talk.go(0)

            self.call_after_refresh(lambda: self.run_worker(begin(), group="talk", exclusive=True,
                                                            exit_on_error=False))

    def action_talk_start(self, path: str | None = None) -> None:
        from lab.errors import LabError
        from lab.talk import load_track

        try:
            track = load_track(path)
        except LabError as exc:
            self.notify(str(exc), title="Talk track", severity="error", timeout=10)
            return
        for problem in track.problems:
            self.notify(problem, title="Talk track", severity="warning", timeout=10)
        self.start_talk(track)

    def _talk_go(self, index: int) -> None:
        """Show step `index` in a worker: the app keeps answering keys while a step loads."""
        self.run_worker(self.talk.go(index), group="talk", exclusive=True, exit_on_error=False)

    def action_talk_step(self, delta: int) -> None:
        self._talk_go(self.talk.index + delta)

    def action_talk_arrow(self, delta: int) -> None:
        self._talk_go(self.talk.index + delta)

    def action_talk_restart(self) -> None:
        self._talk_go(0)

    def action_talk_steps(self) -> None:
        from screens.talk import StepList

        def jump(index: int | None) -> None:
            if index is not None and index >= 0 and self.talk is not None:
                self._talk_go(index)

        self.push_screen(StepList(self.talk.track, self.talk.index), jump)

    def action_talk_leave(self) -> None:
        self.talk.remove_captions()
        self.talk = None
        self.notify("Talk mode off: the lab stays as it is.", timeout=3)

    def action_talk_notes(self) -> None:
        if self.talk is not None:
            self.talk.show_notes = not self.talk.show_notes
            self.talk.refresh_caption()

    def switch_mode(self, mode: str):
        """Switch area; a modal (the command palette) open over the current area closes first,
        or it would be left behind on the old mode's stack and collide with the next one."""
        while len(self.screen_stack) > 1 and isinstance(self.screen, ModalScreen):
            self.pop_screen()
        return super().switch_mode(mode)

    def on_mount(self) -> None:
        from lab import remotes

        self._stop_remote_notices = remotes.listen(self._remote_notice)  # retries (429) shown as they happen
        # Models start loading only once the first frame is on screen.
        self.call_after_refresh(self._first_frame_done)

    def after_first_frame(self, callback) -> None:
        """Run `callback` once the first frame is on screen (now, if it already is).

        Background work (model loads, encoding files) starts only then, so nothing competes
        with the first paint for the interpreter."""
        if self.heavy_at_first_frame is not None:
            callback()
        else:
            self._after_first_frame.append(callback)

    def _first_frame_done(self) -> None:
        import sys

        self.heavy_at_first_frame = sorted(m for m in ("torch", "transformers", "llama_cpp") if m in sys.modules)
        self.set_interval(1.0, self.check_activities)
        if self.load_models:
            self.action_reload_models()
        elif not any(self.session.loaded(role) for role in MODEL_ROLES):
            self.session.loading = False
        for callback in self._after_first_frame:
            callback()
        self._after_first_frame.clear()
        if self._talk_at_start is not None:
            self.start_talk(self._talk_at_start)
        if self._open_at_start is not None:
            self.run_worker(self.open_state(self._open_at_start), group="state", exit_on_error=False)

    # ---- models ---------------------------------------------------------------------
    def action_reload_models(self) -> None:
        self.session.loading = True
        for role in MODEL_ROLES:
            self.load_role(role)

    def action_pick_model(self, role: str) -> None:
        """Choose the model for a role from the catalogue; it loads with its progress shown."""
        from screens.model_picker import ModelPicker

        def chosen(name: str | None) -> None:
            if name and name != self.session.model_name(role):
                cancel = getattr(self.screen, "action_cancel", None)
                if cancel is not None:
                    cancel()  # streams of the old model stop first
                self.session.use(role, name)
                self.load_role(role)

        self.push_screen(ModelPicker(role, self.session.model_name(role)), chosen)

    def load_role(self, role: str) -> None:
        import time

        self.load_started[role] = time.monotonic()
        self._set_state(role, "loading")
        return self.run_worker(lambda: (role, self.session.load(role)), name=role, group=f"models-{role}",
                               thread=True, exclusive=True, exit_on_error=False)

    def check_activities(self) -> None:
        """Say when a loaded model starts and ends background work (on a GPU: compiling its decode
        step, while tokens keep coming uncompiled); polled once a second, a property read each."""
        for role in MODEL_ROLES:
            backend = self.session.loaded(role)
            now = getattr(backend, "activity", "") if backend is not None else ""
            before = self.activities.get(role, "")
            if now == before:
                continue
            self.activities[role] = now
            name = self.session.model_name(role)
            if now:
                self.notify(f"{name}: {now}. Tokens keep coming meanwhile.", title=f"The {role} model", timeout=8)
            elif backend is not None:
                self.notify(f"{name}: done ({before}).", title=f"The {role} model", timeout=4)

    def _set_state(self, role: str, state: str) -> None:
        self.model_states[role] = state
        self.models_changed.publish(role)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if not worker.group.startswith("models-"):
            return
        if event.state == WorkerState.SUCCESS:
            role, backend = worker.result
            self.device_label = backend.info.device
            self._set_state(role, "ready")
        elif event.state == WorkerState.ERROR:
            role = worker.name
            err = worker.error
            message = str(err) if isinstance(err, LabError) else f"{err.__class__.__name__}: {err}"
            self._set_state(role, "failed")
            self.notify(message, title=f"The {role} model failed to load", severity="error", timeout=12)

    def get_system_commands(self, screen):
        """Textual's own commands, less its "Screenshot" (the lab's "app: save screenshot" saves
        to the lab's folder)."""
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command

    # ---- saving, opening, exporting, resetting ------------------------------------------------
    def _mode_screens(self) -> dict[str, Screen]:
        """The screens of the areas shown so far (an area never shown has nothing to save)."""
        out = {}
        for mode in AREAS:
            try:
                stack = self.get_screen_stack(mode)
            except KeyError:  # never shown
                continue
            if stack:
                out[mode] = stack[0]
        return out

    def action_save_state(self, path: str | None = None) -> Path | None:
        """Save every screen's state to `path` (default: a new file in the lab's saved/ folder)."""
        import time

        from lab.paths import cache_dir
        from lab.state import write_state

        target = Path(path) if path else cache_dir() / "saved" / time.strftime("lab-%Y%m%d-%H%M%S.json")
        screens = {mode: screen.state() for mode, screen in self._mode_screens().items() if hasattr(screen, "state")}
        try:
            saved = write_state(target, self.current_mode, screens)
        except LabError as exc:
            self.notify(str(exc), title="Save", severity="error", timeout=10)
            return None
        self.notify(f"Saved {saved}\nReopen with: deepdive-lab --open {saved}", title="Lab state saved", timeout=8)
        return saved

    async def open_state(self, path: str) -> bool:
        """Reopen a saved state: checked whole first, so a bad file loads nothing."""
        from lab.state import read_state

        try:
            state = read_state(Path(path))
            for mode, data in state["screens"].items():
                module, name = SCREENS[mode]
                import importlib

                screen_class = getattr(importlib.import_module(module), name)
                check = getattr(screen_class, "check_state", None)
                if check is not None:
                    try:
                        check(data)
                    except (KeyError, ValueError, TypeError, IndexError) as exc:
                        raise LabError(f"{path} is damaged (the {AREAS[mode][0]} screen's part: {exc!r}): "
                                       "nothing was loaded.") from None
        except LabError as exc:
            self.notify(str(exc), title="Open", severity="error", timeout=12)
            return False
        for mode, data in state["screens"].items():
            await self.switch_mode(mode)
            restore = getattr(self.screen, "restore_state", None)
            if restore is not None:
                try:
                    restore(data)
                except Exception as exc:  # checked above; a screen that still fails says so, nothing crashes
                    self.notify(f"The {AREAS[mode][0]} screen could not take its saved state: "
                                f"{exc.__class__.__name__}: {exc}", title="Open", severity="error", timeout=10)
        await self.switch_mode(state["mode"])
        self.notify(f"Opened {path}", title="Lab state", timeout=4)
        return True

    def export_screen(self, kind: str) -> Path | None:
        """Write the current screen's results (`screen.export(kind)`) to the exports folder."""
        import time

        from lab.paths import cache_dir

        export = getattr(self.screen, "export", None)
        if export is None:
            self.notify("This screen has nothing to export.", timeout=4)
            return None
        folder = (self.screenshot_dir.parent / "exports") if self.screenshot_dir else cache_dir() / "exports"
        path = folder / time.strftime(f"{self.current_mode}-%Y%m%d-%H%M%S.{kind}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(export(kind), encoding="utf-8")
        except OSError as exc:
            self.notify(f"Could not export: {exc}", severity="error", timeout=8)
            return None
        self.notify(f"Exported {path}", title="Export", timeout=6)
        return path

    async def action_reset_screen(self) -> None:
        """Put the current area back to its defaults (a new screen; runs of the old one stop)."""
        mode = self.current_mode
        other = next(m for m in AREAS if m != mode)
        await self.switch_mode(other)
        await self.remove_mode(mode)
        self.add_mode(mode, _mode_screen(mode))
        await self.switch_mode(mode)
        if self.talk is not None:
            self.talk.refresh_caption()
        self.notify(f"{AREAS[mode][0]}: back to its defaults.", timeout=3)

    # ---- screenshots ------------------------------------------------------------------
    def action_save_screenshot(self) -> None:
        from lab.paths import screenshots_dir

        folder = self.screenshot_dir or screenshots_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = Path(self.save_screenshot(path=str(folder)))
        except OSError as exc:
            self.notify(f"Could not save the screenshot: {exc}", severity="error")
            return
        self.last_screenshot = path
        self.notify(f"Saved {path}", title="Screenshot")

    def _remote_notice(self, message: str) -> None:
        """A remote server is rate limiting and the lab is retrying (said from any thread)."""
        try:
            self.call_from_thread(self.notify, message, title="Remote server", severity="warning", timeout=4)
        except RuntimeError:  # already on the UI thread
            self.notify(message, title="Remote server", severity="warning", timeout=4)

    def on_unmount(self) -> None:
        self._stop_remote_notices()
        # a run in progress stops with a final checkpoint; what was stopped is said once the terminal is back
        for name, run in (("Training", self.training), ("Post-training (SFT)", self.sft_run), ("RL", self.rl_run)):
            if run is not None:
                was_running = run.active
                run.shutdown()
                if was_running:
                    self.exit_notes.append(f"{name}: {run.snapshot().message}")
        if self.rlhf_run is not None:
            was_running = self.rlhf_run.busy
            saved = self.rlhf_run.shutdown()  # stops RL and writes its policy beside tiny-chat (rlhf/ckpt.pt)
            if was_running:
                self.exit_notes.append("RLHF: stopped" + (f"; policy saved: {saved}" if saved else ""))
        for screen in self._mode_screens().values():
            cancel = getattr(screen, "action_cancel", None)
            if cancel is not None:
                cancel()  # streams stop before their models are freed
        self.session.close()


def make_app(base_model: str | None = None, chat_model: str | None = None, device: str = "auto",
             backend: str = "auto", load_models: bool = True, session: Session | None = None,
             screenshot_dir: Path | None = None, training_dir: Path | None = None,
             failures_dir: Path | None = None, talk=None, samples_dir: Path | None = None,
             theme: str | None = None, keys: dict[str, str] | None = None, open_state: str | None = None,
             sft_dir: Path | None = None) -> LabApp:
    """Build the app for the CLI and the tests."""
    keep_freed_memory()
    if session is None:
        settings = Settings(device=device, backend=backend)
        if base_model:
            settings.base_model = base_model
        if chat_model:
            settings.chat_model = chat_model
        session = Session(settings)
    app = LabApp(session, load_models=load_models, screenshot_dir=screenshot_dir, training_dir=training_dir,
                 failures_dir=failures_dir, talk=talk, samples_dir=samples_dir, open_state=open_state, sft_dir=sft_dir)
    if theme:
        if theme not in app.available_themes:
            raise LabError(f"unknown theme {theme!r}; use one of {', '.join(sorted(app.available_themes))}.")
        app.theme = theme
    if keys:
        app.set_keymap(keys)
    return app
