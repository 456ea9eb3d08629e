"""BPE replay: step merge by merge from a chunk's bytes to its final tokens."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from lab.bpe import Step, replay, split_chunks
from lab.tokentext import label

_COLOURS = 6


class ReplayView(Static, can_focus=True):
    """Shows one state of a BPE replay; arrow keys step through the merges of all chunks."""

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

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chunks: list[list[Step]] = []
        self.position = 0  # global step index across chunks
        self.total = 0
        self.source = ""
        self.encoding_name = ""
        self.final_ids: list[int] = []
        self.encoder_ids: list[int] = []
        self.message = "Select text (or put the cursor on a word) and press Ctrl+R to replay its merges."

    def load(self, text: str, encoding) -> None:
        """Prepare a replay of `text` with a tiktoken-style `encoding` (needs merge ranks)."""
        self.source = text
        self.encoding_name = encoding.label
        if not encoding.ranks:
            self.chunks, self.total, self.position = [], 0, 0
            self.message = (f"BPE replay needs the merge ranks of the encoding; {encoding.label} does not expose "
                            "them here. Switch to cl100k_base or o200k_base (Ctrl+N).")
            self.refresh_view()
            return
        self.chunks = [replay(chunk.encode("utf-8", "surrogatepass"), encoding.ranks)
                       for chunk in split_chunks(text, encoding.pat_str)]
        self.total = sum(len(c) - 1 for c in self.chunks)
        self.position = 0
        self.final_ids = [encoding.ranks[p] for steps in self.chunks for p in steps[-1].parts]
        self.encoder_ids = encoding.encode(text)
        self.message = ""
        self.refresh_view()

    def action_step(self, delta: int) -> None:
        self.position = max(0, min(self.total, self.position + delta))
        self.refresh_view()

    def action_jump(self, where: int) -> None:
        self.position = 0 if where == 0 else self.total
        self.refresh_view()

    def state(self) -> tuple[list[tuple[Step, bool]], Step | None]:
        """The state shown at `position`: per chunk (its current step, whether it made the last merge)."""
        remaining = self.position
        shown: list[tuple[Step, bool]] = []
        last = None
        for steps in self.chunks:
            take = min(len(steps) - 1, remaining)
            remaining -= take
            is_last = take > 0 and remaining == 0 and last is None
            if is_last:
                last = steps[take]
            shown.append((steps[take], is_last))
        return shown, last

    def current_parts(self) -> list[bytes]:
        return [p for step, _ in self.state()[0] for p in step.parts]

    def on_mount(self) -> None:
        self._ready = True
        self.call_after_refresh(self.refresh_view)

    def refresh_view(self) -> None:
        if not getattr(self, "_ready", False):  # drawn once mounted
            return
        if self.message:
            self.update(Text(self.message))
            return
        dim = self.get_component_rich_style("replay-view--dim", partial=True)
        merged_style = self.get_component_rich_style("replay-view--merged", partial=True)
        colours = [self.get_component_rich_style(f"replay-view--t{i}", partial=True) for i in range(_COLOURS)]
        shown, last = self.state()
        out = Text()
        out.append(f"{self.encoding_name} · step {self.position}/{self.total}\n", "bold")
        if last is None:
            out.append("the raw UTF-8 bytes: every token starts as one byte\n", dim)
        else:
            a, b = last.pair
            out.append(f"merge {label(a, True)!r} + {label(b, True)!r} → {label(a + b, True)!r}  (rank {last.rank})\n")
        k = 0
        for step, just in shown:
            for i, part in enumerate(step.parts):
                style = merged_style if just and i == step.merged_at else colours[k % _COLOURS]
                out.append(label(part, True), style)
                out.append(" ")
                k += 1
        n_parts = sum(len(step.parts) for step, _ in shown)
        out.append(f"\n{n_parts} tokens", dim)
        if self.position == self.total:
            same = self.final_ids == self.encoder_ids
            out.append(f" · final ids {self.final_ids[:12]}{' …' if len(self.final_ids) > 12 else ''} "
                       f"{'= the encoder' + chr(39) + 's ids ✓' if same else '≠ the encoder (unexpected)'}", dim)
        out.append("\n←/→ step · Home/End", dim)
        self.update(out)
