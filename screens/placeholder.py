"""A clear placeholder for an area whose screen has not landed yet."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static

from screens.widgets import ModelStatus


class PlaceholderScreen(Screen):
    """Says what the area will show, so a demo never lands on a blank screen."""

    def __init__(self, title: str, blurb: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.area_title = title
        self.blurb = blurb

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        with Middle(), Center():
            yield Static(f"[b]{self.area_title}[/b]\n\n{self.blurb}\n\n[dim]This screen is not built yet.[/dim]",
                         classes="placeholder")
        yield Footer(compact=True)
