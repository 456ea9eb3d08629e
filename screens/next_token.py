"""Next-token screen: the network's output distribution, explored token by token.

Type a prompt; the bars show the model's probability for its top-k next tokens and, beside
them, the probabilities after temperature / top-k / top-p (recomputed from cached logits,
no new forward pass). Focus the bars (Esc from the prompt) and press 1-9 to append a
candidate, s to sample one with the visible seed, u to undo, r to redo, a to auto-step.
Views (Ctrl+O): bars, surprisal (how expected each prompt token was), logit lens.
"""

from __future__ import annotations

import threading

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Label, Static, TextArea

from lab.errors import LabError
from lab.sampling import SamplingSettings
from lab.tokentext import label
from screens.forms import number_in
from screens.widgets import ModelStatus
from screens.widgets.key_bar import KeyBar
from screens.widgets.bars_view import BarsView
from screens.widgets.surprisal_view import SurprisalView

VIEWS = ("bars", "surprisal", "lens")
DEFAULT_PROMPT = "The capital of France is"


class NextTokenScreen(Screen):
    """Choose the next token yourself, sample it, and watch the distribution move."""

    area_title = "Next token"

    BINDINGS = [
        Binding("ctrl+n", "switch_model", "Model", id="next.model", tooltip="Use the other model (chat/base)"),
        Binding("ctrl+o", "next_view", "View", id="next.view", tooltip="Bars, surprisal, logit lens"),
        Binding("escape", "focus_bars", "Bars", id="next.focus", tooltip="Focus the bars (keys 1-9, s, u, r, a)"),
        Binding("ctrl+l", "lens_backend", "Lens model", id="next.lens", show=False,
                tooltip="Load the transformers backend of this model for the logit lens"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.role = "chat"
        self.explorer = None
        self.view = "bars"
        self.cancel = threading.Event()
        self.last_sampled: int | None = None
        self.status = "waiting for the model…"
        self.lens_backend = None

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield TextArea(DEFAULT_PROMPT, id="next-prompt", soft_wrap=True, show_line_numbers=False)
        with Horizontal(id="next-controls"):
            for name, value in (("temperature", "1.0"), ("top-k", "0"), ("top-p", "1.0"), ("seed", "0"),
                                ("k shown", "10"), ("auto N", "10")):
                yield Label(name)
                yield Input(value, id=f"next-{name.replace(' ', '-')}", classes="next-number", compact=True)
            yield Label("query")
            yield Input(placeholder="a token, e.g. ' London'", id="next-query", compact=True)
        yield Static(id="next-info")
        with ContentSwitcher(initial="bars", id="next-views"):
            yield BarsView(id="bars")
            yield SurprisalView(id="surprisal")
            yield Static(id="lens")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self._model_changed())
        self._model_changed()

    # ---- settings ---------------------------------------------------------------------
    def _number(self, name: str, kind, default):
        return number_in(self.query_one(f"#next-{name}", Input), kind, default)

    def settings(self) -> SamplingSettings:
        t = max(0.0, self._number("temperature", float, 1.0))
        k = max(0, self._number("top-k", int, 0))
        p = self._number("top-p", float, 1.0)
        p = p if 0.0 < p <= 1.0 else 1.0
        return SamplingSettings(temperature=t, top_k=k, top_p=p, seed=self._number("seed", int, 0))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "next-query":
            self.redraw()
        elif event.input.id.startswith("next-"):
            self.redraw()  # filters apply to the cached logits: no model call

    # ---- model ------------------------------------------------------------------------
    def _model_changed(self) -> None:
        backend = self.app.session.loaded(self.role)
        if backend is None:
            err = self.app.session.error(self.role)
            self.status = f"the {self.role} model failed to load: {err.message}" if err else f"the {self.role} model is loading…"
            self.redraw()
            return
        if self.explorer is None or self.explorer.backend is not backend:
            from lab.explorer import Explorer

            self.explorer = Explorer(backend)
            self.lens_backend = None
            self.run_prompt()

    def action_switch_model(self) -> None:
        """Chat <-> base; the prompt text stays."""
        self.role = "base" if self.role == "chat" else "chat"
        self.explorer = None
        self._model_changed()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.explorer is not None:
            self.run_prompt()

    def run_prompt(self) -> None:
        text = self.query_one("#next-prompt", TextArea).text
        self._run(lambda ex: ex.set_prompt(text), "reading the prompt…")

    def _run(self, job, status: str, show_status: bool = True) -> None:
        if self.explorer is None:
            return
        self.status = status
        if show_status:  # a single step is too quick to be worth a frame of its own
            self.refresh_info()
        self._worker(self.explorer, job)

    @work(thread=True, exclusive=True, group="next-token", exit_on_error=False)
    def _worker(self, explorer, job) -> None:
        try:
            job(explorer)
            message = ""
        except LabError as exc:
            message = str(exc)
        except Exception as exc:  # never let a model failure kill the screen
            message = f"{exc.__class__.__name__}: {exc}"
        self.app.call_from_thread(self._done, explorer, message)

    def _done(self, explorer, message: str) -> None:
        if explorer is not self.explorer:
            return
        self.status = message
        if message:
            self.notify(message, severity="warning", timeout=6)
        self.redraw()
        if self.view != "bars" and not message:
            self._refresh_view()
        if not message:
            self._look_ahead(explorer, explorer.ids, self.settings())

    @work(thread=True, exclusive=True, group="next-ahead", exit_on_error=False)
    def _look_ahead(self, explorer, ids: tuple[int, ...], settings: SamplingSettings) -> None:
        """Background: compute the states one key away (the next sample with the visible seed,
        then candidates 1-9) while the user reads the bars; stops as soon as the path moves."""
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
    def on_bars_view_command(self, event: BarsView.Command) -> None:
        ex = self.explorer
        if ex is None or not ex.history:
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
            self.last_sampled = token
            self.query_one("#next-seed", Input).value = str(seed + 1)  # next sample: a new, visible seed
            self._run(lambda e: e.append(token, f"sampled (seed {seed})"), "", show_status=False)
        elif event.name == "undo":
            ex.undo()
            self.redraw()
        elif event.name == "redo":
            ex.redo()
            self.redraw()
        elif event.name == "auto":
            self.auto_step(self._number("auto-N", int, 10), self.settings())

    def auto_step(self, n: int, settings: SamplingSettings) -> None:
        self.cancel.clear()
        cancel = self.cancel
        seed0 = settings.seed or 0

        def job(ex) -> None:
            for i in range(max(0, min(n, 200))):
                if cancel.is_set():
                    break
                token = ex.sample(settings, seed0 + i)
                ex.append(token, f"auto (seed {seed0 + i})")
                self.app.call_from_thread(self.redraw)

        self._run(job, f"auto-stepping {n} tokens…")

    def action_focus_bars(self) -> None:
        self.cancel.set()
        self.query_one("#bars", BarsView).focus()

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.query_one("#next-views", ContentSwitcher).current = self.view
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
        self.query_one(f"#{view}", Static).update("computing…")
        self._view_worker(self.explorer, job, view)

    @work(thread=True, exclusive=True, group="next-token", exit_on_error=False)
    def _view_worker(self, explorer, job, view: str) -> None:
        try:
            result, error = job(explorer), ""
        except LabError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # e.g. transformers missing: a message, not a crash
            result, error = None, f"{exc.__class__.__name__}: {exc}"
        self.app.call_from_thread(self._view_done, view, result, error)

    def _view_done(self, view: str, result, error: str) -> None:
        target = self.query_one(f"#{view}", Static)
        if error:
            target.update(error)
        elif view == "surprisal":
            target.show_rows(result)
            target.focus()
        else:
            target.update(self._lens_content(result))

    def _start_lens(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        backend = self.lens_backend or ex.backend
        if not backend.capabilities.supports_hidden_states and backend.capabilities.logprobs_top_n:  # a remote
            self.query_one("#lens", Static).update(" ".join(x for x in backend.capabilities.limits if "lens" in x))
            return
        if not backend.capabilities.supports_hidden_states:
            self.query_one("#lens", Static).update(
                f"{ex.backend.info.name} runs on {ex.backend.info.backend}, which does not expose hidden states, "
                "so there is no logit lens here.\nPress Ctrl+L to load the same model through transformers "
                "(the first time converts the GGUF: tens of seconds; then it is cached).")
            return
        ids = list(ex.ids)
        self._run_view(lambda _: backend.lens(ids, top_k=3), "lens")

    def action_lens_backend(self) -> None:
        ex = self.explorer
        if ex is None or self.lens_backend is not None:
            return
        from lab import catalogue

        name = self.app.session.model_name(self.role)
        self.query_one("#lens", Static).update(f"loading {name} through transformers…")

        def job(_):
            self.lens_backend = catalogue.load(name, backend="transformers", device=self.app.session.settings.device)
            return self.lens_backend.lens(list(ex.ids), top_k=3)

        self._view_worker(ex, job, "lens")

    def _lens_content(self, layers) -> Content:
        parts: list = [("Logit lens: the top token read from each layer's hidden state at the last position\n\n", "dim")]
        for layer in layers:
            best = layer.top[0]
            name = "embeddings" if layer.layer == 0 else f"layer {layer.layer:>2}"
            others = "  ".join(f"{label(t.piece, True)!r} {t.prob:.0%}" for t in layer.top[1:])
            parts.append(f"{name:>10}  ")
            parts.append((f"{label(best.piece, True)!r}", "bold"))
            parts.append(f" {best.prob:6.1%}   ")
            parts.append((others + "\n", "dim"))
        return Content.assemble(*parts)

    def palette_commands(self):
        """(name, callback, help) for the command palette while this screen is shown."""
        bars = lambda name: (lambda: self.on_bars_view_command(BarsView.Command(name)))  # noqa: E731
        yield "next: sample a token", bars("sample"), "Sample with the current settings and seed"
        yield "next: undo", bars("undo"), "Back to the previous state"
        yield "next: redo", bars("redo"), "Forward again along the path"
        yield "next: auto-step", bars("auto"), "Sample N tokens, updating the bars at each step"
        yield "next: switch model", self.action_switch_model, "Chat model <-> base model, keeping the prompt"
        yield "next: next view", self.action_next_view, "Bars, surprisal, logit lens"
        yield "next: logit lens through transformers", self.action_lens_backend, "Load the model in transformers"

    # ---- drawing ----------------------------------------------------------------------------
    def refresh_info(self) -> None:
        info = self.query_one("#next-info", Static)
        ex = self.explorer
        if ex is None or not ex.history:
            info.update(self.status, layout=False)
            return
        b = ex.backend
        path = b.detokenize(ex.ids[-40:])  # the end of the path is what changes
        tail = path[-70:].replace("\n", "↵")
        info.update(Content.assemble(
            (f"{b.info.name} ({self.role}, {b.info.backend})", "bold"),
            f" · {len(ex.ids)} tokens · state {ex.position + 1}/{len(ex.history)} ({ex.history[ex.position].how})"
            f" · model calls {ex.model_calls}" + (f" · {self.status}" if self.status else ""),
            "\n…" + tail if len(path) > 70 else "\n" + tail), layout=False)

    def _entropy(self, ids: tuple[int, ...], logits) -> float:
        """Entropy of the raw distribution, computed once per state."""
        if getattr(self, "_entropy_for", None) != ids:
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
            bars.update(self.status, layout=False)
            return
        ids = ex.ids
        logits = ex.cached(ids)
        if logits is None:
            return  # the worker computing them redraws when done
        k = max(1, min(self._number("k-shown", int, 10), 50))
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
                header += f"\nquery {label(ex.backend.token_bytes(qid), True)!r} (id {qid}): p={prob:.6f}, rank {rank:,}"
            except LabError as exc:
                header += f"\nquery: {exc}"
        bars.show_rows(rows, header, self._entropy(ids, logits))
