"""Probability bars: the model's raw next-token distribution beside the filtered one.

Each candidate is exactly one row: its piece is drawn with visible escapes on one line
("↵" for a newline, "→" for a tab, bytes of a partial character in hex) and cut to its
column by cell width. The columns fit the widget's width: the bar takes the room left over
(wider screens, longer bars) and the id column appears when there is room for it. Its height
is its content's: put it in a scrolling container (↑/↓, PgUp/PgDn and the wheel then scroll it).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from lab.explorer import FilteredRow
from lab.tokentext import label

MIN_BAR = 8


def one_line(piece: bytes) -> str:
    """A token piece drawn on one line: b"\\n\\n" -> "↵↵", b" Paris" -> "·Paris"."""
    return label(piece, show_whitespace=True).replace("\n", "")


def fit(text: str, width: int) -> str:
    """`text` cut to `width` terminal cells (an ellipsis marks the cut), padded to exactly `width`."""
    if cell_len(text) > width:
        cells = 0
        for i, ch in enumerate(text):
            cells += cell_len(ch)
            if cells > width - 1:
                text = text[:i] + "…"
                break
    return text + " " * (width - cell_len(text))


def wrapped(text: str, width: int) -> list[str]:
    """`text`'s lines, each wrapped to `width` (the rows below a header never wrap)."""
    return [part for line in text.splitlines() for part in (textwrap.wrap(line, max(10, width)) or [""])]


@dataclass(frozen=True)
class Columns:
    """Cell widths of one row's columns for a given view width."""

    token: int
    bar: int
    show_id: bool
    after: int

    @classmethod
    def for_width(cls, width: int) -> Columns:
        """E.g. 76 cells: token 15, bar 28, no id; 196 cells: token 24, bar 128, id shown."""
        token = max(10, min(24, width // 5))
        show_id = width >= 100
        after = 13 if width >= 100 else 10
        fixed = 3 + token + 1 + 8 + 1 + 1 + 7 + (8 if show_id else 0) + 2 + after
        return cls(token, max(MIN_BAR, width - fixed), show_id, after)


class BarsView(Static, can_focus=True):
    """Top-k bars. Keys here (not in the prompt box): 1-9 pick, s sample, u undo, r redo, a auto.

    A Static whose `render` draws its own state (`show_rows`, `show_message`) at its current width."""

    BINDINGS = [
        *(Binding(str(k), f"pick({k})", f"Pick {k}", show=False, id=f"next.pick{k}") for k in range(1, 10)),
        Binding("s", "command('sample')", "Sample", id="next.sample"),
        Binding("u,backspace", "command('undo')", "Undo", id="next.undo"),
        Binding("r", "command('redo')", "Redo", id="next.redo"),
        Binding("a", "command('auto')", "Auto-step", id="next.auto"),
    ]

    COMPONENT_CLASSES = {"bars-view--raw", "bars-view--filtered", "bars-view--dim", "bars-view--piece"}
    DEFAULT_CSS = """
    BarsView { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    BarsView > .bars-view--raw { color: $primary; }
    BarsView > .bars-view--filtered { color: $success; }
    BarsView > .bars-view--dim { color: $text-muted; }
    BarsView > .bars-view--piece { background: $primary 30%; }
    """

    @dataclass
    class Command(Message):
        """A key asked for a step: pick (with `rank`), sample, undo, redo or auto."""

        name: str
        rank: int = 0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rows: list[FilteredRow] = []
        self._header = ""
        self._entropy = 0.0
        self._message = ""
        self._lines = 0  # lines drawn last time: the layout is redone only when it changes

    def action_pick(self, rank: int) -> None:
        self.post_message(self.Command("pick", rank))

    def action_command(self, name: str) -> None:
        self.post_message(self.Command(name))

    def show_rows(self, rows: Sequence[FilteredRow], header: str, entropy: float) -> None:
        self._rows, self._header, self._entropy, self._message = list(rows), header, entropy, ""
        self._changed()

    def show_message(self, text: str) -> None:
        self._rows, self._message = [], text
        self._changed()

    def _changed(self) -> None:
        width = self._width()
        lines = (len(wrapped(self._message, width)) if self._message
                 else len(wrapped(self._header, width)) + len(self._rows) + 2)
        self.refresh(layout=lines != self._lines)  # a new line count changes the scroll range
        self._lines = lines

    def _width(self) -> int:
        return self.scrollable_content_region.width or 76

    def render(self) -> Content:
        width = self._width()
        if self._message:
            return Content("\n".join(wrapped(self._message, width)))
        style = lambda name: self.get_visual_style(f"bars-view--{name}")  # noqa: E731
        raw, filt, dim, piece = style("raw"), style("filtered"), style("dim"), style("piece")
        cols = Columns.for_width(width)
        head = f"{'#':>2} {'token':<{cols.token}} {'model p':>8} {'':<{cols.bar}} {'logp':>7}"
        if cols.show_id:
            head += f" {'id':>7}"
        head += f"  {'after filters' if cols.after >= 13 else 'filtered':>{cols.after}}\n"
        parts: list = [("\n".join(wrapped(self._header, width)), dim), "\n", (head, dim)]
        for rank, row in enumerate(self._rows, start=1):
            full = round(row.raw_prob * cols.bar)
            logp = f"{math.log(row.raw_prob):7.2f}" if row.raw_prob > 0 else "   -inf"
            parts += [(f"{rank:>2} ", dim if rank > 9 else ""), (fit(one_line(row.piece), cols.token), piece),
                      f" {row.raw_prob * 100:7.2f}% ", ("█" * full + "░" * (cols.bar - full), raw), f" {logp}"]
            if cols.show_id:
                parts.append((f" {row.id:>7}", dim))
            parts += ["  ", (f"{row.prob * 100:{cols.after - 1}.2f}%", filt if row.prob > 0 else dim), "\n"]
        parts.append((f"entropy {self._entropy:.2f} nats", dim))
        return Content.assemble(*parts, strip_control_codes=False)
