"""The Compare view: 2-4 encodings of the same text stacked, each token drawn as the
characters it owns so the rows line up; a row of boxes picks the encodings."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Checkbox

from lab.tokentext import Segmenter
from screens.widgets.token_view import TokenView

DRAW_LIMIT = 500
MAX_SHOWN = 4


class ComparePane(Vertical):
    """Posts `ComparePane.Chosen` when the ticked encodings change; draws what it is handed."""

    DEFAULT_CSS = """
    ComparePane { height: 1fr; }
    ComparePane #compare-choices { height: auto; }
    ComparePane #compare-choices Checkbox { margin-right: 1; }
    ComparePane #compare-rows { height: 1fr; }
    """

    @dataclass
    class Chosen(Message):
        """The encodings to compare, in the order they were ticked."""

        keys: tuple[str, ...]

    def __init__(self, names: dict[str, str], chosen: list[str], **kwargs) -> None:
        """`names`: encoding key -> short name for its box; `chosen`: the keys ticked at first."""
        super().__init__(**kwargs)
        self.names = names
        self.chosen = list(chosen)

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-choices"):
            for key, name in self.names.items():
                yield Checkbox(name, key in self.chosen, id=f"cmp-{key}", compact=True)
        with VerticalScroll(id="compare-rows"):
            yield TokenView(id="compare-view")

    @on(Checkbox.Changed)
    def _ticked(self, event: Checkbox.Changed) -> None:
        event.stop()
        key = (event.checkbox.id or "").removeprefix("cmp-")
        if event.value and key not in self.chosen:
            if len(self.chosen) >= MAX_SHOWN:
                self.notify(f"Compare shows at most {MAX_SHOWN} encodings; untick one first.")
                event.checkbox.value = False
                return
            self.chosen.append(key)
        elif not event.value and key in self.chosen:
            self.chosen.remove(key)
        self.post_message(self.Chosen(tuple(self.chosen)))

    def show(self, text: str, rows: list[tuple[str, object, list[int] | None, str]], cursor: int,
             show_ws: bool) -> None:
        """`rows`: (label, encoding, ids or None, why not) per chosen encoding."""
        view = self.query_one("#compare-view", TokenView)
        parts: list = []
        if len(rows) < 2:
            parts.append("Tick 2 to 4 encodings above to compare them.\n\n")
        for label, encoding, ids, why in rows:
            parts.append((label, "bold"))
            if ids is None:
                parts.append(f" · unavailable: {why}\n\n")
                continue
            parts.append(f" · {len(ids):,} tokens\n")
            spans = Segmenter(text, ids, encoding.token_bytes, encoding.piece_lengths(ids)).window(cursor, DRAW_LIMIT)
            parts.append(view.build(text, spans, len(ids), show_ws=show_ws, aligned=True))
            parts.append("\n\n")
        view.update(Content.assemble(*parts, strip_control_codes=False))
