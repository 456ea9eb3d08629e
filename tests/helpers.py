"""Helpers for Pilot tests: build the app, wait for models, type like a person, read the screen."""

from __future__ import annotations

from textual.widgets import Static

from lab.session import Session, Settings
from screens.headless import settle  # noqa: F401  (the tests import it from here)

_SESSION: Session | None = None


def shared_session() -> Session:
    """One session for all UI tests, so the real models load once per test run."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session(Settings())
        _SESSION.close = lambda: None  # the app closes its session on exit; keep this one alive
    defaults = Settings()
    for role, name in (("base", defaults.base_model), ("chat", defaults.chat_model)):
        if _SESSION.model_name(role) != name:  # a test switched models (a key like Post-training's o): not the next one
            _SESSION.use(role, name)
    return _SESSION


def make_test_app(**kwargs):
    from screens.app import make_app

    import tempfile
    from pathlib import Path

    kwargs.setdefault("session", shared_session())
    kwargs.setdefault("training_dir", Path(tempfile.mkdtemp(prefix="deepdive-tiny-")))  # never the user's cache
    kwargs.setdefault("sft_dir", Path(tempfile.mkdtemp(prefix="deepdive-tiny-chat-")))
    kwargs.setdefault("failures_dir", Path(tempfile.mkdtemp(prefix="deepdive-failures-")))
    kwargs.setdefault("samples_dir", Path(tempfile.mkdtemp(prefix="deepdive-samples-")))
    app = make_app(**kwargs)
    app.sft_config = small_sft_config(app.sft_dir)  # a key that starts a Post-training run costs seconds, not minutes
    return app


def small_sft_config(folder):
    """A tiny-chat run small enough for a UI test: a one-layer GPT, a slice of the corpus, a short pretraining;
    its SFT stage outlasts any test (a test stops it, or shortens it), so "stop" never races "finished"."""
    from lab.sft import SFTConfig

    return SFTConfig(n_layer=1, n_head=2, n_embd=32, bpe_vocab=300, pretrain_bytes=20_000, task_docs=100,
                     pretrain_iters=20, max_iters=20_000, lr_decay_iters=20_000, block_size=128, batch_size=4,
                     counts=(40, 0, 0, 40), eval_interval=10, eval_iters=1, sample_interval=10, sample_prompts=1,
                     sample_tokens=12, out_dir=str(folder))


KEY_NAMES = {" ": "space", "\n": "enter", "\t": "tab", "!": "exclamation_mark", "?": "question_mark",
             ",": "comma", ".": "full_stop", ":": "colon", ";": "semicolon", "(": "left_parenthesis",
             ")": "right_parenthesis", "+": "plus", "-": "minus", "=": "equals_sign", "*": "asterisk",
             "'": "apostrophe", '"': "quotation_mark", "/": "slash", "<": "less_than_sign", ">": "greater_than_sign",
             "_": "underscore", "[": "left_square_bracket", "]": "right_square_bracket", "#": "number_sign"}


async def type_text(pilot, text: str) -> None:
    """Type ASCII key by key; other characters arrive as a paste, the way an input method sends them."""
    from textual import events

    i = 0
    while i < len(text):
        j = i
        if text[i].isascii():
            while j < len(text) and text[j].isascii():
                j += 1
            await pilot.press(*[KEY_NAMES.get(ch, ch) for ch in text[i:j]])
        else:
            while j < len(text) and not text[j].isascii():
                j += 1
            pilot.app.post_message(events.Paste(text[i:j]))  # as the terminal delivers a paste
            await pilot.pause()
        i = j


async def until(pilot, condition, tries: int = 6000) -> bool:
    """Wait for `condition()` (a run or job in its own thread), polling every 0.05 s: a bound on polls, not
    a time limit. Returns whether it held."""
    for _ in range(tries):
        if condition():
            return True
        await pilot.pause(0.05)
    return condition()


def shown(widget) -> str:
    """The plain text a widget shows: a Static's content, or a container's Statics, top to bottom."""
    if isinstance(widget, Static):
        return str(widget.render())
    return "\n".join(str(s.render()) for s in widget.query(Static) if s.display)
