"""Next-token screen: the network's output distribution, explored token by token.

Type a prompt; the bars show the model's probability for its top-k next tokens and, beside
them, the probabilities after temperature / top-k / top-p (recomputed from cached logits,
no new forward pass). Focus the bars (Esc from the prompt) and press 1-9 to append a
candidate, s to sample one with the visible seed, u to undo, r to redo, a to auto-step.
Views (Ctrl+O): bars, surprisal (how expected each prompt token was), logit lens; each sits in
a scrolling pane. Model calls run in thread workers that post small messages (`Stepped`,
`AutoTick`, `ViewReady`); the UI thread applies them. The lens model belongs to the session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Label, Static, TextArea

from lab.errors import LabError
from lab.sampling import SamplingSettings
from screens.commands import ScreenCommands
from screens.widgets import ModelStatus
from screens.widgets.key_bar import KeyBar
from screens.widgets.bars_view import BarsView, one_line
from screens.widgets.lens_view import LensView
from screens.widgets.number_field import NumberField
from screens.widgets.surprisal_view import SurprisalView

VIEWS = ("bars", "surprisal", "lens")
DEFAULT_PROMPT = "The capital of France is"
NO_LENS = ("{name} runs on {backend}, which does not expose hidden states, so there is no logit lens here.\n"
           "Press Ctrl+L to load the same model through transformers (the first time converts the GGUF: "
           "tens of seconds; then it is cached).")


class NextTokenScreen(Screen):
    """Choose the next token yourself, sample it, and watch the distribution move.

    Layout follows the terminal: below 132 columns the controls take two rows; below 32 lines
    the prompt box is shorter. The bars, surprisal and lens views each scroll."""

    area_title = "Next token"
    COMMANDS = {ScreenCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (132, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    BINDINGS = [
        Binding("ctrl+n", "switch_model", "Model", id="next.model", tooltip="Use the other model (chat/base)"),
        Binding("ctrl+o", "next_view", "View", id="next.view", tooltip="Bars, surprisal, logit lens"),
        Binding("escape", "focus_view", "Bars", id="next.focus",
                tooltip="Focus the view (bars: keys 1-9, s, u, r, a; every view: arrows scroll)"),
        Binding("ctrl+l", "lens_backend", "Lens model", id="next.lens", show=False,
                tooltip="Load the transformers backend of this model for the logit lens"),
    ]

    view: reactive[str] = reactive("bars", init=False)
    """The view shown below the controls: bars, surprisal or lens."""
    role: reactive[str] = reactive("chat", init=False)
    """Which of the session's models is explored: chat or base."""
    status: reactive[str] = reactive("waiting for the model…", init=False)
    """What the screen is doing or what went wrong, shown in the info line."""

    @dataclass
    class Stepped(Message):
        """A worker finished job number `job` on `explorer` (prompt or step); `error` says why it failed."""

        explorer: object
        job: int
        error: str = ""

    @dataclass
    class AutoTick(Message):
        """Auto-stepping appended a token to `explorer`: redraw (ticks merge in the queue)."""

        explorer: object

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, NextTokenScreen.AutoTick)

    @dataclass
    class ViewReady(Message):
        """The surprisal or lens view's `result` for `explorer`'s path (or the `error` computing it)."""

        view: str
        explorer: object
        result: object = None
        error: str = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.explorer = None
        self._saved_path = None  # a saved path to put back once the model's explorer exists
        self.cancel = threading.Event()
        self._entropy_for: tuple[int, ...] | None = None
        self._entropy_value = 0.0
        self._prompt_for: tuple = (None, "")  # (explorer, text) of the prompt last sent to the model
        self._job = self._job_done = 0  # the last prompt/step job started, and the last of those finished
        self._pending: list[BarsView.Command] = []  # keys pressed while a job ran: applied in order after it
        self._live_seen: tuple = (None, 0)  # (explorer, its live_calls) at the last finished job

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield TextArea(DEFAULT_PROMPT, id="next-prompt", soft_wrap=True, show_line_numbers=False)
        with Horizontal(id="next-controls"):
            with Horizontal(id="next-sampling", classes="next-row"):
                for name, value, kind, lo, hi in (("temperature", "1.0", float, 0.0, 5.0), ("top-k", "0", int, 0, None),
                                                  ("top-p", "1.0", float, 0.01, 1.0), ("seed", "0", int, 0, 2**31)):
                    yield Label(name)
                    yield NumberField(value, kind=kind, lo=lo, hi=hi, id=f"next-{name}", classes="next-number")
            with Horizontal(id="next-shown", classes="next-row"):
                for name, value, lo, hi in (("k shown", "10", 1, 50), ("auto N", "10", 1, 200)):
                    yield Label(name)
                    yield NumberField(value, kind=int, lo=lo, hi=hi, id=f"next-{name.replace(' ', '-')}",
                                      classes="next-number")
                yield Label("query")
                yield Input(placeholder="a token, e.g. ' London'", id="next-query", compact=True)
        yield Static(id="next-info")
        with ContentSwitcher(initial="bars-pane", id="next-views"):
            for view in (BarsView(id="bars"), SurprisalView(id="surprisal"), LensView(id="lens")):
                pane = VerticalScroll(id=f"{view.id}-pane", classes="next-pane")
                pane.can_focus = False  # the view inside takes focus; its keys scroll the pane
                with pane:
                    yield view
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self._model_changed())
        self._model_changed()

    # ---- settings ---------------------------------------------------------------------
    def number(self, name: str):
        """The value in use in box `name`: the typed one when valid, else the last good one (shown beside it)."""
        return self.query_one(f"#next-{name}", NumberField).number

    def settings(self) -> SamplingSettings:
        return SamplingSettings(temperature=self.number("temperature"), top_k=self.number("top-k"),
                                top_p=self.number("top-p"), seed=self.number("seed"))

    @on(Input.Changed, ".next-number")
    @on(Input.Changed, "#next-query")
    def _settings_changed(self) -> None:
        self.redraw()  # filters apply to the cached logits: no model call

    # ---- model ------------------------------------------------------------------------
    def _model_changed(self) -> None:
        backend = self.app.session.loaded(self.role)
        if backend is None:
            self.status = self.app.session.role_status(self.role)
            self.redraw()
            return
        if self.explorer is None or self.explorer.backend is not backend:
            from lab.explorer import Explorer

            self.explorer = Explorer(backend, self._logits_store(backend), record=lambda: self.app.talk is not None)
            self._pending.clear()
            if self._saved_path is not None:
                self._restore_path()
            else:
                self.run_prompt()

    def _logits_store(self, backend):
        """The rehearsal cache of this model's states (beside the sample cache), written in talk
        mode; none for a remote server (its numbers are its own, and only the top few are known)."""
        if backend.capabilities.logprobs_top_n or getattr(self.app, "samples_dir", None) is None:
            return None
        from pathlib import Path

        from lab.explorer import LogitsStore
        from lab.runs import model_identity

        return LogitsStore(Path(self.app.samples_dir) / "logits", model_identity(backend), backend.info.vocab_size)

    def action_switch_model(self) -> None:
        """Chat <-> base; the prompt text stays."""
        self.role = "base" if self.role == "chat" else "chat"

    def watch_role(self) -> None:
        self.explorer = None
        self._model_changed()

    @on(TextArea.Changed, "#next-prompt")
    def _prompt_changed(self) -> None:
        text = self.query_one("#next-prompt", TextArea).text
        if self.explorer is not None and self._prompt_for != (self.explorer, text):
            self.run_prompt()

    def run_prompt(self) -> None:
        text = self.query_one("#next-prompt", TextArea).text
        self._prompt_for = (self.explorer, text)  # a Changed event for the same text runs nothing again
        self._run(lambda ex: ex.set_prompt(text), "reading the prompt…")

    def _run(self, job, status: str, show_status: bool = True) -> None:
        if self.explorer is None:
            return
        if show_status:
            self.status = status
        else:  # a single step is too quick to be worth a frame of its own
            self.set_reactive(NextTokenScreen.status, status)
        self._job += 1
        self._worker(self.explorer, job, self._job)

    @work(thread=True, exclusive=True, group="next-token", exit_on_error=False)
    def _worker(self, explorer, job, number: int) -> None:
        try:
            job(explorer)
            message = ""
        except LabError as exc:
            message = str(exc)
        except Exception as exc:  # never let a model failure kill the screen
            message = f"{exc.__class__.__name__}: {exc}"
        self.post_message(self.Stepped(explorer, number, message))

    @on(Stepped)
    def _stepped(self, event: Stepped) -> None:
        explorer, message = event.explorer, event.error
        if event.job == self._job:
            self._job_done = event.job  # the latest job is done: keys apply at once again
        if explorer is not self.explorer:
            return
        self.set_reactive(NextTokenScreen.status, message)  # redraw() below shows it
        seen = self._live_seen[1] if self._live_seen[0] is explorer else 0
        self._live_seen = (explorer, explorer.live_calls)
        if explorer.live_calls > seen and self.app.talk is not None:
            self.app.talk.mark_live()  # the step's state was not in the rehearsal cache: computed now
        if message:
            self._pending.clear()
            self.notify(message, severity="warning", timeout=6)
        self.redraw()
        if self.view != "bars" and not message:
            self._refresh_view()
        while self._pending and self._job_done == self._job:  # a step starts a job: the rest waits for it
            self._command(explorer, self._pending.pop(0))
        if not message and self._job_done == self._job:
            self._look_ahead(explorer, explorer.ids, self.settings())

    @on(AutoTick)
    def _auto_tick(self, event: AutoTick) -> None:
        if event.explorer is self.explorer:
            self.redraw()

    @work(thread=True, exclusive=False, group="next-ahead", exit_on_error=False)
    def _look_ahead(self, explorer, ids: tuple[int, ...], settings: SamplingSettings) -> None:
        """Background: compute the states one key away (the next sample with the visible seed,
        then candidates 1-9) while the user reads the bars; stops as soon as the path moves.

        Not exclusive: cancelling a thread does not stop it, and this one ends itself (its
        `wanted()` check) once the path moves, so a new look-ahead need not cancel the last."""
        from lab.sampling import make_rng, sample

        logits = explorer.cached(ids)
        if logits is None or explorer.backend.capabilities.logprobs_top_n:
            return  # a remote server: ten requests a step would cost money and hit rate limits
        top = [row.id for row in explorer.filtered(SamplingSettings(), 9, logits)]
        try:
            drawn = sample(logits, settings, make_rng(settings.seed or 0))
            explorer.prefetch(ids, [drawn] + [t for t in top if t != drawn],
                              lambda: explorer is self.explorer and explorer.ids == ids and self.is_attached)
        except Exception:  # a look-ahead that fails costs nothing: the step computes its own state
            return

    # ---- steps --------------------------------------------------------------------------
    @on(BarsView.Command)
    def _bars_command(self, event: BarsView.Command) -> None:
        """Apply a key now, or after the job in flight (every key counts, in the order pressed)."""
        if self.explorer is None:
            return
        if self._pending or self._job_done != self._job:
            self._pending.append(event)
            return
        self._command(self.explorer, event)

    def _command(self, ex, event: BarsView.Command) -> None:
        if not ex.history:
            return
        logits = ex.cached(ex.ids)
        if logits is None and event.name in ("pick", "sample"):
            return  # still computing this state
        if event.name == "pick":
            top = ex.filtered(SamplingSettings(), 9, logits)
            if event.rank > len(top):
                return
            token = top[event.rank - 1].id
            self._run(lambda e: e.append(token, f"picked #{event.rank}"), "", show_status=False)
        elif event.name == "sample":
            settings = self.settings()
            seed = settings.seed or 0
            from lab.sampling import make_rng, sample

            token = sample(logits, settings, make_rng(seed))
            self.query_one("#next-seed", Input).value = str(seed + 1)  # next sample: a new, visible seed
            self._run(lambda e: e.append(token, f"sampled (seed {seed})"), "", show_status=False)
        elif event.name == "undo":
            ex.undo()
            self.redraw()
        elif event.name == "redo":
            ex.redo()
            self.redraw()
        elif event.name == "auto":
            self.auto_step(self.number("auto-N"), self.settings())

    def auto_step(self, n: int, settings: SamplingSettings) -> None:
        self.cancel.clear()
        cancel = self.cancel
        seed0 = settings.seed or 0

        def job(ex) -> None:
            for i in range(n):
                if cancel.is_set():
                    break
                token = ex.sample(settings, seed0 + i)
                ex.append(token, f"auto (seed {seed0 + i})")
                self.post_message(self.AutoTick(ex))

        self._run(job, f"auto-stepping {n} tokens…")

    def action_focus_view(self) -> None:
        self.cancel.set()  # stops an auto-step, and drops the keys waiting for it
        self._pending.clear()
        self.query_one(f"#{self.view}").focus()

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]

    def watch_view(self, view: str) -> None:
        self.query_one("#next-views", ContentSwitcher).current = f"{view}-pane"
        self._refresh_view()
        self.redraw()

    def _refresh_view(self) -> None:
        """Recompute the surprisal or lens view for the current path."""
        if self.view == "surprisal" and self.explorer is not None and self.explorer.history:
            ids = list(self.explorer.ids)
            self._run_view(lambda ex: ex.backend.surprisal(ids), "surprisal")
        elif self.view == "lens":
            self._start_lens()

    # ---- surprisal and lens ---------------------------------------------------------------
    def _run_view(self, job, view: str) -> None:
        if self.explorer is None:
            return
        if view == "lens":
            self.query_one(LensView).note = "computing…"
        else:
            self.query_one(SurprisalView).update("computing…")
        self._view_worker(self.explorer, job, view)

    @work(thread=True, exclusive=True, group="next-view", exit_on_error=False)
    def _view_worker(self, explorer, job, view: str) -> None:
        try:
            result, error = job(explorer), ""
        except LabError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # e.g. transformers missing: a message, not a crash
            result, error = None, f"{exc.__class__.__name__}: {exc}"
        self.post_message(self.ViewReady(view, explorer, result, error))

    @on(ViewReady)
    def _view_ready(self, event: ViewReady) -> None:
        if event.explorer is not self.explorer:
            return  # computed for a model no longer shown
        if event.view == "lens":
            lens = self.query_one(LensView)
            if event.error:
                lens.note = event.error
            else:
                lens.show_layers(event.result)
                lens.focus()
        else:
            surprisal = self.query_one(SurprisalView)
            if event.error:
                surprisal.update(event.error)
            else:
                surprisal.show_rows(event.result)
                surprisal.focus()

    def _start_lens(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        caps = ex.backend.capabilities
        if not caps.supports_hidden_states and caps.logprobs_top_n:  # a remote server: no hidden states over HTTP
            self.query_one(LensView).note = " ".join(x for x in caps.limits if "lens" in x)
            return
        lens = self.app.session.lens_loaded(self.role)
        if lens is None:
            self.query_one(LensView).note = NO_LENS.format(name=ex.backend.info.name, backend=ex.backend.info.backend)
            return
        ids = list(ex.ids)
        self._run_view(lambda _: lens.lens(ids, top_k=3), "lens")

    def action_lens_backend(self) -> None:
        """Load this model through transformers (in a worker; the session keeps it) and show the lens."""
        ex = self.explorer
        if ex is None:
            return
        self.view = "lens"
        session, role, ids = self.app.session, self.role, list(ex.ids)
        if session.lens_loaded(role) is not None:
            return  # showing the lens view computed it
        self.query_one(LensView).note = f"loading {session.model_name(role)} through transformers…"
        self._view_worker(ex, lambda _: session.load_lens(role).lens(ids, top_k=3), "lens")

    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (see lab.talk.FIELDS["next"]): prompt, role, sampling boxes, view."""
        if "prompt" in fields:  # first, so a model switch below reads the new prompt
            self.query_one("#next-prompt", TextArea).load_text(fields["prompt"])
            if "role" not in fields or fields["role"] == self.role:
                self.run_prompt()  # now, so keys pressed next wait for this prompt's state
        for key, box in (("temperature", "temperature"), ("top_k", "top-k"), ("top_p", "top-p"), ("seed", "seed")):
            if key in fields:
                self.query_one(f"#next-{box}", NumberField).value = str(fields[key])
        if "role" in fields:
            self.role = fields["role"]
        if "view" in fields:
            self.view = fields["view"]
        self.query_one("#bars").focus()  # the single keys (1-9, s, u, r, a) answer there

    # ---- saving and opening ---------------------------------------------------------------
    def state(self) -> dict:
        """The prompt, model role, boxes, view, and the path (every state, and the one shown)."""
        fields = {"prompt": self.query_one("#next-prompt", TextArea).text, "role": self.role, "view": self.view,
                  **{key: self.number(box) for key, box in (("temperature", "temperature"), ("top_k", "top-k"),
                                                            ("top_p", "top-p"), ("seed", "seed"))}}
        path, position = [], 0
        if self.explorer is not None:
            with self.explorer._path_lock:
                path = [[list(step.ids), step.how] for step in self.explorer.history]
                position = self.explorer.position
        return {"fields": fields, "path": path, "position": position}

    def restore_state(self, state: dict) -> None:
        fields = dict(state["fields"])
        role = fields.pop("role", self.role)
        if state.get("path"):
            self._saved_path = ([(tuple(ids), how) for ids, how in state["path"]], int(state.get("position", 0)))
        self.apply_step(fields)
        if role != self.role:
            self.role = role  # the new model's explorer restores the path when it is ready
        elif self.explorer is not None and self._saved_path is not None:
            self._restore_path()

    def _restore_path(self) -> None:
        steps, position = self._saved_path
        self._saved_path = None
        self._prompt_for = (self.explorer, self.query_one("#next-prompt", TextArea).text)
        self._run(lambda ex: ex.restore(steps, position), "restoring the saved path…")

    @staticmethod
    def check_state(state: dict) -> None:
        fields = state["fields"]
        if not isinstance(fields["prompt"], str) or fields.get("role", "chat") not in ("chat", "base"):
            raise ValueError("prompt or role")
        if fields.get("view", "bars") not in ("bars", "surprisal", "lens"):
            raise ValueError("view")
        for ids, how in state.get("path", []):
            [int(i) for i in ids], str(how)

    def palette_commands(self):
        """(name, callback, help) for the command palette while this screen is shown."""
        bars = lambda name: (lambda: self._bars_command(BarsView.Command(name)))  # noqa: E731
        yield "next: sample a token", bars("sample"), "Sample with the current settings and seed"
        yield "next: undo", bars("undo"), "Back to the previous state"
        yield "next: redo", bars("redo"), "Forward again along the path"
        yield "next: auto-step", bars("auto"), "Sample N tokens, updating the bars at each step"
        yield "next: switch model", self.action_switch_model, "Chat model <-> base model, keeping the prompt"
        yield "next: next view", self.action_next_view, "Bars, surprisal, logit lens"
        yield "next: logit lens through transformers", self.action_lens_backend, "Load the model in transformers"

    # ---- drawing ----------------------------------------------------------------------------
    def watch_status(self) -> None:
        self.refresh_info()

    def refresh_info(self) -> None:
        """Two lines: the model and the path's state, then the end of the path's text (one line each)."""
        info = self.query_one("#next-info", Static)
        ex = self.explorer
        step, position, count = ex.state() if ex is not None else (None, -1, 0)
        if step is None:
            info.update(self.status, layout=False)
            return
        b = ex.backend
        width = max(20, info.content_region.width - 1)
        path = b.detokenize(step.ids[-max(40, width // 2):])  # the end of the path is what changes
        tail = path[-width:].replace("\n", "↵")
        info.update(Content.assemble(
            (f"{b.info.name} ({self.role}, {b.info.backend})", "bold"),
            f" · {len(step.ids)} tokens · state {position + 1}/{count} ({step.how})"
            + (f" · {self.status}" if self.status else "") + f" · model calls {ex.model_calls}",
            "\n…" + tail[1:] if len(path) > width else "\n" + tail), layout=False)

    def _entropy(self, ids: tuple[int, ...], logits) -> float:
        """Entropy of the raw distribution, computed once per state."""
        if self._entropy_for != ids:
            self._entropy_for, self._entropy_value = ids, self.explorer.entropy(logits)
        return self._entropy_value

    def redraw(self) -> None:
        """Draw the bars from cached logits only (a worker may be stepping meanwhile)."""
        if not self.is_mounted:
            return
        self.refresh_info()
        ex = self.explorer
        bars = self.query_one("#bars", BarsView)
        if ex is None or not ex.history:
            bars.show_message(self.status)
            return
        ids = ex.ids
        logits = ex.cached(ids)
        if logits is None:
            return  # the worker computing them redraws when done
        k = self.number("k-shown")
        settings = self.settings()
        rows = ex.filtered(settings, k, logits)
        header = (f"after {len(ids)} tokens · temperature {settings.temperature:g}, top-k {settings.top_k or 'off'}, "
                  f"top-p {settings.top_p:g} · next sample seed {settings.seed}")
        if ex.backend.capabilities.logprobs_top_n:  # a remote: only the top N are known
            header += "\n" + ex.backend.capabilities.limits[0]
        query = self.query_one("#next-query", Input).value
        if query:
            try:
                qid = ex.token_for_text(query)
                prob, rank = ex.backend.distribution_from_logits(logits, len(ids), 1, [qid]).queried[0][1:]
                header += f"\nquery {one_line(ex.backend.token_bytes(qid))!r} (id {qid}): p={prob:.6f}, rank {rank:,}"
            except LabError as exc:
                header += f"\nquery: {exc}"
        bars.show_rows(rows, header, self._entropy(ids, logits))
