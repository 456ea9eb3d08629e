"""Tokens screen: text → UTF-8 bytes → BPE tokens, live as you type.

The screen holds the text box (which keeps the text exactly as given: every line separator,
tabs, surrogates), the encodings (tiktoken's and the loaded models') and the wiring. Each view
is its own widget with its own inputs and worker: Tokens (`TokensPane`), Compare
(`ComparePane`), BPE replay (`ReplayView`), Train BPE (`TrainPane`), Chat template
(`ChatTemplatePane`). A `ContentSwitcher` shows them; the views after the first are added to
it (`add_content`) the first time they are shown, so the first frame does not wait for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.paths import assets_dir
from lab.tokentext import stats
from screens.commands import ScreenCommands
from screens.widgets import ModelStatus
from screens.widgets.exact_text_area import ExactTextArea
from screens.widgets.key_bar import KeyBar
from screens.widgets.tokens_pane import TokensPane
from screens.widgets.view_bar import ViewBar

TIKTOKEN_NAMES = ("cl100k_base", "o200k_base", "r50k_base")
MODEL_KEYS = ("chat", "base")
SYNC_LIMIT = 200_000  # characters tokenized on the UI thread; longer text goes to a worker
SHORT_NAMES = {"cl100k_base": "cl100k", "o200k_base": "o200k", "r50k_base": "r50k", "chat": "chat", "base": "base"}
VIEWS = ("tab-tokens", "tab-compare", "tab-replay", "tab-train", "tab-chat")
VIEW_TITLES = ("Tokens", "Compare", "BPE replay", "Train BPE", "Chat template")


def load_presets() -> dict[str, str]:
    try:
        return json.loads((assets_dir() / "token_presets.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"hello": "Hello world!"}


@dataclass
class EncodingSlot:
    """One encoding the screen can show: loaded, loading, or unavailable with the reason."""

    key: str
    label: str
    encoding: object | None = None
    error: str = ""
    special_ids: frozenset[int] = frozenset()
    over_http: bool = False  # a remote model's tokenizer: always tokenized in a worker

    @property
    def status(self) -> str:
        if self.encoding is not None:
            return "ready"
        return "unavailable" if self.error else "loading"


class TokensScreen(Screen):
    """See text become bytes and tokens, in several encodings, live."""

    area_title = "Tokens"
    COMMANDS = {ScreenCommands}

    BINDINGS = [
        Binding("ctrl+n", "next_encoding", "Encoding", id="tokens.encoding", tooltip="Show the next encoding"),
        Binding("ctrl+t", "toggle('show_ids')", "IDs", id="tokens.ids", tooltip="Show token ids after the spans"),
        Binding("ctrl+g", "toggle('show_ws')", "Spaces", id="tokens.whitespace",
                tooltip="Make spaces, tabs, line separators and invisible characters visible"),
        Binding("ctrl+b", "toggle('show_bytes')", "Bytes", id="tokens.bytes", tooltip="Show the UTF-8 bytes (0-255)"),
        Binding("ctrl+o", "next_view", "View", id="tokens.view", tooltip="Next view: Tokens, Compare, Replay, Train, Chat"),
        Binding("ctrl+l", "next_preset", "Preset", id="tokens.preset", tooltip="Load the next talk preset",
                show=False),
        Binding("ctrl+r", "replay", "Replay", id="tokens.replay",
                tooltip="Replay the BPE merges of the selection in the selected encoding", show=False),
    ]

    show_ids: var[bool] = var(False, init=False)
    """Token ids after each span."""
    show_ws: var[bool] = var(False, init=False)
    """Spaces, tabs, line separators and invisible characters drawn visibly."""
    show_bytes: var[bool] = var(False, init=False)
    """Each token's bytes, and the text's UTF-8 bytes below."""
    current: var[str] = var("cl100k_base", init=False)
    """The key of the encoding the Tokens view and the stats line show."""

    @dataclass
    class EncodingLoaded(Message):
        """A tiktoken encoding finished loading (`encoding` None: `error` says why not)."""

        key: str
        encoding: object | None
        error: str

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.presets = load_presets()
        self.preset_index = -1
        self.slots: dict[str, EncodingSlot] = {
            "cl100k_base": EncodingSlot("cl100k_base", "cl100k_base (GPT-4)"),
            "o200k_base": EncodingSlot("o200k_base", "o200k_base (GPT-4o)"),
            "r50k_base": EncodingSlot("r50k_base", "r50k_base (GPT-2)"),
            "chat": EncodingSlot("chat", "chat model"),
            "base": EncodingSlot("base", "base model"),
        }
        self.compare_keys = ["cl100k_base", "o200k_base", "chat", "base"]
        self._told: set[str] = set()  # unavailable encodings already shown once with their reason
        self._shown_text: str | None = None  # the text the views last showed

    # ---- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Static(id="tokens-stats")
        yield ExactTextArea(next(iter(self.presets.values())), id="tokens-input", soft_wrap=True,
                            show_line_numbers=False, on_edit=self.retokenize)
        yield ViewBar(dict(zip(VIEWS, VIEW_TITLES)), "tab-tokens", "Ctrl+O next view", id="tokens-viewbar")
        with ContentSwitcher(id="tokens-tabs", initial="tab-tokens"):
            yield TokensPane(id="tab-tokens")
        yield KeyBar()

    def _make_view(self, view: str):
        """A view other than Tokens, built the first time it is shown (imported then too: the
        first frame does not wait for Input, RichLog and the rest)."""
        from screens.widgets.chat_template_pane import ChatTemplatePane
        from screens.widgets.compare_pane import ComparePane
        from screens.widgets.replay_view import ReplayView
        from screens.widgets.train_pane import TrainPane

        if view == "tab-compare":
            return ComparePane(SHORT_NAMES, self.compare_keys, id=view)
        if view == "tab-replay":
            return VerticalScroll(ReplayView(id="replay-view"), id=view)
        if view == "tab-train":
            return TrainPane(lambda: self.text, id=view)
        return ChatTemplatePane(id=view)

    def on_mount(self) -> None:
        # Encodings load after the first frame: parsing their ranks would hold the GIL.
        self.app.after_first_frame(self.load_tiktoken_encodings)
        self.app.models_changed.subscribe(self, lambda _=None: self.refresh_models())
        self.refresh_models()
        self.retokenize()

    # ---- encodings ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="encodings", exit_on_error=False)
    def load_tiktoken_encodings(self) -> None:
        from lab.tokenizers import tiktoken_encoding

        for name in TIKTOKEN_NAMES:
            try:
                enc, error = tiktoken_encoding(name), ""  # GPT-2 may download once (5 s timeout) when online
            except LabError as exc:
                enc, error = None, exc.message
            except Exception as exc:  # a broken tiktoken install: say so, keep going
                enc, error = None, f"{exc.__class__.__name__}: {exc}"
            self.post_message(self.EncodingLoaded(name, enc, error))

    @on(EncodingLoaded)
    def _encoding_loaded(self, event: EncodingLoaded) -> None:
        slot = self.slots[event.key]
        slot.encoding, slot.error = event.encoding, event.error
        if event.encoding is not None:
            slot.label = event.encoding.label
            slot.special_ids = frozenset(event.encoding.specials.values())
        self.retokenize()

    def refresh_models(self) -> None:
        from lab.tokenizers import model_encoding

        session = self.app.session
        for role in MODEL_KEYS:
            slot = self.slots[role]
            backend = session.loaded(role)
            err = session.error(role)
            if backend is not None and not backend.capabilities.supports_tokenize:  # a remote without a tokenizer
                slot.encoding, slot.label = None, f"{backend.info.name} ({role})"
                slot.error = backend.capabilities.limits[0]
            elif backend is not None and slot.encoding is None:
                slot.encoding = model_encoding(backend)
                slot.over_http = bool(backend.capabilities.logprobs_top_n)
                slot.label = f"{backend.info.name} ({role})"
                slot.special_ids = frozenset()
                slot.error = ""
            elif backend is None:
                slot.encoding = None
                slot.label = f"{session.model_name(role)} ({role})"
                # Failed, or not loaded at all (started without models): say why; loading: "".
                slot.error = session.role_status(role) if err or not session.loading else ""
        if self.is_mounted:
            self.retokenize()
            for pane in self.query("#tab-chat"):
                pane.refresh_chat()

    def action_next_encoding(self) -> None:
        """The next encoding; one that is unavailable is shown once, with its reason, then skipped."""
        keys = list(self.slots)
        start = keys.index(self.current)
        for step in range(1, len(keys) + 1):
            key = keys[(start + step) % len(keys)]
            if self.slots[key].status != "unavailable" or key not in self._told:
                self.current = key
                return

    def watch_current(self, key: str) -> None:
        slot = self.slots[key]
        if slot.status == "unavailable":
            self._told.add(key)
            self.notify(slot.error, title=f"{slot.label} is unavailable", severity="warning", timeout=8)
        elif slot.status == "loading":
            self.notify(f"{slot.label} is still loading", timeout=3)
        self.retokenize()

    # ---- tokenizing ------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.query_one("#tokens-input", ExactTextArea).text

    @on(ExactTextArea.Changed, "#tokens-input")
    def _text_changed(self) -> None:
        if self.text != self._shown_text:  # an edit already re-tokenized in its own handler
            self.retokenize()

    @property
    def active_view(self) -> str:
        return self.query_one("#tokens-tabs", ContentSwitcher).current or "tab-tokens"

    def _needed_keys(self) -> set[str]:
        """Encodings whose ids the visible views need."""
        keys = {self.current}
        if self.active_view == "tab-compare":
            keys.update(self.compare_keys)
        return keys

    def retokenize(self) -> None:
        if not self.is_mounted:
            return
        text = self.text
        if len(text) > SYNC_LIMIT or any(self.slots[k].over_http for k in self._needed_keys()):
            self.query_one("#tokens-stats", Static).update(f"{len(text):,} characters · counting…")
            self._tokenize_in_worker(text, self._needed_keys())
            return
        self._show(text, self._encode(text, self._needed_keys()))

    def _encode(self, text: str, keys: set[str]) -> dict[str, list[int]]:
        """Ids of `text` in each of the `keys` encodings that is loaded."""
        return {key: self.slots[key].encoding.encode(text) for key in keys if self.slots[key].encoding is not None}

    @work(thread=True, exclusive=True, group="tokenize", exit_on_error=False)
    def _tokenize_in_worker(self, text: str, keys: set[str]) -> tuple[str, dict[str, list[int]]]:
        results = self._encode(text, keys)
        for key, ids in results.items():
            if self.slots[key].over_http:  # a remote model's tokenizer: fetch the pieces here, not while drawing
                self.slots[key].encoding.piece_lengths(ids)
        return text, results

    @on(Worker.StateChanged)
    def _tokenized(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "tokenize" and event.state == WorkerState.SUCCESS:
            self._show(*event.worker.result)
        elif event.worker.group == "tokenize" and event.state == WorkerState.ERROR:  # e.g. a remote server failed
            err = event.worker.error
            self.notify(str(err) if isinstance(err, LabError) else f"{err.__class__.__name__}: {err}",
                        severity="warning")

    def _cursor_char(self) -> int:
        area = self.query_one("#tokens-input", ExactTextArea)
        return area.document.get_index_from_location(area.cursor_location)

    def _show(self, text: str, results: dict[str, list[int]]) -> None:
        if text != self.text:  # a stale result from a worker: a newer one is coming
            return
        self._shown_text = text
        slot = self.slots[self.current]
        ids = results.get(self.current) if slot.encoding is not None else None
        self._show_stats(text, slot, ids)
        view = self.active_view
        if view == "tab-tokens":
            pane = self.query_one(TokensPane)
            if ids is None:
                why = f"unavailable: {slot.error}" if slot.error else "still loading…"
                pane.show_reason(text, f"{slot.label} cannot tokenize here: {why}", self.show_bytes)
            else:
                pane.show(text, ids, slot.encoding, self._cursor_char(), show_ids=self.show_ids,
                          show_ws=self.show_ws, show_bytes=self.show_bytes, special_ids=slot.special_ids)
        elif view == "tab-compare" and (panes := self.query("#tab-compare")):
            rows = []
            for key in self.compare_keys:
                s = self.slots[key]
                rows.append((s.label, s.encoding, results.get(key) if s.encoding is not None else None,
                             s.error or "loading…"))
            panes.first().show(text, rows, self._cursor_char(), self.show_ws)

    def _show_stats(self, text: str, slot: EncodingSlot, ids: list[int] | None) -> None:
        line = self.query_one("#tokens-stats", Static)
        if ids is None:
            reason = f" · unavailable: {slot.error}" if slot.error else " · loading…"
            line.update(Text.assemble((slot.label, "bold"), reason), layout=False)
            return
        st = stats(text, ids)
        bad = f" · {st.unencodable:,} not UTF-8 (as U+FFFD)" if st.unencodable else ""
        content = Text.assemble(
            (slot.label, "bold"), f" · vocab {slot.encoding.vocab_size:,} · ", (f"{st.tokens:,} tokens", "bold"),
            f" · {st.chars:,} chars · {st.bytes:,} bytes · {st.chars_per_token:.2f} chars/token · "
            f"{st.bytes_per_token:.2f} bytes/token", (bad, "bold"))
        width = line.size.width - 2
        height = 1 if width <= 0 or content.cell_len <= width else 2  # a narrow terminal: wrap, lose nothing
        if line.styles.height is None or line.styles.height.value != height:
            line.styles.height = height
        line.update(content, layout=False)

    def on_compare_pane_chosen(self, event) -> None:
        """The ticked encodings changed (ComparePane.Chosen: its module loads with the view)."""
        self.compare_keys = list(event.keys)
        self.retokenize()

    # ---- toggles, views, presets -----------------------------------------------------
    def action_toggle(self, attr: str) -> None:
        setattr(self, attr, not getattr(self, attr))

    def watch_show_ids(self) -> None:
        self.retokenize()

    def watch_show_ws(self) -> None:
        self.retokenize()

    def watch_show_bytes(self) -> None:
        self.retokenize()

    def action_next_view(self) -> None:
        active = self.active_view
        self.show_view(VIEWS[(VIEWS.index(active) + 1) % len(VIEWS)] if active in VIEWS else VIEWS[0])

    def show_view(self, view: str, then: Callable[[], None] | None = None) -> None:
        """Show `view` (building it the first time), then run `then`."""
        switcher = self.query_one("#tokens-tabs", ContentSwitcher)
        self.query_one("#tokens-viewbar", ViewBar).show(view)
        if switcher.query_children(f"#{view}"):
            switcher.current = view
            self.retokenize()
            if then is not None:
                then()
            return

        async def build() -> None:
            await switcher.add_content(self._make_view(view), set_current=True)
            self.retokenize()
            if then is not None:
                then()

        self.call_next(build)

    def action_next_preset(self) -> None:
        names = list(self.presets)
        self.preset_index = (self.preset_index + 1) % len(names)
        self.load_preset(names[self.preset_index])

    def load_preset(self, name: str) -> None:
        self.query_one("#tokens-input", ExactTextArea).load_text(self.presets[name])
        self.notify(f"Preset: {name}", timeout=2)
        if name.startswith("the (116, 32)"):
            for box in self.query("#train-regex"):
                box.value = False
        self.retokenize()

    # ---- BPE replay -------------------------------------------------------------------
    def selection_or_word(self) -> str:
        area = self.query_one("#tokens-input", ExactTextArea)
        if area.selected_text:
            return area.selected_text
        row, col = area.cursor_location
        line = area.document.get_line(row)
        start = col
        while start > 0 and not line[start - 1].isspace():
            start -= 1
        end = col
        while end < len(line) and not line[end].isspace():
            end += 1
        word = line[start:end]
        if start > 0 and word:  # BPE words carry their leading space
            word = " " + word
        return word or line or self.text[:40]

    def action_replay(self) -> None:
        """Replay the selection (or the word at the cursor) in the selected encoding."""
        slot = self.slots[self.current]
        if slot.encoding is None:
            self.notify(f"{slot.label} is {'unavailable: ' + slot.error if slot.error else 'still loading'}.",
                        severity="warning")
            return
        source = self.selection_or_word()[:200]

        def load() -> None:
            view = self.query_one("#replay-view")
            view.load(source, slot.encoding)
            view.focus()

        self.show_view("tab-replay", then=load)

    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (see lab.talk.FIELDS["tokens"]): preset, text, encoding, view."""
        if "preset" in fields:
            self.load_preset(fields["preset"])
        if "text" in fields:
            self.query_one("#tokens-input", ExactTextArea).load_text(fields["text"])
            self.retokenize()
        if "encoding" in fields:
            self.current = fields["encoding"]
        if "view" in fields:
            self.show_view(f"tab-{fields['view']}")

    def action_clear_text(self) -> None:
        self.query_one("#tokens-input", ExactTextArea).load_text("")
        self.retokenize()

    # ---- saving and opening ------------------------------------------------------------
    def state(self) -> dict:
        """The exact text, the encoding, the view and the toggles."""
        return {"fields": {"text": self.text, "encoding": self.current,
                           "view": self.active_view.removeprefix("tab-")},
                "toggles": {"show_ids": self.show_ids, "show_ws": self.show_ws, "show_bytes": self.show_bytes}}

    def restore_state(self, state: dict) -> None:
        self.apply_step(state["fields"])
        for name, value in state.get("toggles", {}).items():
            setattr(self, name, bool(value))

    @staticmethod
    def check_state(state: dict) -> None:
        fields = state["fields"]
        if not isinstance(fields["text"], str) or fields.get("encoding", "cl100k_base") not in (
                "cl100k_base", "o200k_base", "r50k_base", "chat", "base"):
            raise ValueError("text or encoding")
        if fields.get("view", "tokens") not in ("tokens", "compare", "replay", "train", "chat"):
            raise ValueError("view")
        if not set(state.get("toggles", {})) <= {"show_ids", "show_ws", "show_bytes"}:
            raise ValueError("toggles")

    def palette_commands(self):
        """(name, callback, help) for the command palette while this screen is shown."""
        yield "tokens: clear the text", self.action_clear_text, "Empty the text box"
        yield "tokens: next encoding", self.action_next_encoding, "Cycle cl100k, o200k, GPT-2, chat and base"
        yield "tokens: toggle ids", lambda: self.action_toggle("show_ids"), "Show token ids after the spans"
        yield "tokens: toggle whitespace", lambda: self.action_toggle("show_ws"), "Make whitespace visible"
        yield "tokens: toggle bytes", lambda: self.action_toggle("show_bytes"), "Show the UTF-8 bytes"
        yield "tokens: replay merges", self.action_replay, "Replay the BPE merges of the selection or word"
        for view, title in zip(VIEWS, VIEW_TITLES):
            yield f"tokens: view {title}", (lambda v=view: self.show_view(v)), f"Show the {title} view"
        for name in self.presets:
            yield f"tokens: preset {name}", (lambda n=name: self.load_preset(n)), "Load a preset for a talk"

    @on(ViewBar.Chosen)
    def _view_chosen(self, event: ViewBar.Chosen) -> None:
        self.show_view(event.view)
