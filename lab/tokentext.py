"""Tokenized text for display: which characters each token covers, and legible pieces.

Pure functions, no UI. A token's `piece` stays bytes; `label` makes it legible: valid UTF-8
is shown as text (optionally with whitespace and control characters made visible), and a
token that holds only part of a multi-byte character is shown as its bytes, e.g. ⟨e6 88⟩.

Text that UTF-8 cannot carry: a Python string may hold surrogate code points (a lone
surrogate from a badly decoded file, or an emoji stored as two UTF-16 halves). Every
tokenizer here sees such a code point as U+FFFD, one for one (`encodable`), so character
positions stay those of the text as given; `visible` shows each one as its escape, "\\udc4d".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

SURROGATE = re.compile("[\ud800-\udfff]")
# What str.splitlines (and so Textual's TextArea) breaks lines at.
LINE_SEPARATORS = ("\r\n", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")

# Visible stand-ins for whitespace and invisible characters.
VISIBLE = {
    " ": "·", "\t": "→", "\n": "↵", "\r": "␍", "\x00": "␀", "\u200b": "⟨ZWSP⟩", "\u200c": "⟨ZWNJ⟩",
    "\u200d": "⟨ZWJ⟩", "\u2060": "⟨WJ⟩", "\ufeff": "⟨BOM⟩", "\u00a0": "⍽", "\u200e": "⟨LRM⟩", "\u200f": "⟨RLM⟩",
    "\u202a": "⟨LRE⟩", "\u202b": "⟨RLE⟩", "\u202c": "⟨PDF⟩", "\u202d": "⟨LRO⟩", "\u202e": "⟨RLO⟩",
    "\u2066": "⟨LRI⟩", "\u2067": "⟨RLI⟩", "\u2068": "⟨FSI⟩", "\u2069": "⟨PDI⟩", "\x7f": "␡",
    "\x85": "⟨NEL⟩", "\u2028": "⟨LS⟩", "\u2029": "⟨PS⟩",
}
# Line separators other than "\n": the text box breaks the line there, so the views do too.
_BREAKS = {"\x85", "\u2028", "\u2029"}


def has_surrogates(text: str) -> bool:
    return not text.isascii() and SURROGATE.search(text) is not None


def encodable(text: str) -> str:
    """`text` with each surrogate code point replaced by U+FFFD: what the tokenizers see.

    Same length as `text`, so character positions are unchanged.
    Example: "a\\udc4db" -> "a\\ufffdb"."""
    return SURROGATE.sub("\ufffd", text) if has_surrogates(text) else text


def utf8(text: str) -> bytes:
    """The UTF-8 bytes the tokenizers see for `text` (see `encodable`)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return encodable(text).encode("utf-8")


def visible_char(ch: str, show_whitespace: bool) -> str:
    """One character as it should be drawn. Control characters are always made visible
    (they would corrupt a terminal); whitespace and zero-width marks only when asked."""
    o = ord(ch)
    if o < 32 and ch not in "\t\n":
        return VISIBLE.get(ch) or chr(0x2400 + o)  # ␁ ␂ … control pictures
    if ch in _BREAKS:  # NEL, LS, PS: a line break, named when whitespace is shown
        return VISIBLE[ch] + "\n" if show_whitespace else "\n"
    if 0x80 <= o < 0xA0:
        return f"⟨{o:02x}⟩"
    if ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":  # bidi overrides: never raw
        return VISIBLE[ch]
    if show_whitespace and ch in VISIBLE:
        return VISIBLE[ch] + ("\n" if ch == "\n" else "")
    if 0xD800 <= o < 0xE000:  # a surrogate: UTF-8 cannot carry it; show its escape
        return f"\\u{o:04x}"
    return ch


def visible(text: str, show_whitespace: bool = True) -> str:
    return "".join(visible_char(ch, show_whitespace) for ch in text)


def is_complete_utf8(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def hex_bytes(piece: bytes) -> str:
    return "⟨" + " ".join(f"{b:02x}" for b in piece) + "⟩"


@lru_cache(maxsize=1 << 16)
def label(piece: bytes, show_whitespace: bool = False) -> str:
    """A token drawn legibly: text when its bytes are whole UTF-8, else its bytes in hex.

    Cached: a redraw per keystroke asks for the same few hundred pieces again."""
    if is_complete_utf8(piece):
        return visible(piece.decode("utf-8"), show_whitespace)
    # Keep the decodable part as text and show only the broken bytes in hex.
    out, i = [], 0
    while i < len(piece):
        for n in (4, 3, 2, 1):
            chunk = piece[i:i + n]
            if len(chunk) == n and is_complete_utf8(chunk):
                out.append(visible(chunk.decode("utf-8"), show_whitespace))
                i += n
                break
        else:
            j = i + 1
            while j < len(piece) and not any(is_complete_utf8(piece[j:j + n]) for n in (1, 2, 3, 4)
                                             if j + n <= len(piece)):
                j += 1
            out.append(hex_bytes(piece[i:j]))
            i = j
    return "".join(out)


@dataclass(frozen=True)
class TokenSpan:
    index: int
    id: int
    piece: bytes
    byte_start: int
    byte_end: int
    char_start: int  # first character whose first byte lies in this token
    char_end: int
    partial: bool  # the piece is not whole UTF-8 (part of a multi-byte character)


class Segmenter:
    """Maps every token of a text to its bytes and characters, then hands out windows.

    Built once per (text, ids): O(n) with numpy, so a 1 MB text costs tens of milliseconds,
    and a window of a few hundred tokens costs almost nothing.
    """

    def __init__(self, text: str, ids: Sequence[int], token_bytes: Callable[[int], bytes],
                 lengths: Sequence[int] | None = None) -> None:
        """`lengths` (byte length per token) may be given when the caller has them cached."""
        import numpy as np

        self.text = text
        self.ids = list(ids)
        self._token_bytes = token_bytes
        data = utf8(text)
        if lengths is None:
            lengths = [len(token_bytes(i)) for i in self.ids]
        lengths = np.asarray(lengths, dtype=np.int64)
        self.byte_ends = np.cumsum(lengths)
        if len(self.ids) and int(self.byte_ends[-1]) != len(data):
            raise ValueError("the tokens do not rebuild the text's bytes")
        starts = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80  # a character starts at this byte
        # chars_before[b]: how many characters start before byte b (so: the char index at b).
        self.chars_before = np.concatenate(([0], np.cumsum(starts, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.ids)

    def token_at_char(self, char_index: int) -> int:
        """The index of the token that owns character `char_index` (clamped)."""
        import numpy as np

        if not self.ids:
            return 0
        byte = int(np.searchsorted(self.chars_before, char_index, side="right")) - 1  # first byte of that char
        return int(min(np.searchsorted(self.byte_ends, byte, side="right"), len(self.ids) - 1))

    def spans(self, start: int = 0, stop: int | None = None) -> list[TokenSpan]:
        stop = len(self.ids) if stop is None else min(stop, len(self.ids))
        out = []
        for k in range(max(0, start), stop):
            b0 = int(self.byte_ends[k - 1]) if k else 0
            b1 = int(self.byte_ends[k])
            piece = self._token_bytes(self.ids[k])
            out.append(TokenSpan(k, int(self.ids[k]), piece, b0, b1, int(self.chars_before[b0]),
                                 int(self.chars_before[b1]), not is_complete_utf8(piece)))
        return out

    def window(self, center_char: int, size: int) -> list[TokenSpan]:
        """About `size` tokens around the token owning `center_char`."""
        if len(self.ids) <= size:
            return self.spans()
        k = self.token_at_char(center_char)
        start = max(0, min(k - size // 2, len(self.ids) - size))
        return self.spans(start, start + size)


@dataclass(frozen=True)
class TokenStats:
    tokens: int
    chars: int
    bytes: int  # of the text the tokenizers see (`utf8`)
    unencodable: int = 0  # surrogate code points, each seen as U+FFFD

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0


def stats(text: str, ids: Sequence[int]) -> TokenStats:
    bad = len(SURROGATE.findall(text)) if has_surrogates(text) else 0
    return TokenStats(len(ids), len(text), len(utf8(text)), bad)


def one_line(text: str, empty: str = "(empty)") -> str:
    """A model's reply on one line of a screen: control characters made visible (a raw \\x1f corrupts a
    terminal and an exported SVG), line breaks drawn as ⏎, `empty` when there is nothing.
    Example: one_line("6\\x1f\\n7") -> "6␟ ⏎ 7"."""
    return visible(text, False).replace("\n", " ⏎ ") or empty
