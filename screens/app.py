"""The deepdive-lab app: wiring only. One mode per area; models load in thread workers.

Built by `make_app(...)` for both the CLI and the tests. The first frame paints before
torch, transformers or llama_cpp are imported: they load inside workers.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.session import MODEL_ROLES, Session, Settings
from screens.commands import LabCommands

AREAS = {  # mode name -> (title, key, footer label)
    "tokens": ("Tokens", "f1", "Tokens"),
    "next": ("Next token", "f2", "Next"),
    "basechat": ("Base vs chat", "f3", "Base/chat"),
    "failures": ("Failures", "f4", "Failures"),
    "training": ("Training", "f5", "Training"),
}

SCREENS = {  # mode name -> (module, class); imported when the mode is first shown
    "tokens": ("screens.tokens", "TokensScreen"),
    "next": ("screens.next_token", "NextTokenScreen"),
    "basechat": ("screens.base_chat", "BaseChatScreen"),
    "failures": ("screens.failures", "FailuresScreen"),
    "training": ("screens.training", "TrainingScreen"),
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
        *(Binding(key, f"switch_mode('{mode}')", short, id=f"mode.{mode}", tooltip=f"Show the {title} screen")
          for mode, (title, key, short) in AREAS.items()),
        Binding("ctrl+s", "save_screenshot", "Screenshot", id="app.screenshot", tooltip="Save an SVG screenshot",
                show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
    ]

    def __init__(self, session: Session, load_models: bool = True, screenshot_dir: Path | None = None,
                 training_dir: Path | None = None, failures_dir: Path | None = None) -> None:
        super().__init__()
        from lab.paths import cache_dir
        from screens.training_run import TrainingRun

        self.training = TrainingRun()  # the app owns the run: it outlives the Training screen
        self.training_dir = training_dir or cache_dir() / "tiny"
        self.failures_dir = failures_dir or cache_dir() / "failures"  # cached answers of the failure demos
        self.session = session
        self.load_models = load_models
        self.screenshot_dir = screenshot_dir
        self.model_states: dict[str, str] = {role: "waiting" for role in MODEL_ROLES}
        self.device_label = session.settings.device if session.settings.device != "auto" else "…"
        self.models_changed: Signal = Signal(self, "models-changed")
        self.last_screenshot: Path | None = None
        self.heavy_at_first_frame: list[str] | None = None  # heavy libraries already imported at the first frame
        self._after_first_frame: list = []

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
        if self.load_models:
            self.action_reload_models()
        for callback in self._after_first_frame:
            callback()
        self._after_first_frame.clear()

    # ---- models ---------------------------------------------------------------------
    def action_reload_models(self) -> None:
        for role in MODEL_ROLES:
            self.load_role(role)

    def load_role(self, role: str) -> None:
        self._set_state(role, "loading")
        self.run_worker(lambda: (role, self.session.load(role)), name=role, group="models", thread=True,
                        exit_on_error=False)

    def _set_state(self, role: str, state: str) -> None:
        self.model_states[role] = state
        self.models_changed.publish(role)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "models":
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
        """From a worker thread: a remote server is rate limiting and the lab is retrying."""
        self.call_from_thread(self.notify, message, title="Remote server", severity="warning", timeout=4)

    def on_unmount(self) -> None:
        self._stop_remote_notices()
        self.training.shutdown()  # a run in progress stops with a final checkpoint
        self.session.close()


def make_app(base_model: str | None = None, chat_model: str | None = None, device: str = "auto",
             backend: str = "auto", load_models: bool = True, session: Session | None = None,
             screenshot_dir: Path | None = None, training_dir: Path | None = None,
             failures_dir: Path | None = None) -> LabApp:
    """Build the app for the CLI and the tests."""
    if session is None:
        settings = Settings(device=device, backend=backend)
        if base_model:
            settings.base_model = base_model
        if chat_model:
            settings.chat_model = chat_model
        session = Session(settings)
    return LabApp(session, load_models=load_models, screenshot_dir=screenshot_dir, training_dir=training_dir,
                  failures_dir=failures_dir)
