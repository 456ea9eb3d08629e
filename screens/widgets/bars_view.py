"""Probability bars: the model's raw next-token distribution beside the filtered one."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from lab.explorer import FilteredRow
from lab.tokentext import label

BAR_WIDTH = 28


class BarsView(Static, can_focus=True):
    """Top-k bars. Keys here (not in the prompt box): 1-9 pick, s sample, u undo, r redo, a auto."""

    BINDINGS = [
        *(Binding(str(k), f"pick({k})", f"Pick {k}", show=False, id=f"next.pick{k}") for k in range(1, 10)),
        Binding("s", "command('sample')", "Sample", id="next.sample"),
        Binding("u,backspace", "command('undo')", "Undo", id="next.undo"),
        Binding("r", "command('redo')", "Redo", id="next.redo"),
        Binding("a", "command('auto')", "Auto-step", id="next.auto"),
    ]

    COMPONENT_CLASSES = {"bars-view--raw", "bars-view--filtered", "bars-view--dim", "bars-view--piece"}
    DEFAULT_CSS = """
    BarsView { height: 1fr; padding: 0 1; }
    BarsView:focus { background: $boost; }
    BarsView > .bars-view--raw { color: $primary; }
    BarsView > .bars-view--filtered { color: $success; }
    BarsView > .bars-view--dim { color: $text-muted; }
    BarsView > .bars-view--piece { background: $primary 30%; }
    """

    class Command(Message):
        """A key asked for a step: pick (with `rank`), sample, undo, redo or auto."""

        def __init__(self, name: str, rank: int = 0) -> None:
            super().__init__()
            self.name = name
            self.rank = rank

    def action_pick(self, rank: int) -> None:
        self.post_message(self.Command("pick", rank))

    def action_command(self, name: str) -> None:
        self.post_message(self.Command(name))

    def show_rows(self, rows: Sequence[FilteredRow], header: str, entropy: float) -> None:
        style = lambda name: self.get_visual_style(f"bars-view--{name}")  # noqa: E731
        raw, filt, dim, piece = style("raw"), style("filtered"), style("dim"), style("piece")
        parts: list = [(header, dim), "\n",
                       (f"{'#':>2} {'token':<16} {'model p':>9} {'':<{BAR_WIDTH}} {'logp':>8} {'id':>7}   "
                        f"{'after filters':>13}\n", dim)]
        for rank, row in enumerate(rows, start=1):
            text = label(row.piece, show_whitespace=True)
            shown = text if len(text) <= 16 else text[:15] + "…"
            full = round(row.raw_prob * BAR_WIDTH)
            logp = f"{math.log(row.raw_prob):7.2f}" if row.raw_prob > 0 else "   -inf"
            parts += [(f"{rank:>2} ", dim if rank > 9 else ""), (shown, piece), " " * (16 - len(shown)),
                      f" {row.raw_prob * 100:7.2f}% ", ("█" * full + "░" * (BAR_WIDTH - full), raw),
                      f" {logp} ", (f"{row.id:>7}", dim), "   ",
                      (f"{row.prob * 100:12.2f}%", filt if row.prob > 0 else dim), "\n"]
        parts.append((f"entropy {entropy:.2f} nats", dim))
        self.update(Content.assemble(*parts, strip_control_codes=False), layout=False)
