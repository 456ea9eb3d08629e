"""One side of Base vs chat: N sampled completions, each token coloured by its probability."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from lab.tokentext import label, visible
from lab.types import TokenEvent


@dataclass
class Sample:
    seed: int
    events: list[TokenEvent] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self.events)


class PaneView(Static, can_focus=True):
    """Samples of one model. With focus, arrows move a cursor over the tokens and the
    alternatives the model had at the selected token are shown."""

    BINDINGS = [
        Binding("left", "move(-1, 0)", "Token ←", show=False, id="pane.left"),
        Binding("right", "move(1, 0)", "Token →", show=False, id="pane.right"),
        Binding("up", "move(0, -1)", "Sample ↑", show=False, id="pane.up"),
        Binding("down", "move(0, 1)", "Sample ↓", show=False, id="pane.down"),
    ]

    COMPONENT_CLASSES = {"pane-view--high", "pane-view--mid", "pane-view--low", "pane-view--cursor",
                         "pane-view--dim", "pane-view--special"}
    DEFAULT_CSS = """
    PaneView { width: 1fr; height: 1fr; padding: 0 1; overflow-y: auto; border: round $panel; }
    PaneView:focus { border: round $accent; }
    PaneView > .pane-view--high { background: $success 35%; }
    PaneView > .pane-view--mid { background: $warning 35%; }
    PaneView > .pane-view--low { background: $error 45%; }
    PaneView > .pane-view--cursor { text-style: reverse bold; }
    PaneView > .pane-view--dim { color: $text-muted; }
    PaneView > .pane-view--special { background: $error 70%; text-style: bold; }
    """

    def __init__(self, role: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.role = role
        self.title = role
        self.samples: list[Sample] = []
        self.message = ""
        self.cursor: tuple[int, int] | None = None  # (sample, token)
        self.template = None  # a RenderedChat or prompt text to show instead of the samples
        self.show_speed = True

    def action_move(self, dx: int, dy: int) -> None:
        if not self.samples:
            return
        s, t = self.cursor or (0, -1)
        s = max(0, min(len(self.samples) - 1, s + dy))
        n = len(self.samples[s].events)
        t = max(0, min(n - 1, t + dx)) if n else 0
        self.cursor = (s, t)
        self.redraw()

    def selected(self) -> TokenEvent | None:
        if self.cursor is None:
            return None
        s, t = self.cursor
        events = self.samples[s].events if s < len(self.samples) else []
        return events[t] if 0 <= t < len(events) else None

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        st = lambda name: self.get_visual_style(f"pane-view--{name}")  # noqa: E731
        dim = st("dim")
        parts: list = [(self.title, "bold"), "\n"]
        if self.template is not None:
            parts += self._template_parts(st)
            self.update(Content.assemble(*parts, strip_control_codes=False), layout=False)
            return
        if self.message:
            parts.append(self.message)
            self.update(Content.assemble(*parts), layout=False)
            return
        high, mid, low, cur = st("high"), st("mid"), st("low"), st("cursor")
        for si, sample in enumerate(self.samples):
            speed = (f" · {len(sample.events) / sample.seconds:.1f} tok/s"
                     if self.show_speed and sample.seconds > 0 else "")
            parts.append((f"seed {sample.seed} · {len(sample.events)} tokens{speed}"
                          f"{' · ' + sample.stop_reason if sample.stop_reason else ' · generating…'}\n", dim))
            for ti, ev in enumerate(sample.events):
                style = high if ev.raw_prob >= 0.5 else (mid if ev.raw_prob >= 0.1 else low)
                if self.cursor == (si, ti):
                    style = style + cur
                text = visible(ev.text, False) if ev.text else label(ev.piece, True)
                if text.endswith("\n"):
                    parts += [(text[:-1] or "↵", style), "\n"]
                else:
                    parts.append((text, style))
            parts.append("\n\n")
        ev = self.selected()
        if ev is not None:
            alts = "  ".join(f"{label(t.piece, True)!r} {t.prob:.1%}" for t in ev.top)
            parts.append((f"token {ev.index + 1}: {label(ev.piece, True)!r} p={ev.raw_prob:.3f} · the model's options: "
                          f"{alts}", dim))
        self.update(Content.assemble(*parts, strip_control_codes=False), layout=False)

    def _template_parts(self, st) -> list:
        dim, special = st("dim"), st("special")
        t = self.template
        if isinstance(t, str):  # a base model receives plain text
            return [("exactly what the base model receives (plain text, no special tokens):\n\n", dim),
                    visible(t, True)]
        parts: list = [(f"exactly what the chat model receives: {len(t.ids)} tokens, "
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
