"""Tokens screen: text → UTF-8 bytes → BPE tokens, live as you type.

Views (tabs): Tokens (coloured spans, ids, bytes), Compare (2-4 encodings stacked and
aligned), BPE replay (merge by merge), Train BPE (a small BPE on the text or a file, in a
worker), Chat template (a conversation as the chat model's own template renders it).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static, TextArea

from lab.errors import LabError
from lab.paths import assets_dir
from lab.tokentext import Segmenter, label, stats
from screens.widgets import ModelStatus
from screens.widgets.replay_view import ReplayView
from screens.widgets.key_bar import KeyBar
from screens.widgets.token_view import TokenView
from screens.widgets.view_bar import ViewBar

TIKTOKEN_NAMES = ("cl100k_base", "o200k_base", "r50k_base")
MODEL_KEYS = ("chat", "base")
DRAW_LIMIT = 500  # tokens drawn per view, around the cursor; counts are always exact
SYNC_LIMIT = 200_000  # characters tokenized on the UI thread; longer text goes to a worker
SHORT_NAMES = {"cl100k_base": "cl100k (GPT-4)", "o200k_base": "o200k (GPT-4o)", "r50k_base": "r50k (GPT-2)",
               "chat": "chat model", "base": "base model"}
VIEWS = ("tab-tokens", "tab-compare", "tab-replay", "tab-train", "tab-chat")
VIEW_TITLES = ("Tokens", "Compare", "BPE replay", "Train BPE", "Chat template")


class LiveTextArea(TextArea):
    """A TextArea that re-tokenizes inside the keystroke's own handler (through `on_edit`),
    so the text and its tokens reach the screen in one frame instead of two."""

    def __init__(self, *args, on_edit=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_edit = on_edit

    def edit(self, edit):
        result = super().edit(edit)
        if self.on_edit is not None:
            self.on_edit()
        return result


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

    BINDINGS = [
        Binding("ctrl+n", "next_encoding", "Encoding", id="tokens.encoding", tooltip="Show the next encoding"),
        Binding("ctrl+t", "toggle('ids')", "IDs", id="tokens.ids", tooltip="Show token ids after the spans"),
        Binding("ctrl+g", "toggle('ws')", "Spaces", id="tokens.whitespace",
                tooltip="Make spaces, tabs, newlines and invisible characters visible"),
        Binding("ctrl+b", "toggle('bytes')", "Bytes", id="tokens.bytes", tooltip="Show the UTF-8 bytes (0-255)"),
        Binding("ctrl+o", "next_view", "View", id="tokens.view", tooltip="Next view: Tokens, Compare, Replay, Train, Chat"),
        Binding("ctrl+l", "next_preset", "Preset", id="tokens.preset", tooltip="Load the next talk preset",
                show=False),
        Binding("ctrl+r", "replay", "Replay", id="tokens.replay", tooltip="Replay the BPE merges of the selection",
                show=False),
        Binding("escape", "cancel_training", "Cancel", id="tokens.cancel", show=False),
    ]

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
        self.current = "cl100k_base"
        self.compare_keys = ["cl100k_base", "o200k_base", "chat", "base"]
        self.show_ids = False
        self.show_ws = False
        self.show_bytes = False
        self._train_pieces: dict[int, bytes] = {}
        self.built: set[str] = set()
        self._made: dict[str, object] = {}  # id -> widget of the views built on demand
        self._train_cancel: threading.Event | None = None
        self._shown_text: str | None = None  # the text the views last showed

    # ---- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Static(id="tokens-stats")
        yield LiveTextArea(next(iter(self.presets.values())), id="tokens-input", soft_wrap=True,
                           show_line_numbers=False, on_edit=self.retokenize)
        yield ViewBar(dict(zip(VIEWS, VIEW_TITLES)), "tab-tokens", "Ctrl+O next view", id="tokens-viewbar")
        with ContentSwitcher(id="tokens-tabs", initial="tab-tokens"):
            with Vertical(id="tab-tokens"):
                # A fixed-size view (no auto height): a new token drawing repaints in the same
                # frame as the keystroke instead of waiting for a layout pass.
                yield TokenView(id="token-view")
                yield Static(id="bytes-view")
            # The other views are built the first time they are shown, so the first frame paints sooner.
            for view in VIEWS[1:]:
                yield Vertical(id=view)
        yield KeyBar()

    def _pane_widgets(self, view: str) -> list:
        # Imported here: these widgets are not needed for the first frame.
        from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RichLog

        def keep(widget):
            self._made[widget.id] = widget
            return widget

        if view == "tab-compare":
            boxes = [keep(Checkbox(SHORT_NAMES[key], key in self.compare_keys, id=f"cmp-{key}", compact=True))
                     for key in self.slots]
            return [Horizontal(*boxes, id="compare-choices"),
                    VerticalScroll(keep(Static(id="compare-view")), id="compare-rows")]
        if view == "tab-replay":
            return [VerticalScroll(keep(ReplayView(id="replay-view")))]
        if view == "tab-train":
            return [Horizontal(Label("vocab size"), keep(Input("512", id="train-vocab", type="integer", max_length=6)),
                               keep(Input(placeholder="file to train on (blank: the text box)", id="train-file")),
                               keep(Checkbox("split like GPT-4", False, id="train-regex", compact=True)),
                               keep(Button("Train", id="train-start", variant="primary", compact=True)),
                               id="train-controls"),
                    keep(ProgressBar(id="train-progress", show_eta=False)),
                    keep(RichLog(id="train-log", max_lines=5000, wrap=False))]
        return [Vertical(keep(Input("You are a helpful assistant.", placeholder="system (blank: none)",
                                    id="chat-system")),
                         keep(Input("How many r are in strawberry?", placeholder="user", id="chat-user")),
                         keep(Input("", placeholder="assistant (blank: the model answers next)",
                                    id="chat-assistant")),
                         id="chat-inputs"),
                VerticalScroll(keep(Static(id="chat-view")))]

    def ensure_pane(self, view: str) -> None:
        """Build a view's widgets the first time it is needed."""
        if view in self.built or view == "tab-tokens":
            return
        self.built.add(view)
        self.query_one(f"#{view}", Vertical).mount_all(self._pane_widgets(view))

    def _widget(self, selector: str):
        """A widget of a view by id, or None while that view has not been built."""
        return self._made.get(selector.lstrip("#"))

    def query_one(self, selector, expect_type=None):
        """Like Screen.query_one, but also finds view widgets that are still being mounted."""
        if isinstance(selector, str) and selector.startswith("#") and selector[1:] in self._made:
            return self._made[selector[1:]]
        return super().query_one(selector, expect_type) if expect_type else super().query_one(selector)

    def on_mount(self) -> None:
        # Encodings load after the first frame: parsing their ranks would hold the GIL.
        self.app.after_first_frame(self.load_tiktoken_encodings)
        self.app.models_changed.subscribe(self, lambda _=None: self.refresh_models())
        self.refresh_models()
        self.retokenize()

    # ---- encodings ------------------------------------------------------------------
    @work(thread=True, group="encodings", exit_on_error=False)
    def load_tiktoken_encodings(self) -> None:
        from lab.tokenizers import tiktoken_encoding

        for name in TIKTOKEN_NAMES:
            slot = self.slots[name]
            try:
                enc = tiktoken_encoding(name)  # GPT-2 may download once (5 s timeout) when online
                slot.encoding, slot.label = enc, enc.label
                slot.special_ids = frozenset(enc.specials.values())
            except LabError as exc:
                slot.error = exc.message
            except Exception as exc:  # a broken tiktoken install: say so, keep going
                slot.error = f"{exc.__class__.__name__}: {exc}"
            self.app.call_from_thread(self.retokenize)

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
                slot.error = f"the {role} model failed to load: {err.message}" if err else ""
        if self.is_mounted:
            self.retokenize()
            self.refresh_chat()

    def action_next_encoding(self) -> None:
        keys = list(self.slots)
        self.current = keys[(keys.index(self.current) + 1) % len(keys)]
        self.retokenize()
        slot = self.slots[self.current]
        if slot.status != "ready":
            self.notify(slot.error or f"{slot.label} is still loading", title=slot.label)

    # ---- tokenizing ------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.query_one("#tokens-input", TextArea).text

    @on(TextArea.Changed, "#tokens-input")
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
            keys.update(self.compare_keys[:4])
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
    def _tokenize_in_worker(self, text: str, keys: set[str]) -> None:
        try:
            results = self._encode(text, keys)
            for key, ids in results.items():
                if self.slots[key].over_http:  # fetch the pieces here, not while drawing
                    self.slots[key].encoding.piece_lengths(ids)
        except LabError as exc:  # a remote tokenizer that failed: say so, keep the screen
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
            return
        self.app.call_from_thread(self._show, text, results)

    def _cursor_char(self) -> int:
        area = self.query_one("#tokens-input", TextArea)
        return area.document.get_index_from_location(area.cursor_location)

    def _show(self, text: str, results: dict[str, list[int]]) -> None:
        if text != self.text:  # a stale result from a worker: a newer one is coming
            return
        self._shown_text = text
        slot = self.slots[self.current]
        stats_line = self.query_one("#tokens-stats", Static)
        if slot.encoding is None or self.current not in results:
            reason = slot.error or "loading…"
            stats_line.update(Text.assemble((slot.label, "bold"),
                                            f" · unavailable: {reason}" if slot.error else f" · {reason}"),
                              layout=False)
        else:
            ids = results[self.current]
            st = stats(text, ids)
            stats_line.update(Text.assemble(
                (slot.label, "bold"), f" · vocab {slot.encoding.vocab_size:,} · ",
                (f"{st.tokens:,} tokens", "bold"), f" · {st.chars:,} chars · {st.bytes:,} bytes · "
                f"{st.chars_per_token:.2f} chars/token · {st.bytes_per_token:.2f} bytes/token"), layout=False)
        view = self.active_view
        if view == "tab-tokens":
            self._show_tokens(text, results)
        elif view == "tab-compare":
            self._show_compare(text, results)

    def _show_tokens(self, text: str, results: dict[str, list[int]]) -> None:
        slot = self.slots[self.current]
        view = self.query_one("#token-view", TokenView)
        if slot.encoding is None or self.current not in results:
            view.update(Text(f"{slot.label} cannot tokenize right now: {slot.error or 'loading…'}"), layout=False)
        else:
            ids = results[self.current]
            seg = Segmenter(text, ids, slot.encoding.token_bytes, slot.encoding.piece_lengths(ids))
            cursor = self._cursor_char()
            spans = view.fit(seg.window(cursor, DRAW_LIMIT), seg.token_at_char(cursor), show_ids=self.show_ids,
                             show_bytes=self.show_bytes, show_ws=self.show_ws)
            view.show_tokens(text, spans, len(ids), show_ids=self.show_ids, show_ws=self.show_ws,
                             show_bytes=self.show_bytes, special_ids=slot.special_ids)
        self._show_bytes(text)

    def _show_bytes(self, text: str) -> None:
        view = self.query_one("#bytes-view", Static)
        view.display = self.show_bytes
        if not self.show_bytes:
            return
        data = text.encode("utf-8", errors="surrogatepass")
        shown = data[:4000]
        line = " ".join(str(b) for b in shown)
        more = f" … ({len(data):,} bytes in all)" if len(data) > len(shown) else ""
        view.update(Text.assemble(("UTF-8 bytes of the text (0-255): ", "bold"), line + more))

    def _show_compare(self, text: str, results: dict[str, list[int]]) -> None:
        target = self._widget("#compare-view")
        if target is None:
            return
        parts: list = []
        keys = self.compare_keys[:4]
        if len(keys) < 2:
            parts.append("Tick 2 to 4 encodings above to compare them.")
        view = self.query_one("#token-view", TokenView)  # for its theme styles
        cursor = self._cursor_char()
        for key in keys:
            slot = self.slots[key]
            parts.append((slot.label, "bold"))
            if slot.encoding is None or key not in results:
                parts.append(f" · unavailable: {slot.error or 'loading…'}\n\n")
                continue
            ids = results[key]
            parts.append(f" · {len(ids):,} tokens\n")
            spans = Segmenter(text, ids, slot.encoding.token_bytes,
                              slot.encoding.piece_lengths(ids)).window(cursor, DRAW_LIMIT)
            parts.append(view.build(text, spans, len(ids), show_ws=self.show_ws, aligned=True))
            parts.append("\n\n")
        out = Content.assemble(*parts, strip_control_codes=False)
        target.update(out)

    def on_checkbox_changed(self, event) -> None:
        """A compare choice was ticked or unticked (Checkbox.Changed)."""
        if not (event.checkbox.id or "").startswith("cmp-"):
            return
        key = event.checkbox.id[4:]
        if event.value and key not in self.compare_keys:
            if len(self.compare_keys) >= 4:
                self.notify("Compare shows at most 4 encodings; untick one first.")
                event.checkbox.value = False
                return
            self.compare_keys.append(key)
        elif not event.value and key in self.compare_keys:
            self.compare_keys.remove(key)
        self.retokenize()

    # ---- toggles, views, presets -----------------------------------------------------
    def action_toggle(self, what: str) -> None:
        attr = {"ids": "show_ids", "ws": "show_ws", "bytes": "show_bytes"}[what]
        setattr(self, attr, not getattr(self, attr))
        self.retokenize()
        replay_view = self._widget("#replay-view")
        if what == "ws" and replay_view is not None:
            replay_view.refresh_view()

    def action_next_view(self) -> None:
        active = self.active_view
        self.show_view(VIEWS[(VIEWS.index(active) + 1) % len(VIEWS)] if active in VIEWS else VIEWS[0])

    def show_view(self, view: str) -> None:
        if view == self.active_view:
            return
        self.ensure_pane(view)
        self.query_one("#tokens-tabs", ContentSwitcher).current = view
        self.query_one("#tokens-viewbar", ViewBar).show(view)
        # Newly built widgets finish mounting before the refresh, so draw after it.
        self.call_after_refresh(self.refresh_chat if view == "tab-chat" else self.retokenize)

    def action_next_preset(self) -> None:
        names = list(self.presets)
        self.preset_index = (self.preset_index + 1) % len(names)
        self.load_preset(names[self.preset_index])

    def load_preset(self, name: str) -> None:
        self.query_one("#tokens-input", TextArea).load_text(self.presets[name])
        self.notify(f"Preset: {name}", timeout=2)
        if name.startswith("the (116, 32)"):
            self.ensure_pane("tab-train")
            self.query_one("#train-regex").value = False
        self.retokenize()

    # ---- BPE replay -------------------------------------------------------------------
    def selection_or_word(self) -> str:
        area = self.query_one("#tokens-input", TextArea)
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
        if start > 0 and word:  # tiktoken words carry their leading space
            word = " " + word
        return word or line or self.text[:40]

    def action_replay(self) -> None:
        slot = self.slots[self.current]
        source = self.selection_or_word()
        self.ensure_pane("tab-replay")
        view = self.query_one("#replay-view", ReplayView)
        enc = slot.encoding if slot.encoding is not None and slot.encoding.ranks else self.slots["cl100k_base"].encoding
        if enc is None:
            self.notify("No encoding with merge ranks is loaded yet.", severity="warning")
            return
        view.load(source[:200], enc)
        self.show_view("tab-replay")
        self.call_after_refresh(view.focus)

    # ---- BPE training -----------------------------------------------------------------
    def on_button_pressed(self, event) -> None:
        if event.button.id == "train-start":
            self._train_pressed()

    def _train_pressed(self) -> None:
        if self._train_cancel is not None:
            self.action_cancel_training()
            return
        try:
            vocab = int(self.query_one("#train-vocab").value or "0")
        except ValueError:
            vocab = 0
        if not 257 <= vocab <= 50_000:
            self.notify("Vocab size must be between 257 and 50,000 (256 bytes + merges).", severity="error")
            return
        path = self.query_one("#train-file").value.strip()
        if path:
            try:
                from pathlib import Path

                data = Path(path).expanduser().read_bytes()
            except OSError as exc:
                self.notify(f"Cannot read {path}: {exc.strerror or exc}", severity="error")
                return
        else:
            data = self.text.encode("utf-8", errors="surrogatepass")
        if not data:
            self.notify("There is no text to train on.", severity="error")
            return
        regex = self.query_one("#train-regex").value
        log = self.query_one("#train-log")
        log.clear()
        log.write(f"training a {vocab:,}-token BPE on {len(data):,} bytes"
                  f"{' split like GPT-4' if regex else ' (raw bytes, no split)'}…")
        self.query_one("#train-progress").update(total=vocab - 256, progress=0)
        self.query_one("#train-start").label = "Cancel"
        self._train_cancel = threading.Event()
        self._train_pieces = {}
        self._train(data, vocab, regex, self._train_cancel)

    @work(thread=True, exclusive=True, group="train-bpe", exit_on_error=False)
    def _train(self, data: bytes, vocab: int, regex: bool, cancel: threading.Event) -> None:
        from lab.bpe import train_bpe
        from lab.tokenizers import ENCODINGS

        pending: list = []

        def progress(p) -> None:
            pending.append(p)
            if len(pending) >= 8 or p.done == p.total:
                batch = pending[:]
                pending.clear()
                self.app.call_from_thread(self._train_progress, batch)

        try:
            merges, pieces = train_bpe(data, vocab, ENCODINGS["cl100k_base"].pat_str if regex else None, progress, cancel)
        except LabError as exc:
            self.app.call_from_thread(self._train_done, None, exc.message)
            return
        if pending:
            self.app.call_from_thread(self._train_progress, pending[:])
        self.app.call_from_thread(self._train_done, (merges, pieces), "")

    def _train_progress(self, batch) -> None:
        log = self.query_one("#train-log")
        for p in batch:
            m = p.last
            self._train_pieces[m.new_id] = m.token
            a, b = (label(self._train_pieces[i] if i >= 256 else bytes([i])) for i in m.pair)
            log.write(f"{m.pair[0]} {m.pair[1]} → {m.new_id} ({a!r}, {b!r})  ×{m.count:,}")
        self.query_one("#train-progress").update(progress=batch[-1].done)

    def _train_done(self, result, error: str) -> None:
        """Runs on the UI thread when training ends (done, cancelled or refused)."""
        self._train_cancel = None
        self.query_one("#train-start").label = "Train"
        log = self.query_one("#train-log")
        if error:
            log.write(f"stopped: {error}")
            return
        merges, pieces = result
        bar = self.query_one("#train-progress")
        asked = bar.total or 0
        bar.update(progress=asked)
        early = " (stopped early: no pair occurs twice any more)" if len(merges) < asked else ""
        log.write(f"done: {len(merges)} merges, vocabulary {256 + len(merges):,}{early}")

    def action_cancel_training(self) -> None:
        if self._train_cancel is not None:
            self._train_cancel.set()

    # ---- chat template ----------------------------------------------------------------
    def on_input_changed(self, event) -> None:
        if (event.input.id or "").startswith("chat-"):
            self.refresh_chat()

    def refresh_chat(self) -> None:
        from lab.types import ChatMessage

        view = self._widget("#chat-view")
        if view is None:  # the chat view has not been opened yet
            return
        session = self.app.session
        backend = session.loaded("chat")
        if backend is None:
            err = session.error("chat")
            view.update(f"The chat model failed to load: {err.message}" if err else "The chat model is loading…")
            return
        if backend.capabilities.logprobs_top_n:  # a remote: no tokenizing over HTTP on every keystroke here
            view.update(f"{backend.info.name} is served over HTTP: its server applies the chat template, and the "
                        "exact text it renders is not visible from here. Load a model in-process to see it.")
            return
        msgs = []
        for role in ("system", "user", "assistant"):
            content = self.query_one(f"#chat-{role}").value
            if content or role == "user":
                msgs.append(ChatMessage(role, content))
        try:
            rendered = backend.render_chat(msgs, add_generation_prompt=msgs[-1].role != "assistant")
        except LabError as exc:
            view.update(f"{backend.info.name}: {exc}")
            return
        tv = self.query_one("#token-view", TokenView)
        special = tv.get_component_rich_style("token-view--special", partial=True)
        muted = tv.get_component_rich_style("token-view--id", partial=True)
        out = Text()
        out.append(f"{backend.info.name} · template from {rendered.template_source} · "
                   f"{len(rendered.ids)} tokens ({len(rendered.special)} special)\n\n", "bold")
        pos = 0
        for span in rendered.special:
            out.append(rendered.text[pos:span.char_start])
            out.append(rendered.text[span.char_start:span.char_end], special)
            out.append(f"{rendered.ids[span.start]}", muted)
            pos = span.char_end
        out.append(rendered.text[pos:])
        out.append("\n\nids: " + " ".join(str(i) for i in rendered.ids), muted)
        view.update(out)

    def palette_commands(self):
        """(name, callback, help) for the command palette while this screen is shown."""
        yield "tokens: next encoding", self.action_next_encoding, "Cycle cl100k, o200k, GPT-2, chat and base"
        yield "tokens: toggle ids", lambda: self.action_toggle("ids"), "Show token ids after the spans"
        yield "tokens: toggle whitespace", lambda: self.action_toggle("ws"), "Make whitespace visible"
        yield "tokens: toggle bytes", lambda: self.action_toggle("bytes"), "Show the UTF-8 bytes"
        yield "tokens: replay merges", self.action_replay, "Replay the BPE merges of the selection or word"
        for view, title in zip(VIEWS, VIEW_TITLES):
            yield f"tokens: view {title}", (lambda v=view: self.show_view(v)), f"Show the {title} view"
        for name in self.presets:
            yield f"tokens: preset {name}", (lambda n=name: self.load_preset(n)), "Load a preset for a talk"

    def on_view_bar_chosen(self, event: ViewBar.Chosen) -> None:
        self.show_view(event.view)
