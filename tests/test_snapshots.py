"""One SVG snapshot per view of the Tokens screen (cursor blink off, models loaded, seeded)."""

import pytest
from textual.widgets import TextArea

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


@pytest.mark.parametrize("name,presses", [("bars", ()), ("surprisal", ("ctrl+o",)), ("lens", ("ctrl+o", "ctrl+o"))])
def test_next_token_snapshot(snap_compare, name, presses):
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

    assert snap_compare(make_test_app(), run_before=run_before, terminal_size=(110, 34))


@pytest.mark.parametrize("name", ["panes", "samples", "template"])
def test_base_chat_snapshot(snap_compare, name):
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

    assert snap_compare(make_test_app(), run_before=run_before, terminal_size=(130, 36))


@pytest.mark.parametrize("card,samples", [("count", "4"), ("tool", "1")])
def test_failures_snapshot(snap_compare, card, samples):
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

    assert snap_compare(make_test_app(), run_before=run_before, terminal_size=(120, 40))
