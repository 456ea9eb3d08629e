"""BPE replay: step merge by merge from a chunk's bytes to its final tokens, in the
encoding the screen has selected (its merge rules load in this widget's worker: a model's
merge list is read from its GGUF). An encoding that cannot be replayed says why."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.reactive import var
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from lab.bpe import Step, replay_text
from lab.errors import LabError
from lab.tokentext import label

_COLOURS = 6
HINT = "Select text (or put the cursor on a word) and press Ctrl+R to replay its merges."


@dataclass(frozen=True)
class Replay:
    """A prepared replay: every chunk's steps, and the ids it ends with against the encoder's."""

    source: str
    name: str  # the encoding's label
    rank_name: str
    chunks: tuple[tuple[Step, ...], ...]
    final_ids: tuple[int | None, ...]
    encoder_ids: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(len(c) - 1 for c in self.chunks)


class ReplayView(Static, can_focus=True):
    """Shows one state of a replay; arrow keys step through the merges of all chunks."""

    BINDINGS = [
        Binding("right,space", "step(1)", "Next merge", id="replay.next"),
        Binding("left", "step(-1)", "Previous merge", id="replay.prev"),
        Binding("home", "jump(0)", "First", id="replay.first", show=False),
        Binding("end", "jump(-1)", "Last", id="replay.last", show=False),
    ]

    COMPONENT_CLASSES = {*(f"replay-view--t{i}" for i in range(_COLOURS)), "replay-view--merged", "replay-view--dim"}

    DEFAULT_CSS = """
    ReplayView { height: auto; padding: 0 1; }
    ReplayView:focus { background: $boost; }
    ReplayView > .replay-view--t0 { background: $primary 40%; }
    ReplayView > .replay-view--t1 { background: $secondary 40%; }
    ReplayView > .replay-view--t2 { background: $accent 40%; }
    ReplayView > .replay-view--t3 { background: $success 40%; }
    ReplayView > .replay-view--t4 { background: $warning 40%; }
    ReplayView > .replay-view--t5 { background: $error 35%; }
    ReplayView > .replay-view--merged { background: $error 80%; text-style: bold; }
    ReplayView > .replay-view--dim { color: $text-muted; }
    """

    replay: var[Replay | None] = var(None)
    """The replay shown (None: the message instead)."""
    position: var[int] = var(0)
    """The global step shown, across chunks: 0 is the raw bytes, `replay.total` the final tokens."""
    message: var[str] = var(HINT)
    """What is shown instead of a replay: a hint, "preparing…", or why it cannot be replayed."""

    def load(self, text: str, encoding) -> None:
        """Replay `text` in `encoding` (a `TextEncoding`); the work runs in this widget's worker."""
        self.message = f"preparing the replay of {text!r} in {encoding.label}…"
        self.replay = None
        self._prepare(text, encoding)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _prepare(self, text: str, encoding) -> Replay | str:
        """Returns the replay, or the reason there is none."""
        try:
            rules = encoding.merge_rules()
        except LabError as exc:
            return f"BPE replay of {encoding.label}: {exc.message}"
        chunks = replay_text(text, rules)
        final = tuple(rules.token_id(p) for steps in chunks for p in steps[-1].parts)
        return Replay(text, encoding.label, rules.rank_name, tuple(map(tuple, chunks)), final,
                      tuple(encoding.encode(text)))

    @on(Worker.StateChanged)
    def _prepared(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "replay":
            return
        event.stop()
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            if isinstance(result, Replay):
                self.position = 0
                self.message = ""
                self.replay = result
            else:
                self.message = result
        elif event.state == WorkerState.ERROR:
            self.message = f"the replay failed: {event.worker.error}"

    # ---- stepping -----------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self.replay.total if self.replay else 0

    @property
    def final_ids(self) -> list:
        return list(self.replay.final_ids) if self.replay else []

    @property
    def source(self) -> str:
        return self.replay.source if self.replay else ""

    def action_step(self, delta: int) -> None:
        self.position = max(0, min(self.total, self.position + delta))

    def action_jump(self, where: int) -> None:
        self.position = 0 if where == 0 else self.total

    def state(self) -> tuple[list[tuple[Step, bool]], Step | None]:
        """The state shown at `position`: per chunk (its current step, whether it made the last merge)."""
        remaining = self.position
        shown: list[tuple[Step, bool]] = []
        last = None
        for steps in self.replay.chunks if self.replay else ():
            take = min(len(steps) - 1, remaining)
            remaining -= take
            is_last = take > 0 and remaining == 0 and last is None
            if is_last:
                last = steps[take]
            shown.append((steps[take], is_last))
        return shown, last

    def current_parts(self) -> list[bytes]:
        return [p for step, _ in self.state()[0] for p in step.parts]

    # ---- drawing ------------------------------------------------------------------------
    def watch_replay(self) -> None:
        self._draw()

    def watch_position(self) -> None:
        self._draw()

    def watch_message(self) -> None:
        self._draw()

    def on_mount(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        replay = self.replay
        if replay is None or self.message:
            self.update(Text(self.message or HINT))
            return
        dim = self.get_component_rich_style("replay-view--dim", partial=True)
        merged_style = self.get_component_rich_style("replay-view--merged", partial=True)
        colours = [self.get_component_rich_style(f"replay-view--t{i}", partial=True) for i in range(_COLOURS)]
        shown, last = self.state()
        out = Text()
        out.append(f"{replay.name} · step {self.position}/{replay.total}\n", "bold")
        if last is None:
            out.append("the raw UTF-8 bytes: every token starts as one byte\n", dim)
        else:
            a, b = last.pair
            out.append(f"merge {label(a, True)!r} + {label(b, True)!r} → {label(a + b, True)!r}  "
                       f"({replay.rank_name} {last.rank:,})\n")
        k = 0
        for step, just in shown:
            for i, part in enumerate(step.parts):
                style = merged_style if just and i == step.merged_at else colours[k % _COLOURS]
                out.append(label(part, True), style)
                out.append(" ")
                k += 1
        n_parts = sum(len(step.parts) for step, _ in shown)
        out.append(f"\n{n_parts} tokens", dim)
        if self.position == replay.total:
            ids = list(replay.final_ids)
            same = ids == list(replay.encoder_ids)
            verdict = "= the encoder's ids ✓" if same else f"≠ the encoder's {list(replay.encoder_ids)[:12]}"
            out.append(f" · final ids {ids[:12]}{' …' if len(ids) > 12 else ''} {verdict}", dim)
        out.append("\n←/→ step · Home/End", dim)
        self.update(out)
