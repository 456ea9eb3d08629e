"""A text box that keeps its text exactly as given: every line separator, tabs, surrogates.

Textual's `TextArea` rewrites line separators: CRLF, a lone CR, U+0085, U+2028 and U+2029
all come back as one newline style, so a tokenizer would count a different text from the one
pasted or loaded. `ExactDocument` keeps the separator after each line and gives it back in
`text`, selections, undo and character positions. `ExactTextArea` uses it, types a tab with
Tab (Esc leaves the box), re-tokenizes inside an edit's own handler (one frame, not two), and
draws a surrogate code point, which a terminal cannot print, as U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from textual.binding import Binding
from textual.document._document import Document
from textual.document._document_navigator import DocumentNavigator
from textual.document._edit import EditResult
from textual.document._wrapped_document import WrappedDocument
from textual.strip import Strip
from textual.widgets import TextArea

from lab.tokentext import LINE_SEPARATORS, SURROGATE, has_surrogates

_SEPARATOR = re.compile("|".join(map(re.escape, LINE_SEPARATORS)))  # "\r\n" first: one separator


def split_lines(text: str) -> tuple[list[str], list[str]]:
    """Lines and the separator after each but the last.

    Example: "a\r\nb\u2028" -> (["a", "b", ""], ["\r\n", "\u2028"])."""
    lines, seps, pos = [], [], 0
    for m in _SEPARATOR.finditer(text):
        lines.append(text[pos:m.start()])
        seps.append(m.group())
        pos = m.end()
    lines.append(text[pos:])
    return lines, seps


class ExactDocument(Document):
    """A `Document` whose `text` is the text it was given, separators included."""

    def __init__(self, text: str) -> None:
        self._lines, self._seps = split_lines(text)
        self._newline = self._seps[0] if self._seps and self._seps[0] in ("\r\n", "\n", "\r") else "\n"
        self._text: str | None = text

    @property
    def text(self) -> str:
        if self._text is None:
            parts = [None] * (2 * len(self._lines) - 1)
            parts[::2] = self._lines
            parts[1::2] = self._seps
            self._text = "".join(parts)
        return self._text

    def replace_range(self, start, end, text: str) -> EditResult:
        top, bottom = sorted((start, end))
        (top_row, top_col), (bottom_row, bottom_col) = top, bottom
        lines, seps = self._lines, self._seps
        replaced = self.get_text_range(top, bottom)
        before = lines[top_row][:top_col] if top_row < len(lines) else ""
        after = lines[bottom_row][bottom_col:] if bottom_row < len(lines) else ""
        new_lines, new_seps = split_lines(text)
        new_lines[0] = before + new_lines[0]
        column = len(new_lines[-1])
        new_lines[-1] += after
        lines[top_row:bottom_row + 1] = new_lines
        seps[top_row:bottom_row] = new_seps
        self._text = None
        return EditResult((top_row + len(new_lines) - 1, column), replaced)

    def get_text_range(self, start, end) -> str:
        if start == end:
            return ""
        (top_row, top_col), (bottom_row, bottom_col) = sorted((start, end))
        lines, seps = self._lines, self._seps
        if top_row == bottom_row:
            return lines[top_row][top_col:bottom_col]
        parts = [lines[top_row][top_col:]]
        for row in range(top_row + 1, min(bottom_row, len(lines))):
            parts += [seps[row - 1], lines[row]]
        if bottom_row < len(lines):
            parts += [seps[bottom_row - 1], lines[bottom_row][:bottom_col]]
        return "".join(parts)

    def get_index_from_location(self, location) -> int:
        row, column = location
        lines, seps = self._lines, self._seps
        return sum(len(lines[i]) + len(seps[i]) for i in range(min(row, len(seps)))) + column

    def get_location_from_index(self, index: int):
        if index < 0 or index > len(self.text):
            raise ValueError(f"Index {index!r} does not correspond to a location in the document.")
        for row, line in enumerate(self._lines):
            if index <= len(line) or row == len(self._seps):
                return (row, max(0, min(index, len(line))))
            index -= len(line) + len(self._seps[row])
        return self.end


class ExactTextArea(TextArea):
    """A TextArea over an `ExactDocument`; `on_edit` runs inside each edit's handler."""

    BINDINGS = [
        Binding("escape", "leave", "Leave box", id="text.leave", tooltip="Tab types a tab here; Esc leaves the box",
                priority=True),
    ]

    def __init__(self, text: str = "", *, on_edit: Callable[[], None] | None = None, **kwargs) -> None:
        kwargs.setdefault("tab_behavior", "indent")
        super().__init__(text, **kwargs)
        self.indent_type = "tabs"  # Tab types "\t", as the whitespace demos need
        self.on_edit = on_edit

    def _set_document(self, text: str, language: str | None) -> None:
        """As TextArea's, over an ExactDocument (plain text: no syntax highlighting here)."""
        self._highlight_query = None
        self.document = ExactDocument(text)
        self.wrapped_document = WrappedDocument(self.document, tab_width=self.indent_width)
        self.navigator = DocumentNavigator(self.wrapped_document)
        self._build_highlight_map()
        self.move_cursor((0, 0))
        self._rewrap_and_refresh_virtual_size()

    def edit(self, edit):
        result = super().edit(edit)
        if self.on_edit is not None:
            self.on_edit()
        return result

    def action_leave(self) -> None:
        self.screen.focus_next()
        if self.has_focus:  # nothing else to focus on this view
            self.screen.set_focus(None)

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if has_surrogates(strip.text):  # a terminal cannot print one: draw U+FFFD (same width)
            from rich.segment import Segment

            strip = Strip([Segment(SURROGATE.sub("\ufffd", s.text), s.style, s.control) for s in strip],
                          strip.cell_length)
        return strip
