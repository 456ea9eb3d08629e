"""SVG snapshots (cursor blink off): the Tokens screen's views on the real models (tokenizing
is the same on every CPU), and the screens that show a model's numbers (Next token, Base vs
chat, Failures) on a replay of a recorded real run, so they depend on the layout alone."""

from pathlib import Path

import pytest
from textual.widgets import TextArea

from lab.backends.replay import ReplayBackend
from lab.session import Session, Settings
from tests.helpers import make_test_app, settle

SIZE = (110, 34)
TEXT = "Hello world! 9.11 > 9.9?\nstrawberry 👍🏽 你好"


def prepare(view: str, *keys: str):
    async def run_before(pilot):
        app = pilot.app
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.cursor_blink = False
        area.load_text(TEXT)
        area.move_cursor((1, 3))
        await settle(app, pilot)
        if view:
            app.screen.show_view(view)
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await settle(app, pilot)
        for w in app.screen.query("Input"):
            w.cursor_blink = False
        app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("name,view,keys", [
    ("tokens", "", ("ctrl+t", "ctrl+g")),
    ("compare", "tab-compare", ()),
    ("replay", "", ("ctrl+r", "right", "right", "right")),
    ("train", "tab-train", ()),
    ("chat", "tab-chat", ()),
])
def test_tokens_screen_snapshot(snap_compare, name, view, keys):
    app = make_test_app()
    if name == "train":
        async def run_before(pilot):
            await prepare(view)(pilot)
            pilot.app.screen.query_one("#train-vocab").value = "270"
            await pilot.click("#train-start")
            await settle(pilot.app, pilot)
            pilot.app.screen.query_one("#train-start").blur()
            await pilot.pause()
    else:
        run_before = prepare(view, *keys)
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


# ---- screens that show a model's numbers: replayed from a recording, so the SVGs depend on
# the layout only (model numerics differ between CPUs). scripts/record_replay.py runs these same
# flows on the real models to make tests/data/replay/*.json.

REPLAY_DIR = Path(__file__).parent / "data" / "replay"


def replay_session() -> Session:
    """A session whose chat and base models are the recorded ones (see lab/backends/replay.py)."""
    session = Session(Settings())
    session._backends = {"chat": ReplayBackend.load(REPLAY_DIR / "chat.json"),  # filled as if loaded
                         "base": ReplayBackend.load(REPLAY_DIR / "base.json")}
    session.close = lambda: None
    return session


def next_token_flow(presses):
    async def run_before(pilot):
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        app.screen.query_one("#next-prompt", TextArea).cursor_blink = False
        await pilot.press("escape", "1")
        await settle(app, pilot)
        if presses:
            await pilot.press(*presses)
        await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()

    return run_before


def base_chat_flow(name):
    async def run_before(pilot):
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        s = app.screen
        for role in ("base", "chat"):
            s.pane(role).show_speed = False  # tokens/s differ run to run
        s.query_one("#bc-max-tokens").value = "24"
        s.query_one("#bc-samples").value = "3" if name == "samples" else "1"
        s.query_one("#bc-prompt").cursor_blink = False
        if name == "template":
            await pilot.press("ctrl+t")
        else:
            await pilot.press("ctrl+g")
        await settle(app, pilot)
        s.query_one("#bc-prompt").blur()
        app.clear_notifications()
        await pilot.pause()

    return run_before


def failures_flow(card, samples):
    async def run_before(pilot):
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("f4")
        await settle(app, pilot)
        s = app.screen
        s.show_card(card)
        s.query_one("#fl-samples").value = samples
        s.query_one("#fl-seed").value = "3"
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        s.query_one("#fl-cards").focus()
        app.clear_notifications()
        await pilot.pause()

    return run_before


MODEL_FLOWS = {  # test id -> (run_before, terminal size)
    "next-bars": (next_token_flow(()), (110, 34)),
    "next-surprisal": (next_token_flow(("ctrl+o",)), (110, 34)),
    "next-lens": (next_token_flow(("ctrl+o", "ctrl+o")), (110, 34)),
    "basechat-panes": (base_chat_flow("panes"), (130, 36)),
    "basechat-samples": (base_chat_flow("samples"), (130, 36)),
    "basechat-template": (base_chat_flow("template"), (130, 36)),
    "failures-count": (failures_flow("count", "4"), (120, 40)),
    "failures-tool": (failures_flow("tool", "1"), (120, 40)),
    # the smallest terminal a talk may get, and a big one: nothing lost, the room used
    "next-bars-80x24": (next_token_flow(()), (80, 24)),
    "next-bars-200x50": (next_token_flow(()), (200, 50)),
    "basechat-panes-80x24": (base_chat_flow("panes"), (80, 24)),
    "basechat-panes-200x50": (base_chat_flow("panes"), (200, 50)),
    "failures-count-80x24": (failures_flow("count", "4"), (80, 24)),
    "failures-count-200x50": (failures_flow("count", "4"), (200, 50)),
}


@pytest.mark.parametrize("name", list(MODEL_FLOWS))
def test_model_screen_snapshot(snap_compare, name):
    run_before, size = MODEL_FLOWS[name]
    assert snap_compare(make_test_app(session=replay_session()), run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("role,model", [("chat", "smol"), ("base", "gemma")])
def test_the_recording_is_the_real_models(request, role, model):
    """The replay is honest: its tokens, pieces and distributions are the real model's, computed
    again now (same top token up to a near-tie, probabilities within 0.02)."""
    import numpy as np

    from lab.sampling import log_softmax

    real = request.getfixturevalue(model)
    replay = ReplayBackend.load(REPLAY_DIR / f"{role}.json")
    assert (replay.info.name, replay.info.vocab_size) == (real.info.name, real.info.vocab_size)
    texts, pieces, states = replay.recorded()
    for text, add, special in texts:
        assert replay.tokenize(text, add, special) == real.tokenize(text, add, special)
    assert [replay.token_bytes(i) for i in pieces] == [real.token_bytes(i) for i in pieces]
    assert replay.eos_ids == real.eos_ids
    prompts = [s for s in states if s[0] == len(s[1])]
    checked = prompts + states[::max(1, len(states) // 12)]  # every prompt, and a spread of later states
    for prompt_len, ids in checked:
        want = np.exp(log_softmax(real.logits(list(ids), prompt_len=prompt_len)))
        got = np.exp(log_softmax(replay.logits(list(ids), prompt_len=prompt_len)))
        top = int(np.argmax(got))
        assert top == int(np.argmax(want)) or want.max() - want[top] < 0.02
        for i in np.argsort(-got)[:5]:
            assert got[i] == pytest.approx(want[i], abs=0.02)
