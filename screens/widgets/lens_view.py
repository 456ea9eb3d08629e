"""Logit lens: the top tokens read from each layer's hidden state at the last position.

One row per layer (embeddings first, the final layer last), pieces drawn on one line with
visible escapes. Its height is its content's: in a scrolling container (↑/↓, PgUp/PgDn,
Home/End, the wheel) the last layers stay reachable on a short screen. It shows either
`layers` or a `note` (why there is no lens here, or that one is being computed).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from lab.types import LayerPrediction
from screens.widgets.bars_view import fit, one_line, wrapped


class LensView(Static, can_focus=True):
    """A Static whose `render` draws `layers` or `note` at its current width."""

    COMPONENT_CLASSES = {"lens-view--dim", "lens-view--top"}
    DEFAULT_CSS = """
    LensView { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
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
        best = [repr(one_line(layer.top[0].piece)) for layer in self.layers]
        width = min(18, max(map(cell_len, best), default=0))
        for layer, shown in zip(self.layers, best):
            name = "embeddings" if layer.layer == 0 else f"layer {layer.layer:>2}"
            others = "  ".join(f"{one_line(t.piece)!r} {t.prob:.0%}" for t in layer.top[1:])
            parts += ["\n" if layer is not self.layers[0] else "", f"{name:>10}  ", (fit(shown, width), top),
                      f" {layer.top[0].prob:6.1%}   ", (others, dim)]
        return Content.assemble(*parts, strip_control_codes=False)
