"""Pick the model that plays a role (base or chat) from the catalogue, in the app.

The catalogue is read in a worker (it scans LM Studio, Ollama and Hugging Face folders);
choosing an entry dismisses the picker with its name, and the app loads it with visible
progress. Esc closes without a change.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from lab.doctor import human_size


class ModelPicker(ModalScreen[str | None]):
    """Every model the catalogue finds; Enter picks one for `role`."""

    BINDINGS = [Binding("escape", "close", "Close", id="models.picker.close")]
    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > Vertical { width: 90%; max-width: 120; height: 80%; border: round $accent; background: $surface; }
    ModelPicker #picker-title { height: auto; padding: 0 1; text-style: bold; }
    ModelPicker OptionList { height: 1fr; }
    """

    def __init__(self, role: str, current: str) -> None:
        super().__init__()
        self.role, self.current = role, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"The {self.role} model (now {self.current}): Enter picks, Esc closes", id="picker-title")
            yield OptionList(Option("reading the catalogue…", disabled=True), id="picker-models", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.read_catalogue()

    @work(thread=True, exclusive=True, exit_on_error=False, group="catalogue")
    def read_catalogue(self) -> list:
        from lab.catalogue import discover

        return discover()

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        if event.worker.group != "catalogue":
            return
        models = self.query_one(OptionList)
        if event.state == WorkerState.SUCCESS:
            models.clear_options()
            for e in event.worker.result:
                mark = "▶ " if e.name == self.current else "  "
                default = f"  [{e.role} default]" if e.role else ""
                models.add_option(Option(f"{mark}{e.name:<30} {e.kind:<9} {human_size(e.size_bytes):>9}  "
                                         f"{e.source}{default}", id=e.name))
            models.highlighted = 0
        elif event.state == WorkerState.ERROR:
            models.clear_options()
            models.add_option(Option(f"the catalogue could not be read: {event.worker.error}", disabled=True))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
