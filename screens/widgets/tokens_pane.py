"""The Tokens view: the text's tokens in one encoding (coloured spans, ids, bytes) and,
when asked, the UTF-8 bytes the tokenizer sees."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from lab.tokentext import Segmenter, utf8
from screens.widgets.token_view import TokenView

DRAW_LIMIT = 500  # tokens drawn, around the cursor; counts are always exact
FIRST_WINDOW = 200  # tokens looked at first: enough to fill most views (a bigger window only when it is not)
BYTES_SHOWN = 4000


class TokensPane(Vertical):
    """Draws what the screen hands it; it tokenizes nothing itself."""

    DEFAULT_CSS = """
    TokensPane { height: 1fr; overflow-y: auto; }
    TokensPane #bytes-view { padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield TokenView(id="token-view")
        yield Static(id="bytes-view")

    def show(self, text: str, ids: list[int], encoding, cursor: int, *, show_ids: bool, show_ws: bool,
             show_bytes: bool, special_ids: frozenset[int] = frozenset()) -> None:
        """Draw the tokens `ids` of `text` in `encoding`, the part that fits around `cursor`."""
        view = self.query_one(TokenView)
        seg = Segmenter(text, ids, encoding.token_bytes, encoding.piece_lengths(ids))
        focus = seg.token_at_char(cursor)
        for size in (FIRST_WINDOW, DRAW_LIMIT):  # spans cost time to build: first as many as usually fill a view
            window = seg.window(cursor, size)
            spans = view.fit(window, focus, show_ids=show_ids, show_bytes=show_bytes, show_ws=show_ws,
                             height=self.size.height)
            cut_short = spans and ((spans[0] is window[0] and window[0].index > 0)
                                   or (spans[-1] is window[-1] and window[-1].index < len(seg) - 1))
            if not cut_short:
                break
        view.show_tokens(text, spans, len(ids), show_ids=show_ids, show_ws=show_ws, show_bytes=show_bytes,
                         special_ids=special_ids)
        self._show_bytes(text, show_bytes)

    def show_reason(self, text: str, reason: str, show_bytes: bool) -> None:
        """No tokens to draw: say why, in full."""
        self.query_one(TokenView).update(Text(reason), layout=True)
        self._show_bytes(text, show_bytes)

    def _show_bytes(self, text: str, show: bool) -> None:
        view = self.query_one("#bytes-view", Static)
        view.display = show
        if not show:
            return
        data = utf8(text)
        line = " ".join(str(b) for b in data[:BYTES_SHOWN])
        more = f" … ({len(data):,} bytes in all)" if len(data) > BYTES_SHOWN else ""
        view.update(Text.assemble(("UTF-8 bytes of the text (0-255): ", "bold"), line + more))
