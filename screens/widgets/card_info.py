"""The top of a failure card: the question, the truth computed by code, and what the model
sees (the tokens of the key word, with their boundaries) beside the letters a person sees."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from lab.failures import Experiment
from lab.tokentext import label


class CardInfo(Static):
    COMPONENT_CLASSES = {"card-info--even", "card-info--odd", "card-info--outside", "card-info--dim",
                         "card-info--hit", "card-info--truth"}
    DEFAULT_CSS = """
    CardInfo { height: auto; padding: 0 1; }
    CardInfo > .card-info--even { background: $primary 40%; }
    CardInfo > .card-info--odd { background: $secondary 40%; }
    CardInfo > .card-info--outside { color: $text-muted; }
    CardInfo > .card-info--dim { color: $text-muted; }
    CardInfo > .card-info--hit { background: $warning 50%; text-style: bold; }
    CardInfo > .card-info--truth { color: $success; text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.experiment: Experiment | None = None
        self.error = ""
        self.tokens: dict[str, list[tuple[int, bytes, bool]]] = {}  # word -> its tokens in the prompt
        self.model_note = ""

    def show(self, experiment: Experiment | None, tokens: dict | None = None, error: str = "",
             model_note: str = "") -> None:
        self.experiment, self.tokens, self.error, self.model_note = experiment, tokens or {}, error, model_note
        self.redraw()

    def token_split(self, word: str) -> list[str]:
        """The pieces the model reads for `word`, as shown ("st", "raw", "berry")."""
        return [label(piece, True) for _, piece, _ in self.tokens.get(word, [])]

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        st = lambda name: self.get_visual_style(f"card-info--{name}")  # noqa: E731
        dim = st("dim")
        e = self.experiment
        if e is None:
            self.update(Content.assemble((self.error, "bold $error")) if self.error else Content(""))
            return
        parts: list = [("question  ", dim), e.question, "\n", ("truth     ", dim), (e.truth, st("truth")),
                       ("   computed: " + e.truth_how, dim)]
        for word in e.words:
            parts += ["\n", ("model sees ", dim)]
            toks = self.tokens.get(word)
            if not toks:
                parts.append((self.model_note or "(the model is loading…)", dim))
            else:
                for k, (_tid, piece, whole) in enumerate(toks):
                    colour = st("even" if k % 2 == 0 else "odd")  # a piece reaching past the word is dimmed
                    parts.append((label(piece, True), colour if whole else colour + st("outside")))
                    parts.append("|" if k + 1 < len(toks) else "")
                ids = " ".join(str(t) for t, _, _ in toks)
                parts.append((f"   {len(toks)} token{'s' if len(toks) != 1 else ''} · ids {ids}", dim))
            parts += ["\n", ("person sees", dim), " "]
            hit = e.letter.lower() if e.letter else None
            for k, ch in enumerate(word):
                parts.append((ch, st("hit") if hit and ch.lower() == hit else ""))
                parts.append(" " if k + 1 < len(word) else "")
            parts.append((f"   {len(word)} characters", dim))
        if self.error:
            parts += ["\n", (self.error, "bold $error")]
        self.update(Content.assemble(*parts, strip_control_codes=True))  # its height follows the card
