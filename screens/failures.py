"""Failures: jagged intelligence measured live, with its causes (tokens) and fixes (thinking
in tokens, tools, working memory).

Pick a card on the left; type your own word, letter or numbers; Ctrl+G samples the model N
times per variant (seeds seed, seed+1, ...) and scores every answer with the checker shown.
Answers are cached per model, prompt, seed and settings, so a rerun in a talk replays at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.content import Content
from textual.worker import Worker, WorkerState
from textual.widgets import ContentSwitcher, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from lab.errors import LabError
from lab.failures import CARD_BY_KEY, CARDS, AnswerCache, Experiment, make_prompt, word_tokens
from lab.runs import RunHandle
from lab.sampling import SamplingSettings
from lab.tokentext import one_line
from screens.commands import ScreenCommands
from screens.widgets import ModelStatus
from screens.widgets.card_info import CardInfo
from screens.widgets.key_bar import KeyBar
from screens.widgets.number_field import NumberField
from screens.widgets.result_view import ResultView

MAX_VARIANTS = 2


@dataclass
class AnswerUpdate(Message, bubble=False):
    """New states of answers, from the worker thread: (variant, index, lab.failures.Answer) each.
    Answers replayed from the cache travel together, so a rehearsed card is drawn once."""

    run: int
    updates: tuple[tuple[int, int, object], ...]


@dataclass
class RunDone(Message):
    run: int
    error: str = ""


class FailuresScreen(Screen):
    """Demo cards: question, code-computed truth, tokens vs letters, real answers, pass rates."""

    area_title = "Failures"
    COMMANDS = {ScreenCommands}

    BINDINGS = [
        Binding("ctrl+g", "run", "Run", id="failures.run", tooltip="Sample the model N times per variant"),
        Binding("ctrl+r", "reroll", "Re-roll", id="failures.reroll", tooltip="Run again with the next N seeds"),
        Binding("ctrl+l", "next_card", "Next card", id="failures.card", tooltip="Show the next demo card"),
        Binding("ctrl+n", "switch_model", "Model", id="failures.model", tooltip="Ask the other model (chat/base)"),
        Binding("escape", "cancel", "Cancel", id="failures.cancel", tooltip="Stop sampling"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.card = CARDS[0]
        self.role = "chat"
        self.runs = RunHandle()
        self.experiment: Experiment | None = None

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        with Horizontal(id="fl-main"):
            yield OptionList(*(Option(c.title, id=c.key) for c in CARDS), id="fl-cards")
            with Vertical(id="fl-card"):
                yield Static(id="fl-blurb")
                with ContentSwitcher(initial=f"fl-fields-{self.card.key}", id="fl-fields"):
                    for card in CARDS:
                        with Horizontal(id=f"fl-fields-{card.key}", classes="fl-field-row"):
                            for f in card.fields:
                                yield Label(f.label)
                                box = Input(f.default, id=f"fl-{card.key}-{f.key}", compact=True)
                                box.styles.width = f.width
                                yield box
                with Horizontal(id="fl-controls"):
                    for name, label, value, kind, lo, hi in (("samples", "samples", "10", int, 1, 100),
                                                             ("seed", "seed", "1", int, 0, 2**31),
                                                             ("temperature", "temp", "0.7", float, 0.0, 5.0)):
                        yield Label(label)
                        yield NumberField(value, kind=kind, lo=lo, hi=hi, id=f"fl-{name}", classes="fl-number")
                    yield Static(id="fl-model")
                yield CardInfo(id="fl-info")
                with Horizontal(id="fl-results"):
                    for k in range(MAX_VARIANTS):
                        yield ResultView(id=f"fl-result-{k}")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self.refresh_card())
        self.query_one("#fl-cards", OptionList).highlighted = 0
        self.show_card(self.card.key)

    def on_screen_suspend(self) -> None:
        self.action_cancel()

    # ---- cards -----------------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.card.key:
            self.show_card(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_run()

    def action_next_card(self) -> None:
        keys = [c.key for c in CARDS]
        self.show_card(keys[(keys.index(self.card.key) + 1) % len(keys)])

    def show_card(self, key: str, refresh: bool = True) -> None:
        """Show card `key`; `refresh=False` leaves rebuilding its experiment to the caller."""
        self.action_cancel()
        self.card = CARD_BY_KEY[key]
        self.query_one("#fl-fields", ContentSwitcher).current = f"fl-fields-{key}"
        cards = self.query_one("#fl-cards", OptionList)
        index = [c.key for c in CARDS].index(key)
        if cards.highlighted != index:
            with cards.prevent(OptionList.OptionHighlighted):  # not a second show_card from our own move
                cards.highlighted = index
        if refresh:
            self.refresh_card(reset=True)

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#fl-{self.card.key}-{f.key}", Input).value for f in self.card.fields}

    def refresh_card(self, reset: bool = False) -> None:
        """Rebuild the experiment from the typed values: question, truth and the model's tokens."""
        info = self.query_one("#fl-info", CardInfo)
        session = self.app.session
        backend = session.loaded(self.role)
        status = session.role_status(self.role)
        self.query_one("#fl-blurb", Static).update(
            Content.assemble((self.card.title, "bold"), "  ", (self.card.blurb_for(self.values()), "dim")))
        state = "ready" if backend else ("failed to load" if session.error(self.role) else "loading…")
        self.query_one("#fl-model", Static).update(
            Content.assemble(("model ", "dim"), f"{session.model_name(self.role)} ({self.role}) ", (state, "dim")))
        try:
            self.experiment = self.card.experiment(self.values())
        except LabError as exc:
            self.experiment = None
            info.show(None, error=str(exc))
            if reset:
                self._reset_results()
            return
        tokens, note = {}, ""
        if backend is not None and self.experiment.words:
            if backend.info.architecture == "remote":  # tokenizing is a request to the server: not here
                note = "(asking the server for the tokens…)"
                self._remote_tokens(backend, self.experiment, self.role)
            else:
                tokens, note = self._word_tokens(backend, self.experiment, self.role)
        elif session.error(self.role) is not None:
            note = status
        info.show(self.experiment, tokens, model_note=note)
        if reset:
            self._reset_results()

    @staticmethod
    def _word_tokens(backend, experiment: Experiment, role: str) -> tuple[dict, str]:
        """The tokens of the card's key words as they sit in the real prompt, or why not."""
        try:
            prompt = make_prompt(backend, experiment.variants[0], role)
            return {w: word_tokens(backend, prompt, w) for w in experiment.words}, ""
        except LabError as exc:
            return {}, str(exc)

    @work(thread=True, exclusive=True, exit_on_error=False, group="card-tokens")
    def _remote_tokens(self, backend, experiment: Experiment, role: str) -> tuple:
        return experiment, self._word_tokens(backend, experiment, role)

    @on(Worker.StateChanged)
    def _tokens_ready(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "card-tokens" and event.state == WorkerState.SUCCESS:
            experiment, (tokens, note) = event.worker.result
            if experiment == self.experiment:  # still the card shown
                self.query_one("#fl-info", CardInfo).show(experiment, tokens, model_note=note)

    def _reset_results(self) -> None:
        variants = self.experiment.variants if self.experiment else ()
        for k, view in enumerate(self.query(ResultView)):
            v = variants[k] if k < len(variants) else None
            view.display = v is not None or k == 0
            view.reset(v, 0, "Press Ctrl+G (or Enter in a box) to ask the model." if v else "")

    @on(Input.Changed, ".fl-field-row Input")
    def _card_value_changed(self) -> None:
        self.action_cancel()
        self.refresh_card(reset=True)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()

    # ---- settings ------------------------------------------------------------------------------
    def number(self, name: str):
        return self.query_one(f"#fl-{name}", NumberField).number

    def settings(self) -> SamplingSettings:
        return SamplingSettings(temperature=self.number("temperature"), top_p=0.95)

    def cache(self) -> AnswerCache:
        folder = getattr(self.app, "failures_dir", None)
        if folder is None:
            from lab.paths import cache_dir

            folder = cache_dir() / "failures"
        return AnswerCache(Path(folder))

    def action_switch_model(self) -> None:
        self.action_cancel()
        self.role = "base" if self.role == "chat" else "chat"
        self.notify(f"Asking the {self.role} model: {self.app.session.model_name(self.role)}", timeout=2)
        self.refresh_card(reset=True)

    # ---- running ----------------------------------------------------------------------------------
    def action_reroll(self) -> None:
        self.query_one("#fl-seed", Input).value = str(self.number("seed") + self.number("samples"))
        self.action_run()

    def action_run(self, use_cache: bool = True) -> None:
        self.action_cancel()
        self.refresh_card(reset=True)  # the card's views, answers cleared: the run fills them
        experiment = self.experiment
        if experiment is None:
            return
        backend = self.app.session.loaded(self.role)
        views = list(self.query(ResultView))
        if backend is None:
            views[0].reset(experiment.variants[0], 0, self.app.session.role_status(self.role).capitalize()
                           + " Try again in a moment." * (self.app.session.error(self.role) is None))
            return
        n, seed = self.number("samples"), self.number("seed")
        settings = self.settings()
        try:
            prompts = [make_prompt(backend, v, self.role) for v in experiment.variants]
        except LabError as exc:
            views[0].reset(experiment.variants[0], 0, str(exc))
            return
        run, cache = self.runs.start(), self.cache()  # a new run id: what the last run still sends is dropped
        if use_cache and self._replay(backend, experiment, prompts, settings, n, seed, cache, views):
            self.runs.stop()
            return
        for k, v in enumerate(experiment.variants):
            views[k].reset(v, n)
        self.run_worker(lambda: self._sample(backend, experiment, prompts, settings, n, seed, run.id, run.cancel,
                                             cache, use_cache),
                        name="failures", group="failures", thread=True, exclusive=True, exit_on_error=False)

    @staticmethod
    def _replay(backend, experiment, prompts, settings, n, seed, cache: AnswerCache, views) -> bool:
        """Show every answer of the run at once when the cache holds them all (a rehearsed card:
        a few small JSON files, read here so the card is drawn once); False, showing nothing,
        when one is missing (the worker then samples what is not cached)."""
        from lab.runs import model_identity

        model, found = model_identity(backend), []
        for variant, prompt in zip(experiment.variants, prompts):
            row = [cache.get(AnswerCache.key(model, prompt, settings, variant.max_tokens, seed + i, variant.tool))
                   for i in range(n)]
            if None in row:
                return False
            found.append(row)
        for view, variant, row in zip(views, experiment.variants, found):
            view.reset(variant, 0)
            view.answers = row
            view.redraw()
        return True

    def _sample(self, backend, experiment, prompts, settings, n, seed, run, cancel, cache, use_cache) -> None:
        """Worker thread: answer i of every variant, then answer i+1, so pass rates grow side by side."""
        from lab.failures import run_answers

        batch: list[tuple[int, int, object]] = []  # cached answers not posted yet

        def flush() -> None:
            if batch:
                self.post_message(AnswerUpdate(run, tuple(batch)))
                batch.clear()

        try:
            for i in range(n):
                for k, (variant, prompt) in enumerate(zip(experiment.variants, prompts)):
                    def emit(_, answer, k=k, i=i):
                        batch.append((k, i, answer))
                        if not answer.cached:  # sampled now: shown as it streams
                            flush()
                    run_answers(backend, variant, prompt, settings, [seed + i], emit, cancel, cache, use_cache)
        except Exception as exc:  # never a traceback on screen: say what failed
            flush()
            self.post_message(RunDone(run, f"{exc.__class__.__name__}: {exc}"))
            return
        flush()
        self.post_message(RunDone(run))

    def on_answer_update(self, message: AnswerUpdate) -> None:
        if not self.runs.is_current(message.run):
            return
        views = list(self.query(ResultView))
        changed = set()
        for variant, index, answer in message.updates:
            if not answer.cached and self.app.talk is not None:
                self.app.talk.mark_live()
            view = views[variant]
            if index < len(view.answers):
                view.answers[index] = answer
                changed.add(variant)
        for variant in sorted(changed):
            views[variant].redraw()  # once per message, however many answers it brought

    def on_run_done(self, message: RunDone) -> None:
        if not self.runs.is_current(message.run):
            return
        self.runs.stop()
        if message.error:
            view = self.query_one("#fl-result-0", ResultView)
            view.message = f"the run stopped: {message.error}"
            view.redraw()

    def action_cancel(self) -> None:
        self.runs.stop()

    def action_run_fresh(self) -> None:
        self.action_run(use_cache=False)

    def action_clear_cache(self) -> None:
        self.cache().clear()
        self.notify("Cached answers cleared.", timeout=3)

    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (see lab.talk.FIELDS["failures"]); "run" samples."""
        self.action_cancel()
        if "card" in fields:
            self.show_card(fields["card"], refresh=False)  # one refresh below, with the step's values
        if "role" in fields:
            self.role = fields["role"]
        with self.prevent(Input.Changed):  # one refresh below, not one per box
            for key, value in fields.get("values", {}).items():
                self.query_one(f"#fl-{self.card.key}-{key}", Input).value = str(value)
            for key in ("samples", "seed", "temperature"):
                if key in fields:
                    self.query_one(f"#fl-{key}", NumberField).value = str(fields[key])
        if fields.get("run"):
            self.action_run()  # rebuilds the card itself
        else:
            self.refresh_card(reset=True)

    # ---- saving, opening, exporting ------------------------------------------------------
    def state(self) -> dict:
        """The card, its values, the settings and every answer shown."""
        from dataclasses import asdict

        fields = {"card": self.card.key, "values": self.values(), "role": self.role,
                  **{key: self.number(key) for key in ("samples", "seed", "temperature")}}
        answers = [[asdict(a) if a is not None else None for a in view.answers] for view in self.query(ResultView)]
        return {"fields": fields, "answers": answers}

    def restore_state(self, state: dict) -> None:
        from lab.failures import Answer

        self.apply_step(dict(state["fields"], run=False))
        for view, rows in zip(self.query(ResultView), state.get("answers", [])):
            if view.variant is not None:
                view.answers = [Answer(**row) if row is not None else None for row in rows]
                view.message = ""
                view.redraw()

    @staticmethod
    def check_state(state: dict) -> None:
        from lab.failures import Answer

        fields = state["fields"]
        card = CARD_BY_KEY.get(fields["card"])
        if card is None or not isinstance(fields["values"], dict):
            raise ValueError("card")
        if not set(fields["values"]) <= {f.key for f in card.fields} or fields.get("role", "chat") not in ("chat", "base"):
            raise ValueError("card values or role")
        for key in ("samples", "seed", "temperature"):
            if key in fields:
                float(fields[key])
        for rows in state.get("answers", []):
            for row in rows:
                if row is not None:
                    Answer(**row)

    def export(self, kind: str) -> str:
        """The card's question, truth and every scored answer, as Markdown or JSON text."""
        from lab.failures import score

        e = self.experiment
        variants = []
        for view in self.query(ResultView):
            if view.variant is None:
                continue
            done = [a for a in view.answers if a is not None and a.done]
            passed, scored = view.shown_rate()
            variants.append({"variant": view.variant.name, "checker": view.variant.checker.description,
                             "passed": passed, "scored": scored,
                             "answers": [{"seed": a.seed, "text": a.text, "stop": a.stop,
                                          "passed": score(view.variant, a).passed, "got": score(view.variant, a).got}
                                         for a in done]})
        data = {"card": self.card.title, "model": self.app.session.model_name(self.role), "role": self.role,
                "question": e.question if e else "", "truth": e.truth if e else "", "computed": e.truth_how if e else "",
                "variants": variants}
        if kind == "json":
            import json

            return json.dumps(data, ensure_ascii=False, indent=1)
        lines = [f"# {data['card']}: {data['question']}", "", f"Truth: **{data['truth']}** (`{data['computed']}`)",
                 f"Model: {data['model']} ({data['role']})", ""]
        for v in variants:
            lines += [f"## {v['variant']}: pass {v['passed']}/{v['scored']}", "", f"Checker: {v['checker']}", ""]
            for a in v["answers"]:
                lines.append(f"- {'✓' if a['passed'] else '✗'} seed {a['seed']} (got {a['got']}): "
                             + one_line(a["text"], ""))
            lines.append("")
        return "\n".join(lines)

    def palette_commands(self):
        yield "failures: export answers as Markdown", lambda: self.app.export_screen("md"), "Save this card's answers"
        yield "failures: export answers as JSON", lambda: self.app.export_screen("json"), "Save this card's answers"
        yield "failures: run", self.action_run, "Sample the model N times per variant"
        yield "failures: re-roll", self.action_reroll, "Run again with the next N seeds"
        yield "failures: run without the cache", self.action_run_fresh, "Sample again even where answers are cached"
        yield "failures: clear cached answers", self.action_clear_cache, "Forget every cached answer"
        yield "failures: switch model", self.action_switch_model, "Ask the other model (chat/base)"
        for card in CARDS:
            yield f"failures: card {card.title.lower()}", (lambda k=card.key: self.show_card(k)), card.blurb
