"""Surprisal: the prompt coloured by how expected each token was; select one to see the alternatives.

←/→ (Home/End) select a token. Its height is its content's: in a scrolling container ↑/↓,
PgUp/PgDn and the wheel scroll a long prompt."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from lab.tokentext import label
from screens.widgets.bars_view import one_line
from lab.types import TokenSurprise


class SurprisalView(Static, can_focus=True):
    BINDINGS = [
        Binding("left", "move(-1)", "Token ←", show=False, id="surprisal.left"),
        Binding("right", "move(1)", "Token →", show=False, id="surprisal.right"),
        Binding("home", "jump(0)", "First", show=False, id="surprisal.first"),
        Binding("end", "jump(-1)", "Last", show=False, id="surprisal.last"),
    ]
    COMPONENT_CLASSES = {"surprisal-view--low", "surprisal-view--mid", "surprisal-view--high",
                         "surprisal-view--cursor", "surprisal-view--dim"}
    DEFAULT_CSS = """
    SurprisalView { height: auto; padding: 0 1; }
    SurprisalView > .surprisal-view--low { background: $success 50%; }
    SurprisalView > .surprisal-view--mid { background: $warning 50%; }
    SurprisalView > .surprisal-view--high { background: $error 60%; }
    SurprisalView > .surprisal-view--cursor { text-style: reverse bold; }
    SurprisalView > .surprisal-view--dim { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: list[TokenSurprise] = []
        self.cursor = -1

    def show_rows(self, rows: Sequence[TokenSurprise]) -> None:
        self.rows = list(rows)
        worst = max(range(1, len(self.rows)), key=lambda i: self.rows[i].bits, default=-1)
        self.cursor = worst  # start on the most surprising token
        self.redraw()

    def action_move(self, delta: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
            self.redraw()

    def action_jump(self, where: int) -> None:
        if self.rows:
            self.cursor = 0 if where == 0 else len(self.rows) - 1
            self.redraw()

    def redraw(self) -> None:
        st = lambda name: self.get_visual_style(f"surprisal-view--{name}")  # noqa: E731
        low, mid, high, cur, dim = st("low"), st("mid"), st("high"), st("cursor"), st("dim")
        parts: list = [("How expected each token was, in bits of surprisal (green < 2, yellow < 6, red ≥ 6). "
                        "←/→ select a token.\n\n", dim)]
        for i, r in enumerate(self.rows):
            style = dim if i == 0 else (low if r.bits < 2 else (mid if r.bits < 6 else high))
            if i == self.cursor:
                style = style + cur
            parts.append((label(r.piece, show_whitespace=True), style))
        if 0 <= self.cursor < len(self.rows):
            r = self.rows[self.cursor]
            parts.append("\n\n")
            if r.position == 0:
                parts.append((f"{one_line(r.piece)!r} is the first token: nothing came before it to predict it.", dim))
            else:
                expected = ", ".join(f"{one_line(t.piece)!r} {t.prob:.1%}" for t in r.top)
                parts.append(f"{one_line(r.piece)!r} at {r.position}: p={r.prob:.4f} ({r.bits:.1f} bits, "
                             f"rank {r.rank:,}); the model expected {expected}")
        self.update(Content.assemble(*parts, strip_control_codes=False))
