"""The Train BPE view: train a small byte-level BPE on the text box or a file, merge by merge.

Training runs in this widget's worker, which posts `TrainPane.Progress` messages (8 merges
each, so a fast run does not flood the UI) and returns the result; the UI thread writes the
log. Esc or the button cancels."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RichLog
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.tokentext import label, utf8

MIN_VOCAB, MAX_VOCAB = 257, 50_000


class TrainPane(Vertical):
    """Its own inputs (vocab size, file, split), button, progress bar, log and worker."""

    DEFAULT_CSS = """
    TrainPane { height: 1fr; }
    TrainPane .train-row { height: 3; }
    TrainPane .train-row Label { padding: 1 1 0 1; }
    TrainPane .train-row Checkbox { margin: 1 1 0 1; width: auto; }
    TrainPane .train-row Button { margin: 1 1 0 1; min-width: 10; }
    TrainPane #train-vocab { width: 12; }
    TrainPane #train-file { width: 1fr; }
    TrainPane #train-progress { height: 1; padding: 0 1; }
    TrainPane #train-log { height: 1fr; min-height: 3; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel training", id="train.cancel", show=False)]

    @dataclass
    class Progress(Message):
        """Merges made since the last message (a batch, so a fast run does not flood the UI)."""

        batch: list

    def __init__(self, text_source: Callable[[], str], **kwargs) -> None:
        """`text_source()`: the text to train on when no file is named (the screen's text box)."""
        super().__init__(**kwargs)
        self.text_source = text_source
        self._cancel: threading.Event | None = None
        self._pieces: dict[int, bytes] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="train-row"):
            yield Label("vocab size")
            yield Input("512", id="train-vocab", type="integer", max_length=6)
            yield Checkbox("split like GPT-4", False, id="train-regex", compact=True)
            yield Button("Train", id="train-start", variant="primary", compact=True)
        with Horizontal(classes="train-row"):
            yield Input(placeholder="file to train on (blank: the text box)", id="train-file")
        yield ProgressBar(total=1, id="train-progress", show_eta=False)  # 0% until a run: no idle animation
        yield RichLog(id="train-log", max_lines=5000, wrap=False)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    @on(Button.Pressed, "#train-start")
    def _pressed(self) -> None:
        if self.running:
            self.action_cancel()
        else:
            self.start()

    def start(self) -> None:
        try:
            vocab = int(self.query_one("#train-vocab", Input).value or "0")
        except ValueError:
            vocab = 0
        if not MIN_VOCAB <= vocab <= MAX_VOCAB:
            self.notify(f"Vocab size must be between {MIN_VOCAB} and {MAX_VOCAB:,} (256 bytes + merges).",
                        severity="error")
            return
        path = self.query_one("#train-file", Input).value.strip()
        if path:
            try:
                data = Path(path).expanduser().read_bytes()
            except OSError as exc:
                self.notify(f"Cannot read {path}: {exc.strerror or exc}", severity="error")
                return
        else:
            data = utf8(self.text_source())
        if not data:
            self.notify("There is no text to train on.", severity="error")
            return
        regex = self.query_one("#train-regex", Checkbox).value
        log = self.query_one("#train-log", RichLog)
        log.clear()
        log.write(f"training a {vocab:,}-token BPE on {len(data):,} bytes"
                  f"{' split like GPT-4' if regex else ' (raw bytes, no split)'}…")
        self.query_one("#train-progress", ProgressBar).update(total=vocab - 256, progress=0)
        self.query_one("#train-start", Button).label = "Cancel"
        self._cancel = threading.Event()
        self._pieces = {}
        self._train(data, vocab, regex, self._cancel)

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    @work(thread=True, exclusive=True, group="train-bpe", exit_on_error=False)
    def _train(self, data: bytes, vocab: int, regex: bool, cancel: threading.Event):
        """Returns (merges, pieces), or the reason it stopped (a str)."""
        from lab.bpe import train_bpe
        from lab.tokenizers import ENCODINGS

        pending: list = []

        def progress(p) -> None:
            pending.append(p)
            if len(pending) >= 8 or p.done == p.total:
                self.post_message(self.Progress(pending[:]))
                pending.clear()

        try:
            result = train_bpe(data, vocab, ENCODINGS["cl100k_base"].pat_str if regex else None, progress, cancel)
        except LabError as exc:
            return exc.message
        if pending:
            self.post_message(self.Progress(pending[:]))
        return result

    @on(Progress)
    def _progress(self, event: Progress) -> None:
        log = self.query_one("#train-log", RichLog)
        for p in event.batch:
            m = p.last
            self._pieces[m.new_id] = m.token
            a, b = (label(self._pieces[i] if i >= 256 else bytes([i])) for i in m.pair)
            log.write(f"{m.pair[0]} {m.pair[1]} → {m.new_id} ({a!r}, {b!r})  ×{m.count:,}")
        self.query_one("#train-progress", ProgressBar).update(progress=event.batch[-1].done)

    @on(Worker.StateChanged)
    def _finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "train-bpe" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        self._cancel = None
        self.query_one("#train-start", Button).label = "Train"
        log = self.query_one("#train-log", RichLog)
        result = event.worker.result if event.state == WorkerState.SUCCESS else f"failed: {event.worker.error}"
        if isinstance(result, str):
            log.write(f"stopped: {result}")
            return
        merges, _pieces = result
        bar = self.query_one("#train-progress", ProgressBar)
        asked = bar.total or 0
        bar.update(progress=asked)
        early = " (stopped early: no pair occurs twice any more)" if len(merges) < asked else ""
        log.write(f"done: {len(merges)} merges, vocabulary {256 + len(merges):,}{early}")
