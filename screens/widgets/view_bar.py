"""A one-line bar naming a screen's views, the shown one highlighted; a click shows a view.

Lighter than TabbedContent (one widget instead of tabs, underline and panes), which matters
for the first frame of the first screen."""

from __future__ import annotations

from textual.content import Content
from textual.events import Click
from textual.message import Message
from textual.widgets import Static


class ViewBar(Static):
    COMPONENT_CLASSES = {"view-bar--active", "view-bar--view", "view-bar--hint"}
    DEFAULT_CSS = """
    ViewBar { height: 1; padding: 0 1; background: $panel; }
    ViewBar > .view-bar--active { background: $primary; color: $text; text-style: bold; }
    ViewBar > .view-bar--view { color: $text-muted; }
    ViewBar > .view-bar--hint { color: $text-muted; }
    """

    class Chosen(Message):
        def __init__(self, view: str) -> None:
            super().__init__()
            self.view = view

    def __init__(self, views: dict[str, str], active: str, hint: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.views = views  # id -> title
        self.active = active
        self.hint = hint
        self._spans: list[tuple[int, int, str]] = []

    def show(self, view: str) -> None:
        self.active = view
        self.refresh()

    def render(self) -> Content:
        on, off = self.get_visual_style("view-bar--active"), self.get_visual_style("view-bar--view")
        parts: list = []
        spans = []
        x = 0
        for view, title in self.views.items():
            label = f" {title} "
            parts += [(label, on if view == self.active else off), " "]
            spans.append((x, x + len(label), view))
            x += len(label) + 1
        if self.hint:
            parts.append((self.hint, self.get_visual_style("view-bar--hint")))
        self._spans = spans
        return Content.assemble(*parts)

    def on_click(self, event: Click) -> None:
        x = event.x - 1  # padding
        for x0, x1, view in self._spans:
            if x0 <= x < x1:
                self.post_message(self.Chosen(view))
                return
