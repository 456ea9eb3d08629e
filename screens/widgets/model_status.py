"""A one-line bar: which base and chat models are in use, on which device, and load progress."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static


class ModelStatus(Static):
    """The top line: app and area title, then `base: … · chat: … · device: …` with each role's
    state (waiting, loading, ready, failed).

    It reads the app's `model_states` and redraws when the app's `models_changed` signal fires,
    so every screen's bar stays true without the app knowing which screens exist.
    """

    DEFAULT_CSS = """
    ModelStatus { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def on_mount(self) -> None:
        signal = getattr(self.app, "models_changed", None)
        if signal is not None:
            signal.subscribe(self, lambda _=None: self.refresh())
        # While a model loads, the elapsed time ticks (every load over half a second shows it).
        self.set_interval(0.5, self._tick)

    def _tick(self) -> None:
        if "loading" in getattr(self.app, "model_states", {}).values():
            self.refresh()

    def render(self) -> Text:
        app = self.app
        session = app.session
        states = getattr(app, "model_states", {})

        def part(role: str) -> Text:
            state = states.get(role, "waiting")
            style = {"ready": "bold", "failed": "bold $error", "loading": "italic"}.get(state, "dim")
            mark = {"ready": "", "failed": " (failed)", "loading": " (loading…)"}.get(state, " (waiting)")
            started = getattr(app, "load_started", {}).get(role)
            if state == "loading" and started is not None:
                elapsed = time.monotonic() - started
                if elapsed >= 0.5:
                    mark = f" (loading… {elapsed:.1f} s)"
            return Text.assemble((f"{role}: ", "dim"), (session.model_name(role) + mark, style.replace("$error", "red")))

        title = Text.assemble((app.title, "bold"), "  ", (getattr(app.screen, "area_title", ""), "bold"), "  ")
        return title + Text(" · ").join([part("base"), part("chat"),
                                          Text(f"device: {getattr(app, 'device_label', '…')}")])
