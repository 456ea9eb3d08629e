"""Base vs chat: a document simulator beside an assistant, on one prompt.

Left: the base model continues the raw text (or a few-shot fake conversation). Right: the
chat model answers the prompt as a user message through its own chat template. Both stream
at once, N samples each with visible seeds; every token is coloured by its probability.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Checkbox, Input, Label

from lab.basechat import PRESETS, base_request, chat_request
from lab.errors import LabError
from lab.sampling import SamplingSettings
from screens.forms import number_in
from screens.widgets import ModelStatus
from screens.widgets.key_bar import KeyBar
from screens.widgets.pane_view import PaneView, Sample

ROLES = ("base", "chat")


class PaneUpdate(Message):
    """New tokens (or the end) of one sample of one pane, from a worker thread."""

    def __init__(self, role: str, run: int, index: int, seed: int, events: list, stop: str = "",
                 seconds: float = 0.0, error: str = "") -> None:
        super().__init__()
        self.role, self.run, self.index, self.seed = role, run, index, seed
        self.events, self.stop, self.seconds, self.error = events, stop, seconds, error


class BaseChatScreen(Screen):
    """Two models, one prompt: see what pretraining and post-training each give."""

    area_title = "Base vs chat"

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", id="basechat.generate", tooltip="Generate in both panes"),
        Binding("ctrl+r", "reroll", "Re-roll", id="basechat.reroll", tooltip="Generate again with new seeds"),
        Binding("ctrl+t", "toggle_template", "Template", id="basechat.template",
                tooltip="Show the exact text and tokens each model receives"),
        Binding("ctrl+l", "next_preset", "Preset", id="basechat.preset", tooltip="Next talk preset"),
        Binding("escape", "cancel", "Cancel", id="basechat.cancel", tooltip="Stop both streams"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_id = 0
        self.cancel = threading.Event()
        self.preset_index = -1
        self.showing_template = False

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Input(PRESETS["who are you?"], placeholder="a prompt for both models (Enter generates)",
                    id="bc-prompt")
        with Horizontal(id="bc-controls"):
            for name, value in (("temperature", "0.8"), ("top-p", "0.95"), ("max tokens", "48"),
                                ("samples", "1"), ("seed", "1")):
                yield Label(name)
                yield Input(value, id=f"bc-{name.replace(' ', '-')}", classes="bc-number", compact=True)
            yield Checkbox("few-shot (base)", False, id="bc-fewshot", compact=True)
            yield Checkbox("system prompt", True, id="bc-system-on", compact=True)
        yield Input("You are a helpful assistant.", placeholder="system prompt", id="bc-system", compact=True)
        with Horizontal(id="bc-panes"):
            yield PaneView("base", id="pane-base")
            yield PaneView("chat", id="pane-chat")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self.refresh_titles())
        self.refresh_titles()

    def on_screen_suspend(self) -> None:
        self.action_cancel()  # leaving the screen stops the streams

    # ---- settings --------------------------------------------------------------------
    def _number(self, name: str, kind, default, lo, hi):
        return number_in(self.query_one(f"#bc-{name}", Input), kind, default, lo, hi)

    def settings(self) -> SamplingSettings:
        return SamplingSettings(temperature=self._number("temperature", float, 0.8, 0.0, 5.0),
                                top_p=self._number("top-p", float, 0.95, 0.01, 1.0),
                                seed=self._number("seed", int, 1, 0, 2**31))

    def system_prompt(self) -> str | None:
        if not self.query_one("#bc-system-on", Checkbox).value:
            return None
        return self.query_one("#bc-system", Input).value or None

    def pane(self, role: str) -> PaneView:
        return self.query_one(f"#pane-{role}", PaneView)

    def refresh_titles(self) -> None:
        session = self.app.session
        for role in ROLES:
            pane = self.pane(role)
            backend = session.loaded(role)
            err = session.error(role)
            kind = "base model: continues the text" if role == "base" else "chat model: answers as an assistant"
            pane.title = f"{session.model_name(role)} · {kind}"
            if backend is None:
                pane.message = f"the {role} model failed to load: {err.message}" if err else "loading…"
            elif pane.message.startswith(("loading", "the ")) and "failed" not in pane.message:
                pane.message = ""
            if backend is not None and not pane.samples and not pane.message:
                pane.message = "Press Enter in the prompt (or Ctrl+G) to generate."
            pane.redraw()

    # ---- requests ----------------------------------------------------------------------
    def request(self, role: str):
        backend = self.app.session.loaded(role)
        if backend is None:
            return None, None
        prompt = self.query_one("#bc-prompt", Input).value
        if role == "base":
            return backend, base_request(backend, prompt, self.query_one("#bc-fewshot", Checkbox).value)
        return backend, chat_request(backend, prompt, self.system_prompt())

    def action_toggle_template(self) -> None:
        self.showing_template = not self.showing_template
        self.refresh_template()

    def refresh_template(self) -> None:
        for role in ROLES:
            pane = self.pane(role)
            if not self.showing_template:
                pane.template = None
            else:
                try:
                    backend, req = self.request(role)
                except LabError as exc:
                    pane.template, pane.message = None, str(exc)
                    pane.redraw()
                    continue
                if req is not None:
                    pane.template = req.rendered if req.rendered is not None else req.text
            pane.redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.showing_template and event.input.id in ("bc-prompt", "bc-system"):
            self.refresh_template()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if self.showing_template:
            self.refresh_template()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_generate()

    def action_next_preset(self) -> None:
        names = list(PRESETS)
        self.load_preset(names[(self.preset_index + 1) % len(names)])

    def load_preset(self, name: str) -> None:
        self.preset_index = list(PRESETS).index(name)
        self.query_one("#bc-prompt", Input).value = PRESETS[name]
        self.query_one("#bc-fewshot", Checkbox).value = name == "few-shot assistant"
        self.notify(f"Preset: {name}", timeout=2)

    # ---- generation ----------------------------------------------------------------------
    def action_reroll(self) -> None:
        n = self._number("samples", int, 1, 1, 5)
        seed = self.query_one("#bc-seed", Input)
        seed.value = str(self._number("seed", int, 1, 0, 2**31) + n)
        self.action_generate()

    def action_generate(self) -> None:
        self.action_cancel()
        self.run_id += 1
        self.cancel = threading.Event()
        self.showing_template = False
        settings = self.settings()
        n = self._number("samples", int, 1, 1, 5)
        max_tokens = self._number("max-tokens", int, 48, 1, 1024)
        for role in ROLES:
            pane = self.pane(role)
            pane.template, pane.cursor, pane.samples = None, None, []
            try:
                backend, req = self.request(role)
            except LabError as exc:
                pane.message = str(exc)
                pane.redraw()
                continue
            if backend is None:
                self.refresh_titles()
                continue
            pane.message = ""
            pane.samples = [Sample(settings.seed + i) for i in range(n)]
            pane.redraw()
            run, cancel = self.run_id, self.cancel
            self.run_worker(lambda r=role, b=backend, q=req: self._stream(r, b, q, settings, n, max_tokens, run, cancel),
                            name=f"pane-{role}", group=f"pane-{role}", thread=True, exclusive=True,
                            exit_on_error=False)

    def _stream(self, role, backend, req, settings, n, max_tokens, run, cancel) -> None:
        """Worker thread: stream n samples; tokens reach the UI in batches (every ~40 ms)."""
        for i in range(n):
            seed = settings.seed + i
            if cancel.is_set():
                self.post_message(PaneUpdate(role, run, i, seed, [], "cancelled"))
                continue
            try:
                gen = backend.stream(list(req.ids), replace(settings, seed=seed), max_tokens, cancel, top_n=5,
                                     stop_text=req.stop_text)
                pending = []
                t0 = last = time.perf_counter()
                for ev in gen:
                    pending.append(ev)
                    now = time.perf_counter()
                    if now - last > 0.04:
                        self.post_message(PaneUpdate(role, run, i, seed, pending))
                        pending, last = [], now
                stop = gen.result.stop_reason if gen.result else ""
                if stop == "stop text":
                    stop = "stop text (the next 'Human:')"
                self.post_message(PaneUpdate(role, run, i, seed, pending, stop, time.perf_counter() - t0))
            except LabError as exc:
                self.post_message(PaneUpdate(role, run, i, seed, [], "error", 0.0, str(exc)))
                return

    def on_pane_update(self, message: PaneUpdate) -> None:
        if message.run != self.run_id:
            return  # a stale stream
        pane = self.pane(message.role)
        if message.error:
            pane.message = message.error
        elif message.index < len(pane.samples):
            sample = pane.samples[message.index]
            sample.events.extend(message.events)
            if message.stop:
                sample.stop_reason, sample.seconds = message.stop, message.seconds
        pane.redraw()

    def action_cancel(self) -> None:
        self.cancel.set()

    def palette_commands(self):
        yield "basechat: generate", self.action_generate, "Generate in both panes"
        yield "basechat: re-roll", self.action_reroll, "Generate again with new seeds"
        yield "basechat: template view", self.action_toggle_template, "The exact text each model receives"
        for name in PRESETS:
            yield f"basechat: preset {name}", (lambda n=name: self.load_preset(n)), "Load a talk preset"
