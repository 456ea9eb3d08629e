"""Logit lens: the top tokens read from each layer's hidden state at the last position.

One row per layer (embeddings first, the final layer last), pieces drawn on one line with
visible escapes. The view scrolls with ↑/↓, PgUp/PgDn, Home/End and the wheel, so the last
layers stay reachable on a short screen. It shows either `layers` or a `note` (why there is
no lens here, or that one is being computed).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from lab.types import LayerPrediction
from screens.widgets.bars_view import one_line, wrapped


class LensView(Widget, can_focus=True):
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False, id="lens.up"),
        Binding("down", "scroll_down", "Scroll down", show=False, id="lens.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="lens.pageup"),
        Binding("pagedown", "page_down", "Page down", show=False, id="lens.pagedown"),
        Binding("home", "scroll_home", "First layer", show=False, id="lens.home"),
        Binding("end", "scroll_end", "Last layer", show=False, id="lens.end"),
    ]
    COMPONENT_CLASSES = {"lens-view--dim", "lens-view--top"}
    DEFAULT_CSS = """
    LensView { height: 1fr; padding: 0 1; overflow-y: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    LensView:focus { background: $boost; }
    LensView > .lens-view--dim { color: $text-muted; }
    LensView > .lens-view--top { text-style: bold; }
    """

    layers: reactive[tuple[LayerPrediction, ...]] = reactive((), layout=True)
    """The readouts shown, embeddings first."""
    note: reactive[str] = reactive("", layout=True)
    """Shown instead of the layers when set."""

    def show_layers(self, layers: Sequence[LayerPrediction]) -> None:
        self.note = ""
        self.layers = tuple(layers)

    def render(self) -> Content:
        if self.note:
            return Content("\n".join(wrapped(self.note, self.scrollable_content_region.width or 76)))
        dim, top = self.get_visual_style("lens-view--dim"), self.get_visual_style("lens-view--top")
        parts: list = [("Logit lens: each layer's top tokens at the last position\n\n", dim)]
        for layer in self.layers:
            best = layer.top[0]
            name = "embeddings" if layer.layer == 0 else f"layer {layer.layer:>2}"
            others = "  ".join(f"{one_line(t.piece)!r} {t.prob:.0%}" for t in layer.top[1:])
            parts += [f"{name:>10}  ", (repr(one_line(best.piece)), top), f" {best.prob:6.1%}   ", (others + "\n", dim)]
        return Content.assemble(*parts, strip_control_codes=False)
