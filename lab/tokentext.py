"""Tokenized text for display: which characters each token covers, and legible pieces.

Pure functions, no UI. A token's `piece` stays bytes; `label` makes it legible: valid UTF-8
is shown as text (optionally with whitespace and control characters made visible), and a
token that holds only part of a multi-byte character is shown as its bytes, e.g. ⟨e6 88⟩.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Visible stand-ins for whitespace and invisible characters.
VISIBLE = {
    " ": "·", "\t": "→", "\n": "↵", "\r": "␍", "\x00": "␀", "\u200b": "⟨ZWSP⟩", "\u200c": "⟨ZWNJ⟩",
    "\u200d": "⟨ZWJ⟩", "\u2060": "⟨WJ⟩", "\ufeff": "⟨BOM⟩", "\u00a0": "⍽", "\u200e": "⟨LRM⟩", "\u200f": "⟨RLM⟩",
    "\u202a": "⟨LRE⟩", "\u202b": "⟨RLE⟩", "\u202c": "⟨PDF⟩", "\u202d": "⟨LRO⟩", "\u202e": "⟨RLO⟩",
    "\u2066": "⟨LRI⟩", "\u2067": "⟨RLI⟩", "\u2068": "⟨FSI⟩", "\u2069": "⟨PDI⟩", "\x7f": "␡",
}


def visible_char(ch: str, show_whitespace: bool) -> str:
    """One character as it should be drawn. Control characters are always made visible
    (they would corrupt a terminal); whitespace and zero-width marks only when asked."""
    o = ord(ch)
    if o < 32 and ch not in "\t\n":
        return VISIBLE.get(ch) or chr(0x2400 + o)  # ␁ ␂ … control pictures
    if 0x80 <= o < 0xA0:
        return f"⟨{o:02x}⟩"
    if ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":  # bidi overrides: never raw
        return VISIBLE[ch]
    if show_whitespace and ch in VISIBLE:
        return VISIBLE[ch] + ("\n" if ch == "\n" else "")
    if 0xD800 <= o < 0xE000:  # lone surrogate (from undecodable input)
        return "\ufffd"
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


def label(piece: bytes, show_whitespace: bool = False) -> str:
    """A token drawn legibly: text when its bytes are whole UTF-8, else its bytes in hex."""
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


def segment(text: str, ids: Sequence[int], token_bytes: Callable[[int], bytes], limit: int | None = None) -> list[TokenSpan]:
    """Map tokens to the characters of `text` they cover (the first `limit` tokens).

    A character is owned by the token holding its first byte, so spans never overlap and
    every character belongs to exactly one span. Raises ValueError if the pieces do not
    rebuild the text's bytes (a tokenizer that does not round-trip).
    """
    n = len(ids) if limit is None else min(limit, len(ids))
    spans: list[TokenSpan] = []
    char = 0
    byte = 0
    char_byte = 0  # byte offset where character `char` starts
    for k in range(n):
        piece = token_bytes(ids[k])
        start_b, end_b = byte, byte + len(piece)
        start_c = char
        while char < len(text) and char_byte < end_b:
            char_byte += len(text[char].encode("utf-8", errors="surrogatepass"))
            char += 1
        spans.append(TokenSpan(k, int(ids[k]), piece, start_b, end_b, start_c, char, not is_complete_utf8(piece)))
        byte = end_b
    return spans


@dataclass(frozen=True)
class TokenStats:
    tokens: int
    chars: int
    bytes: int

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0


def stats(text: str, ids: Sequence[int]) -> TokenStats:
    return TokenStats(len(ids), len(text), len(text.encode("utf-8", errors="surrogatepass")))
