"""Draws tokenized text: one coloured span per token, optional ids and bytes after each."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from lab.tokentext import TokenSpan, label, visible

N_COLOURS = 6


class TokenView(Static):
    """Coloured token spans. Colours come from the theme through component classes."""

    COMPONENT_CLASSES = {
        *(f"token-view--t{i}" for i in range(N_COLOURS)),
        "token-view--partial",
        "token-view--id",
        "token-view--note",
        "token-view--special",
    }

    DEFAULT_CSS = """
    TokenView { width: 1fr; height: auto; padding: 0 1; }
    TokenView > .token-view--t0 { background: $primary 45%; }
    TokenView > .token-view--t1 { background: $secondary 45%; }
    TokenView > .token-view--t2 { background: $accent 45%; }
    TokenView > .token-view--t3 { background: $success 45%; }
    TokenView > .token-view--t4 { background: $warning 45%; }
    TokenView > .token-view--t5 { background: $error 40%; }
    TokenView > .token-view--partial { text-style: underline; }
    TokenView > .token-view--id { color: $text-muted; text-style: italic; }
    TokenView > .token-view--note { color: $text-warning; text-style: italic; }
    TokenView > .token-view--special { background: $error 70%; text-style: bold; }
    """

    def show_tokens(self, text: str, spans: Sequence[TokenSpan], total: int, *, show_ids: bool = False,
                    show_ws: bool = False, show_bytes: bool = False, aligned: bool = False,
                    special_ids: frozenset[int] = frozenset()) -> None:
        """Draw `spans` (the first tokens of `text`); `total` is the exact token count.

        `aligned` draws each token as the characters it owns (so stacked views line up);
        otherwise a token holding part of a character is drawn as its bytes.
        """
        self.update(self.build(text, spans, total, show_ids=show_ids, show_ws=show_ws, show_bytes=show_bytes,
                               aligned=aligned, special_ids=special_ids))

    def build(self, text: str, spans: Sequence[TokenSpan], total: int, *, show_ids: bool = False,
              show_ws: bool = False, show_bytes: bool = False, aligned: bool = False,
              special_ids: frozenset[int] = frozenset()) -> Text:
        styles = [self.get_component_rich_style(f"token-view--t{i}", partial=True) for i in range(N_COLOURS)]
        partial_style = self.get_component_rich_style("token-view--partial", partial=True)
        id_style = self.get_component_rich_style("token-view--id", partial=True)
        special_style = self.get_component_rich_style("token-view--special", partial=True)
        out = Text(no_wrap=False, overflow="fold")
        for span in spans:
            if aligned:
                body = visible(text[span.char_start:span.char_end], show_ws)
            else:
                body = label(span.piece, show_ws)
            style = special_style if span.id in special_ids else styles[span.index % N_COLOURS]
            if span.partial and not aligned:
                style = style + partial_style
            if body.endswith("\n"):  # keep the colour on the glyph, not across the line break
                out.append(body[:-1], style)
                out.append("\n")
            else:
                out.append(body, style)
            if show_ids:
                out.append(f"{span.id}", id_style)
                out.append(" ")
            if show_bytes:
                out.append("[" + " ".join(str(b) for b in span.piece) + "]", id_style)
                out.append(" ")
        if total > len(spans) and spans:
            note = self.get_component_rich_style("token-view--note", partial=True)
            first, last = spans[0].index + 1, spans[-1].index + 1
            if first > 1:
                out = Text(f"… tokens 1–{first - 1:,} not drawn\n", note) + out
            out.append(f"\n… drawing tokens {first:,}–{last:,} of {total:,}, around the cursor "
                       "(the counts above are exact)", note)
        return out
