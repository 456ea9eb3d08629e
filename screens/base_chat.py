"""Base vs chat: a document simulator beside an assistant, on one prompt.

Left: the base model continues the raw text (or a few-shot fake conversation). Right: the
chat model answers the prompt as a user message through its own chat template. Both stream
at once, N samples each with visible seeds; every token is coloured by its probability.
Answers that belong to an earlier prompt say so until the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Checkbox, Input, Label

from lab.prompts import PRESETS, Request, base_request, chat_request, original_after
from lab.errors import LabError
from lab.runs import RunHandle, SampleCache, SampleUpdate, events_from_json, events_to_json, stream_seeds
from lab.sampling import SamplingSettings
from screens.commands import ScreenCommands
from screens.widgets import ModelStatus
from screens.widgets.key_bar import KeyBar
from screens.widgets.number_field import NumberField
from screens.widgets.pane_view import PaneView, PlainPrompt

PANES = ("base", "chat")  # left to right
KINDS = {"base": "base model: continues the text", "chat": "chat model: answers as an assistant"}


@dataclass
class PaneUpdate(Message):
    """Progress of one sample of one pane, from a worker thread."""

    role: str
    run: int
    update: SampleUpdate


class BaseChatScreen(Screen):
    """Two models, one prompt: see what pretraining and post-training each give."""

    area_title = "Base vs chat"
    COMMANDS = {ScreenCommands}

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", id="basechat.generate", tooltip="Generate in both panes"),
        Binding("ctrl+r", "reroll", "Re-roll", id="basechat.reroll", tooltip="Generate again with new seeds"),
        Binding("ctrl+t", "toggle_template", "Template", id="basechat.template",
                tooltip="Show the exact text and tokens each model receives"),
        Binding("ctrl+l", "next_preset", "Preset", id="basechat.preset", tooltip="Next talk preset"),
        Binding("escape", "cancel", "Cancel", id="basechat.cancel", tooltip="Stop both streams"),
    ]

    showing_template: reactive[bool] = reactive(False, init=False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs = RunHandle()
        self.preset_index = -1
        self.asked: dict[str, tuple] = {}  # the inputs each pane's samples answer (see `inputs`)
        self.use_cache = True  # replay samples already made with the same model, prompt, settings and seed

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Input(PRESETS["who are you?"], placeholder="a prompt for both models (Enter generates)",
                    id="bc-prompt")
        with Horizontal(id="bc-controls"):
            for name, label, value, kind, lo, hi in (
                    ("temperature", "temp", "0.8", float, 0.0, 5.0), ("top-p", "top-p", "0.95", float, 0.01, 1.0),
                    ("max-tokens", "max tokens", "48", int, 1, 1024), ("samples", "samples", "1", int, 1, 5),
                    ("seed", "seed", "1", int, 0, 2**31)):
                yield Label(label)
                yield NumberField(value, kind=kind, lo=lo, hi=hi, id=f"bc-{name}", classes="bc-number")
        with Horizontal(id="bc-options"):
            yield Checkbox("few-shot (base): off", False, id="bc-fewshot", compact=True)
            yield Checkbox("system prompt: on", True, id="bc-system-on", compact=True)
            yield Input("You are a helpful assistant.", placeholder="system prompt", id="bc-system", compact=True)
        with Horizontal(id="bc-panes"):
            for role in PANES:
                yield PaneView(role, id=f"pane-{role}")
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self.refresh_titles())
        self.refresh_titles()

    def on_screen_suspend(self) -> None:
        self.action_cancel()  # leaving the screen stops the streams

    # ---- settings --------------------------------------------------------------------
    def number(self, name: str):
        return self.query_one(f"#bc-{name}", NumberField).number

    def settings(self) -> SamplingSettings:
        return SamplingSettings(temperature=self.number("temperature"), top_p=self.number("top-p"),
                                seed=self.number("seed"))

    def system_prompt(self) -> str | None:
        if not self.query_one("#bc-system-on", Checkbox).value:
            return None
        return self.query_one("#bc-system", Input).value or None

    def pane(self, role: str) -> PaneView:
        return self.query_one(f"#pane-{role}", PaneView)

    def refresh_titles(self) -> None:
        session = self.app.session
        for role in PANES:
            pane = self.pane(role)
            pane.title = f"{session.model_name(role)} · {KINDS[role]}"
            status = session.role_status(role)
            if status:
                pane.message = status
            elif not pane.samples and pane.template is None:
                pane.message = "Press Enter in the prompt (or Ctrl+G) to generate."
            elif pane.message.startswith("the "):
                pane.message = ""

    # ---- requests ----------------------------------------------------------------------
    def request(self, role: str):
        """(backend, Request) for a pane, or (None, None) while its model is not loaded."""
        backend = self.app.session.loaded(role)
        if backend is None:
            return None, None
        prompt = self.query_one("#bc-prompt", Input).value
        if role == "base":
            return backend, base_request(backend, prompt, self.query_one("#bc-fewshot", Checkbox).value)
        return backend, chat_request(backend, prompt, self.system_prompt())

    def action_toggle_template(self) -> None:
        self.showing_template = not self.showing_template

    def watch_showing_template(self) -> None:
        self.refresh_template()

    def refresh_template(self) -> None:
        for role in PANES:
            pane = self.pane(role)
            pane.template = None
            if self.showing_template:
                try:
                    backend, req = self.request(role)
                except LabError as exc:
                    pane.message = str(exc)
                    continue
                if req is not None:
                    pane.template = req.rendered if req.rendered is not None else self._plain(backend, req)
            pane.redraw()

    @staticmethod
    def _plain(backend, req: Request) -> PlainPrompt:
        """The base model's prompt, with the special tokens its tokenizer put before the text."""
        specials = []
        text_bytes = req.text.encode("utf-8")
        for tid in req.ids:
            if backend.detokenize_bytes(req.ids[len(specials):]) == text_bytes:
                break
            specials.append(backend.token_bytes(tid).decode("utf-8", errors="replace"))
        return PlainPrompt(req.text, req.ids, tuple(specials))

    @on(Input.Changed, "#bc-prompt, #bc-system")
    @on(Checkbox.Changed)
    def _prompt_changed(self, event) -> None:
        if isinstance(event, Checkbox.Changed):
            self._label_checkboxes()
        if self.showing_template:
            self.refresh_template()
        self.mark_stale()

    def _label_checkboxes(self) -> None:
        few, system = self.query_one("#bc-fewshot", Checkbox), self.query_one("#bc-system-on", Checkbox)
        few.label = f"few-shot (base): {'on' if few.value else 'off'}"
        system.label = f"system prompt: {'on' if system.value else 'off'}"
        self.query_one("#bc-system", Input).disabled = not system.value

    def inputs(self, role: str) -> tuple:
        """What a pane's request is made from (compared as typed: no tokenizing per keystroke,
        which for a remote model would be a request to its server)."""
        prompt = self.query_one("#bc-prompt", Input).value
        if role == "base":
            return prompt, self.query_one("#bc-fewshot", Checkbox).value
        return prompt, self.system_prompt()

    def mark_stale(self) -> None:
        """Answers that were generated for another prompt say so."""
        for role in PANES:
            pane, asked = self.pane(role), self.asked.get(role)
            if asked is None or not pane.samples:
                continue
            pane.stale = ("" if self.inputs(role) == asked else
                          "These answers are for an earlier prompt; press Ctrl+G to ask this one.")

    @on(Input.Submitted)
    def _submitted(self) -> None:
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
        seed = self.query_one("#bc-seed", NumberField)
        seed.value = str(self.number("seed") + self.number("samples"))
        self.action_generate()

    def action_generate(self) -> None:
        run = self.runs.start()
        self.showing_template = False
        settings = self.settings()
        n, max_tokens = self.number("samples"), self.number("max-tokens")
        for role in PANES:
            pane = self.pane(role)
            try:
                backend, req = self.request(role)
            except LabError as exc:
                pane.start([])
                pane.message = str(exc)
                continue
            if backend is None:
                pane.start([])
                self.refresh_titles()
                continue
            self.asked[role] = self.inputs(role)
            seeds = [settings.seed + i for i in range(n)]
            pane.start(seeds)
            pane.original = (original_after(self.query_one("#bc-prompt", Input).value)
                             if role == "base" and not self.query_one("#bc-fewshot", Checkbox).value else None)
            cache = SampleCache(self.app.samples_dir) if self.use_cache else None
            self.run_worker(lambda r=role, b=backend, q=req, s=seeds: stream_seeds(
                b, q.ids, settings, s, max_tokens, run.cancel,
                lambda u, r=r: self.post_message(PaneUpdate(r, run.id, u)), stop_text=q.stop_text, cache=cache),
                name=f"pane-{role}", group=f"pane-{role}", thread=True, exclusive=True, exit_on_error=False)

    def on_pane_update(self, message: PaneUpdate) -> None:
        if not self.runs.is_current(message.run):
            return  # a stale stream
        pane, u = self.pane(message.role), message.update
        if u.error:
            pane.message = u.error
        if u.index < len(pane.samples):
            sample = pane.samples[u.index]
            sample.events.extend(u.events)
            if u.done:
                stop = "stop text (the next 'Human:')" if u.stop == "stop text" else u.stop
                sample.stop_reason, sample.seconds, sample.cached = stop, u.seconds, u.cached
        if not u.cached and self.app.talk is not None:
            self.app.talk.mark_live()
        pane.redraw()

    def on_worker_state_changed(self, event) -> None:
        """A stream that stopped on something other than a model error says so in its pane."""
        from textual.worker import WorkerState

        group = event.worker.group or ""
        if group.startswith("pane-") and event.state == WorkerState.ERROR:
            err = event.worker.error
            pane = self.pane(group.removeprefix("pane-"))
            pane.message = f"the stream stopped: {err.__class__.__name__}: {err}"
            for sample in pane.samples:
                if not sample.stop_reason:
                    sample.stop_reason = "error"

    def action_cancel(self) -> None:
        self.runs.stop()

    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (see lab.talk.FIELDS["basechat"]); "run" generates."""
        if "preset" in fields:
            self.load_preset(fields["preset"])
        if "prompt" in fields:
            self.query_one("#bc-prompt", Input).value = fields["prompt"]
        if "few_shot" in fields:
            self.query_one("#bc-fewshot", Checkbox).value = fields["few_shot"]
        if "system" in fields:
            self.query_one("#bc-system", Input).value = fields["system"]
            self.query_one("#bc-system-on", Checkbox).value = bool(fields["system"])
        for key, box in (("samples", "samples"), ("seed", "seed"), ("temperature", "temperature"),
                         ("top_p", "top-p"), ("max_tokens", "max-tokens")):
            if key in fields:
                self.query_one(f"#bc-{box}", NumberField).value = str(fields[key])
        self._label_checkboxes()
        if fields.get("run"):
            self.action_generate()

    def action_generate_fresh(self) -> None:
        self.use_cache = False
        try:
            self.action_generate()
        finally:
            self.use_cache = True

    def action_clear_cache(self) -> None:
        SampleCache(self.app.samples_dir).clear()
        self.notify("Cached samples cleared.", timeout=3)

    # ---- saving, opening, exporting ------------------------------------------------------
    def state(self) -> dict:
        """The screen as a saved state: its settings (as a talk step's fields) and the samples shown."""
        fields = {"prompt": self.query_one("#bc-prompt", Input).value,
                  "few_shot": self.query_one("#bc-fewshot", Checkbox).value,
                  "system": self.system_prompt() or "",
                  **{key: self.number(box) for key, box in (("samples", "samples"), ("seed", "seed"),
                                                            ("temperature", "temperature"), ("top_p", "top-p"),
                                                            ("max_tokens", "max-tokens"))}}
        panes = {role: [{"seed": x.seed, "stop": x.stop_reason, "seconds": x.seconds,
                         "events": events_to_json(x.events)} for x in self.pane(role).samples] for role in PANES}
        return {"fields": fields, "panes": panes}

    def restore_state(self, state: dict) -> None:
        """Show a saved state (checked by the caller's `check_state` first)."""
        self.runs.stop()
        self.apply_step(dict(state["fields"], run=False))
        for role, rows in state.get("panes", {}).items():
            pane = self.pane(role)
            pane.start([row["seed"] for row in rows])
            for sample, row in zip(pane.samples, rows):
                sample.events = list(events_from_json(row["events"]))
                sample.stop_reason, sample.seconds = row["stop"], row["seconds"]
            pane.redraw()

    @staticmethod
    def check_state(state: dict) -> None:
        """Raise ValueError/KeyError/TypeError when a saved Base vs chat state is damaged."""
        if not isinstance(state["fields"], dict):
            raise TypeError("fields")
        for role, rows in state.get("panes", {}).items():
            if role not in PANES:
                raise ValueError(role)
            for row in rows:
                int(row["seed"]), str(row["stop"]), float(row["seconds"]), events_from_json(row["events"])

    def export(self, kind: str) -> str:
        """The samples shown, as Markdown or JSON text."""
        prompt = self.query_one("#bc-prompt", Input).value
        rows = {role: [{"seed": x.seed, "text": x.text, "tokens": len(x.events), "stop": x.stop_reason}
                       for x in self.pane(role).samples] for role in PANES}
        models = {role: self.app.session.model_name(role) for role in PANES}
        if kind == "json":
            import json

            return json.dumps({"prompt": prompt, "models": models, "settings": self.state()["fields"],
                               "samples": rows}, ensure_ascii=False, indent=1)
        lines = [f"# Base vs chat: {prompt}", ""]
        for role in PANES:
            lines += [f"## {role}: {models[role]}", ""]
            for row in rows[role]:
                lines += [f"**seed {row['seed']}** ({row['tokens']} tokens, {row['stop']})", "",
                          "> " + row["text"].replace("\n", "\n> "), ""]
        return "\n".join(lines)

    def palette_commands(self):
        yield "basechat: export samples as Markdown", lambda: self.app.export_screen("md"), "Save the samples shown"
        yield "basechat: export samples as JSON", lambda: self.app.export_screen("json"), "Save the samples shown"
        yield "basechat: generate", self.action_generate, "Generate in both panes"
        yield "basechat: generate without the cache", self.action_generate_fresh, "Sample again even where cached"
        yield "basechat: clear cached samples", self.action_clear_cache, "Forget every cached sample"
        yield "basechat: re-roll", self.action_reroll, "Generate again with new seeds"
        yield "basechat: template view", self.action_toggle_template, "The exact text each model receives"
        for name in PRESETS:
            yield f"basechat: preset {name}", (lambda n=name: self.load_preset(n)), "Load a talk preset"
