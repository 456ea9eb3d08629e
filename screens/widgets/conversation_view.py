"""A conversation as the model sees it in SFT: its tokens, the template's specials, and the loss mask.

Each token is drawn as its piece (whitespace made visible); a token the loss is taken on (the
assistant's, up to and including its end-of-turn token) is drawn in the "trained" colour, every
other token (system and user turns, role headers) in the "context" colour, and special tokens
bold on their own colour. Set `shown` to a `ConversationShown`; colours come from the theme.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from lab.tokentext import label


@dataclass(frozen=True)
class ConversationShown:
    """What the view draws: one rendered conversation and where it sits in its set."""

    index: int  # 0-based
    total: int
    task: str
    truth: str
    pieces: tuple[bytes, ...]  # one per token
    mask: tuple[int, ...]
    special: frozenset[int]  # positions of special tokens
    model: str  # whose template and tokenizer


class ConversationView(Static):
    COMPONENT_CLASSES = {"conversation-view--trained", "conversation-view--context", "conversation-view--special",
                         "conversation-view--head"}

    DEFAULT_CSS = """
    ConversationView { width: 1fr; height: auto; padding: 0 1; }
    ConversationView > .conversation-view--trained { background: $success 40%; }
    ConversationView > .conversation-view--context { color: $text-muted; }
    ConversationView > .conversation-view--special { text-style: bold; background: $accent 40%; }
    ConversationView > .conversation-view--head { text-style: bold; }
    """

    shown: reactive[ConversationShown | None] = reactive(None)

    def watch_shown(self, shown: ConversationShown | None) -> None:
        if shown is None:
            self.update("Conversations appear here once the chat model has loaded.")
            return
        style = {name: self.get_visual_style(f"conversation-view--{name}")
                 for name in ("trained", "context", "special", "head")}
        trained = sum(shown.mask)
        parts: list = [(f"conversation {shown.index + 1} of {shown.total} · {shown.task}"
                        + (f" · truth {shown.truth}" if shown.truth else "")
                        + f" · {len(shown.pieces)} tokens, {trained} trained on ({shown.model})\n", style["head"]),
                       ("trained on (loss mask 1)", style["trained"]), "  ", ("context (mask 0)", style["context"]),
                       "  ", ("special token", style["special"]), "\n\n"]
        for i, (piece, m) in enumerate(zip(shown.pieces, shown.mask)):
            body = label(piece, show_whitespace=True)
            look = style["trained"] if m else style["context"]
            if i in shown.special:
                look = look + style["special"]
            parts.append((body.removesuffix("\n"), look))
            if body.endswith("\n"):
                parts.append("\n")
        self.update(Content.assemble(*parts, strip_control_codes=False))
