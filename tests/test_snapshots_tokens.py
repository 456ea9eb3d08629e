"""Tokens screen snapshots at 80x24 (no control lost; what does not fit scrolls) and 200x50."""

import pytest
from textual.widgets import TextArea

from tests.helpers import make_test_app, settle

TEXT = "Hello world!\tTabs\r\nCRLF, a lone CR\rNEL\x85LS\u2028PS\u2029 9.11 > 9.9?\nstrawberry 👍🏽 你好 bad \udcff"


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


@pytest.mark.parametrize("name,size,view,keys", [
    ("tokens", (80, 24), "", ("ctrl+t", "ctrl+g")),
    ("tokens", (200, 50), "", ("ctrl+t", "ctrl+g")),
    ("compare", (80, 24), "tab-compare", ("ctrl+g",)),
    ("compare", (200, 50), "tab-compare", ("ctrl+g",)),
    ("replay", (80, 24), "", ("ctrl+r", "right", "right")),
    ("train", (80, 24), "tab-train", ()),
    ("chat", (80, 24), "tab-chat", ()),
    ("chat", (200, 50), "tab-chat", ()),
])
def test_tokens_snapshot(snap_compare, name, size, view, keys):
    assert snap_compare(make_test_app(), run_before=prepare(view, *keys), terminal_size=size)
