"""Draws tokenized text: one coloured span per token, optional ids and bytes after each.

A token that ends a line keeps its id and bytes on its own line, and the colour stays on the
glyph, not across the break. A surrogate code point of the text (which no tokenizer can see:
they see U+FFFD) is drawn as its escape, "\\udc4d", in the warning colour."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.content import Content
from textual.style import Style
from textual.widgets import Static

from lab.tokentext import SURROGATE, VISIBLE, TokenSpan, has_surrogates, label, visible

N_COLOURS = 6
WRAP_MARGIN = 1.15  # word wrapping breaks lines before the last cell: rows of a long line, counted by cells, times this


class TokenView(Static):
    """Coloured token spans. Colours come from the theme through component classes.

    Built as Textual `Content` (not Rich Text) so a redraw per keystroke stays cheap.
    """

    COMPONENT_CLASSES = {
        *(f"token-view--t{i}" for i in range(N_COLOURS)),
        "token-view--partial",
        "token-view--alt",
        "token-view--id",
        "token-view--note",
        "token-view--special",
        "token-view--bad",
    }

    DEFAULT_CSS = """
    TokenView { width: 1fr; height: auto; padding: 0 1; }
    TokenView > .token-view--t0 { background: $primary 45%; }
    TokenView > .token-view--t1 { background: $secondary 45%; }
    TokenView > .token-view--t2 { background: $accent 45%; }
    TokenView > .token-view--t3 { background: $success 45%; }
    TokenView > .token-view--t4 { background: $warning 45%; }
    TokenView > .token-view--t5 { background: $error 40%; }
    TokenView > .token-view--partial { text-style: italic; }
    TokenView > .token-view--alt { text-style: underline; }
    TokenView > .token-view--id { color: $text-muted; text-style: italic; }
    TokenView > .token-view--note { color: $text-warning; text-style: italic; }
    TokenView > .token-view--special { background: $error 70%; text-style: bold; }
    TokenView > .token-view--bad { color: $text-warning; background: $warning 25%; text-style: bold; }
    """

    def style_of(self, name: str):
        return self.get_visual_style(f"token-view--{name}")

    def fit(self, spans: Sequence[TokenSpan], focus: int, *, show_ids: bool = False, show_bytes: bool = False,
            show_ws: bool = False, height: int | None = None) -> list[TokenSpan]:
        """The part of `spans` that fills `height` lines (default: the view's) around token `focus`:
        a third of the lines before it, the rest after (and a line more). Drawing only what can be
        seen keeps a keystroke cheap on long texts. Rows are counted line by line (a line of n cells
        takes ceil(n / width) rows, with a margin for word wrapping), so a screen of short lines is
        not drawn half again."""
        width = max(10, self.size.width - 2)
        height = self.size.height if height is None else height
        if height <= 0 or not spans:
            return list(spans)

        def parts(span: TokenSpan) -> list[int]:
            """Cells of the token's pieces between line breaks ("a\n\nb" -> [1, 0, 1]; ids and bytes
            go with its last line)."""
            lines = [len(part) for part in label(span.piece, show_ws).split("\n")]
            lines[-1] += (len(str(span.id)) + 1 if show_ids else 0) + (4 * len(span.piece) + 3 if show_bytes else 0)
            return lines

        def rows(n: int) -> int:
            return 1 if n <= width else math.ceil(n * WRAP_MARGIN / width)

        index = {s.index: k for k, s in enumerate(spans)}
        at = index.get(focus, 0 if focus < spans[0].index else len(spans) - 1)
        start, done, line = at, 0, 0  # walking back: rows of the lines passed, cells of the line under way
        while start > 0 and done + rows(line) < height // 3:
            last, *before = reversed(parts(spans[start - 1]))  # its pieces, from the last one back
            line += last
            for n in before:  # each break ends the line we were in; the piece before it starts the next
                done, line = done + rows(line), n
            start -= 1
        stop, done, line = at, done, 0
        while stop < len(spans) and done + rows(line) <= height:  # stops a line past it
            first, *rest = parts(spans[stop])
            line += first
            for n in rest:
                done, line = done + rows(line), n
            stop += 1
        return list(spans[start:stop])

    def show_tokens(self, text: str, spans: Sequence[TokenSpan], total: int, **options) -> None:
        """Draw `spans` (a window of the tokens of `text`); `total` is the exact token count."""
        self.update(self.build(text, spans, total, **options), layout=self.styles.height.is_auto)

    def build(self, text: str, spans: Sequence[TokenSpan], total: int, *, show_ids: bool = False,
              show_ws: bool = False, show_bytes: bool = False, aligned: bool = False,
              special_ids: frozenset[int] = frozenset()) -> Content:
        """The drawing as Content. `aligned` draws each token as the characters it owns (so
        stacked views line up); otherwise a token holding part of a character shows its bytes."""
        # Colour is never the only signal: every other token is also underlined, so boundaries
        # show on a projector that washes colours out (and to readers who do not see them).
        alt = self.get_visual_style("token-view--alt", partial=True)
        colours = [self.style_of(f"t{i}") + (alt if i % 2 else Style()) for i in range(N_COLOURS)]
        italic = self.get_visual_style("token-view--partial", partial=True)
        partial_colours = [c + italic for c in colours]
        id_style = self.style_of("id")
        special_style = self.style_of("special")
        note = self.style_of("note")
        bad = self.style_of("bad")
        surrogates = has_surrogates(text)
        parts: list = []
        add = parts.append
        if spans and spans[0].index > 0:
            add((f"… tokens 1–{spans[0].index:,} not drawn\n", note))
        for k, span in enumerate(spans):
            if span.id in special_ids:
                style = special_style
            elif span.partial and not aligned:
                style = partial_colours[span.index % N_COLOURS]
            else:
                style = colours[span.index % N_COLOURS]
            if surrogates and SURROGATE.search(text, span.char_start, span.char_end):
                body = self._with_surrogates(text[span.char_start:span.char_end], show_ws, style, bad, add)
            else:
                body = visible(text[span.char_start:span.char_end], show_ws) if aligned else label(span.piece, show_ws)
                if show_ws and span.partial and not aligned:
                    body += self._completed(text, span, spans[k + 1] if k + 1 < len(spans) else None)
                add((body.removesuffix("\n"), style))  # the colour on the glyph, not across the break
            if show_ids:
                add((str(span.id), id_style))
                add(" ")
            if show_bytes:
                add(("[" + " ".join(map(str, span.piece)) + "]", id_style))
                add(" ")
            if body.endswith("\n"):  # the id and bytes stay on the token's own line
                add("\n")
        if total > len(spans) and spans:
            first, last = spans[0].index + 1, spans[-1].index + 1
            add((f"\n… drawing tokens {first:,}–{last:,} of {total:,}, around the cursor "
                 "(the counts above are exact)", note))
        return Content.assemble(*parts, strip_control_codes=False)

    @staticmethod
    def _completed(text: str, span: TokenSpan, after: TokenSpan | None) -> str:
        """For a token holding the last bytes of an invisible character (a line separator, a
        no-break space…): "=" and the character's name, e.g. ⟨e2 80⟩⟨a8⟩ completes "=⟨LS⟩"."""
        if after is not None and after.partial and after.char_start == after.char_end:
            return ""  # the character goes on in the next token
        ch = text[span.char_end - 1] if span.char_end > 0 else ""
        named = visible(ch, True) if ch in VISIBLE else ""
        return "=" + named if named else ""

    @staticmethod
    def _with_surrogates(chars: str, show_ws: bool, style, bad, add) -> str:
        """Draw `chars` (holding surrogates) with each surrogate's escape in the `bad` style;
        returns the drawn body (to tell whether it ends a line)."""
        body, pos = "", 0
        for m in SURROGATE.finditer(chars):
            if m.start() > pos:
                add((visible(chars[pos:m.start()], show_ws), style))
            add((visible(m.group(), show_ws), bad))
            body, pos = visible(m.group(), show_ws), m.end()
        if pos < len(chars):
            body = visible(chars[pos:], show_ws)
            add((body.removesuffix("\n"), style))
        return body
