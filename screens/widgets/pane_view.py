"""One side of Base vs chat: N sampled completions, each token coloured by its probability.

A scrolling pane (keys and wheel): a title line, a note when the answers belong to an
earlier prompt, one block per sample, and the alternatives the model had at the token under
the cursor (←/→ move over tokens, ↑/↓ between samples; PageUp/PageDown scroll).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from lab.tokentext import label, visible
from lab.types import RenderedChat, TokenEvent


@dataclass
class Sample:
    seed: int
    events: list[TokenEvent] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0
    cached: bool = False  # replayed from the sample cache

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self.events)


@dataclass(frozen=True)
class PlainPrompt:
    """What a base model receives: plain text, after whatever special tokens its tokenizer adds."""

    text: str
    ids: tuple[int, ...]
    specials: tuple[str, ...]  # the special tokens in front of the text ("<bos>"), as text


class PaneView(VerticalScroll, can_focus=True):
    """Samples of one model, or the exact prompt it receives (`template`)."""

    BINDINGS = [
        Binding("left", "move(-1, 0)", "Token ←", show=False, id="pane.left"),
        Binding("right", "move(1, 0)", "Token →", show=False, id="pane.right"),
        Binding("up", "move(0, -1)", "Sample ↑", show=False, id="pane.up"),
        Binding("down", "move(0, 1)", "Sample ↓", show=False, id="pane.down"),
    ]

    COMPONENT_CLASSES = {"pane-view--high", "pane-view--mid", "pane-view--low", "pane-view--cursor",
                         "pane-view--dim", "pane-view--special", "pane-view--stale", "pane-view--match"}
    DEFAULT_CSS = """
    PaneView { width: 1fr; height: 1fr; padding: 0 1; border: round $panel; scrollbar-size-vertical: 1; }
    PaneView:focus { border: round $accent; }
    PaneView > .pane-title { dock: top; height: 1; text-style: bold; }
    PaneView > .pane-alts { dock: bottom; height: auto; max-height: 4; color: $text-muted; }
    PaneView > Static { height: auto; }
    PaneView > .pane-view--high { background: $success 35%; }
    PaneView > .pane-view--mid { background: $warning 35%; }
    PaneView > .pane-view--low { background: $error 45%; }
    PaneView > .pane-view--cursor { text-style: reverse bold; }
    PaneView > .pane-view--dim { color: $text-muted; }
    PaneView > .pane-view--special { background: $error 70%; text-style: bold; }
    PaneView > .pane-view--stale { color: $text-warning; text-style: bold; }
    PaneView > .pane-view--match { text-style: underline bold; }
    """

    title: reactive[str] = reactive("", init=False)
    message: reactive[str] = reactive("", init=False)
    stale: reactive[str] = reactive("", init=False)  # why the answers shown are out of date
    show_speed = True

    def __init__(self, role: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.role = role
        self.samples: list[Sample] = []
        self.cursor: tuple[int, int] | None = None  # (sample, token)
        self.template: RenderedChat | PlainPrompt | None = None  # shown instead of the samples
        self.original: str | None = None  # how the text goes on, when the prompt opens a famous text
        self._blocks: list[Static] = []

    def compose(self) -> ComposeResult:
        yield Static(self.role, classes="pane-title", markup=False)
        yield Static(classes="pane-note", markup=False)  # model output and server errors: never markup
        yield Static(classes="pane-alts", markup=False)

    def watch_title(self) -> None:
        self.redraw()

    def watch_message(self) -> None:
        self.redraw()

    def watch_stale(self) -> None:
        self.redraw()

    def start(self, seeds: list[int]) -> None:
        """New samples, one per seed, replacing what was shown."""
        self.samples = [Sample(seed) for seed in seeds]
        self.cursor, self.template, self.stale = None, None, ""
        self.set_reactive(PaneView.message, "")
        self._sync_blocks()
        self.redraw()

    def _sync_blocks(self) -> None:
        if not self.is_mounted:
            return
        want = len(self.samples) if self.template is None else 0
        while len(self._blocks) > want:
            self._blocks.pop().remove()
        while len(self._blocks) < want:
            block = Static(classes="pane-sample", markup=False)
            self._blocks.append(block)
            self.mount(block, before=self.query_one(".pane-alts"))

    def action_move(self, dx: int, dy: int) -> None:
        if not self.samples:
            return
        s, t = self.cursor or (0, -1)
        s = max(0, min(len(self.samples) - 1, s + dy))
        n = len(self.samples[s].events)
        t = max(0, min(n - 1, t + dx)) if n else 0
        self.cursor = (s, t)
        self.redraw()
        if s < len(self._blocks):
            self.scroll_to_widget(self._blocks[s], animate=False)

    def selected(self) -> TokenEvent | None:
        if self.cursor is None:
            return None
        s, t = self.cursor
        events = self.samples[s].events if s < len(self.samples) else []
        return events[t] if 0 <= t < len(events) else None

    def on_mount(self) -> None:
        self._sync_blocks()
        self.redraw()

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        st = lambda name: self.get_visual_style(f"pane-view--{name}")  # noqa: E731
        self.query_one(".pane-title", Static).update(self.title or self.role)
        note = self.query_one(".pane-note", Static)
        alts = self.query_one(".pane-alts", Static)
        self._sync_blocks()
        if self.template is not None:
            note.update(Content.assemble(*self._template_parts(st), strip_control_codes=False))
            note.display = True
            alts.update("")
            return
        if self.message:
            note.update(self.message)
        elif self.stale:
            note.update(Content.assemble((self.stale, st("stale"))))
        note.display = bool(self.message or self.stale)
        for block, (si, sample) in zip(self._blocks, enumerate(self.samples)):
            block.update(Content.assemble(*self._sample_parts(si, sample, st), strip_control_codes=False))
        ev = self.selected()
        if ev is not None:
            options = "  ".join(f"{label(t.piece, True)!r} {t.prob:.1%}" for t in ev.top)
            alts.update(f"token {ev.index + 1}: {label(ev.piece, True)!r} p={ev.raw_prob:.3f} · the model's "
                        f"options: {options}")
        alts.display = ev is not None

    def _sample_parts(self, si: int, sample: Sample, st) -> list:
        dim = st("dim")
        high, mid, low, cur = st("high"), st("mid"), st("low"), st("cursor")
        speed = (" · cached" if sample.cached else f" · {len(sample.events) / sample.seconds:.1f} tok/s"
                 if self.show_speed and sample.seconds > 0 else "")
        matched_tokens, matched = 0, -1
        if self.original is not None:
            from lab.prompts import matching_prefix

            matched = matching_prefix(sample.text, self.original)
            end = 0
            for ev in sample.events:
                end += len(ev.text)
                if end > matched or not ev.text:
                    break
                matched_tokens += 1
        parts: list = [(f"seed {sample.seed} · {len(sample.events)} tokens{speed}"
                        f"{' · ' + sample.stop_reason if sample.stop_reason else ' · generating…'}", dim)]
        if matched >= 0:
            parts.append((f"\nrepeats the original for {matched_tokens} tokens ({matched} characters)",
                          st("stale")))
        parts.append("\n")
        for ti, ev in enumerate(sample.events):
            style = high if ev.raw_prob >= 0.5 else (mid if ev.raw_prob >= 0.1 else low)
            if ti < matched_tokens:
                style = style + st("match")
            if self.cursor == (si, ti):
                style = style + cur
            text = visible(ev.text, False) if ev.text else label(ev.piece, True)
            if text.endswith("\n"):
                parts += [(text[:-1] or "↵", style), "\n"]
            else:
                parts.append((text, style))
        if sample.stop_reason == "length":
            parts.append(("  ⋯ cut here: the max-tokens limit", st("stale")))
        parts.append("\n")
        return parts

    def _template_parts(self, st) -> list:
        dim, special = st("dim"), st("special")
        t = self.template
        if isinstance(t, PlainPrompt):  # a base model receives plain text, after its BOS if it has one
            if t.specials:
                head = (f"exactly what the base model receives: {len(t.ids)} tokens: "
                        f"{' '.join(t.specials)} (added by its tokenizer), then the plain text:\n\n")
                parts: list = [(head, dim)]
                for s in t.specials:
                    parts += [(s, special), " "]
            else:
                parts = [(f"exactly what the base model receives: {len(t.ids)} tokens of plain text, "
                          "no special tokens:\n\n", dim)]
            return parts + [visible(t.text, True), ("\n\nids: " + " ".join(map(str, t.ids)), dim)]
        parts = [(f"exactly what the chat model receives: {len(t.ids)} tokens, "
                  f"{len(t.special)} special (from its {t.template_source})\n\n", dim)]
        pos = 0
        for span in t.special:
            parts.append(t.text[pos:span.char_start])
            parts.append((t.text[span.char_start:span.char_end], special))
            parts.append((f"{t.ids[span.start]}", dim))
            pos = span.char_end
        parts.append(t.text[pos:])
        parts.append(("\n\nids: " + " ".join(map(str, t.ids)), dim))
        return parts
