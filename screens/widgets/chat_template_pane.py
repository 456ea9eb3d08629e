"""The Chat template view: a system, user and assistant message as the chat model's own
template renders them, special tokens highlighted with their ids, and every id below.

Rendering (the template, then the tokenizer) runs in this widget's worker, which returns
the `RenderedChat`; the UI thread draws it."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from screens.widgets.token_view import TokenView

ROLES = ("system", "user", "assistant")


class ChatTemplatePane(VerticalScroll):
    """Its own three inputs, view and worker; `refresh_chat()` redraws (e.g. when models change)."""

    DEFAULT_CSS = """
    ChatTemplatePane { height: 1fr; }
    ChatTemplatePane #chat-inputs { height: auto; }
    ChatTemplatePane #chat-inputs Input { height: 3; }
    ChatTemplatePane #chat-view { height: auto; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="chat-inputs"):
            yield Input("You are a helpful assistant.", placeholder="system (blank: none)", id="chat-system")
            yield Input("How many r are in strawberry?", placeholder="user", id="chat-user")
            yield Input("", placeholder="assistant (blank: the model answers next)", id="chat-assistant")
        yield TokenView(id="chat-view")

    def on_mount(self) -> None:
        self.refresh_chat()

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_chat()

    def refresh_chat(self) -> None:
        from lab.types import ChatMessage

        if not self.is_mounted:
            return
        session = self.app.session
        backend = session.loaded("chat")
        view = self.query_one("#chat-view", TokenView)
        if backend is None:
            status = session.role_status("chat")
            view.update(status[:1].upper() + status[1:])
            return
        msgs = []
        for role in ROLES:
            content = self.query_one(f"#chat-{role}", Input).value
            if content or role == "user":
                msgs.append(ChatMessage(role, content))
        self._render_chat(backend, msgs)

    @work(thread=True, exclusive=True, group="chat-template", exit_on_error=False)
    def _render_chat(self, backend, msgs):
        """Returns (backend name, RenderedChat), or the reason it cannot render (a str)."""
        try:
            return backend.info.name, backend.render_chat(msgs, add_generation_prompt=msgs[-1].role != "assistant")
        except LabError as exc:
            return f"{backend.info.name}: {exc}"

    @on(Worker.StateChanged)
    def _rendered(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "chat-template" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        view = self.query_one("#chat-view", TokenView)
        result = event.worker.result if event.state == WorkerState.SUCCESS else f"failed: {event.worker.error}"
        if isinstance(result, str):
            view.update(result)
            return
        name, rendered = result
        special = view.get_component_rich_style("token-view--special", partial=True)
        muted = view.get_component_rich_style("token-view--id", partial=True)
        out = Text()
        out.append(f"{name} · template from {rendered.template_source} · "
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
