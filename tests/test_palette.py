"""The command palette finds each screen's own commands (typed by name, as a person would)
and runs them; the app's commands appear once."""

import pytest
from textual.command import CommandPalette
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, OptionList

from tests.helpers import make_test_app, settle, type_text


async def palette_hits(pilot, app, query: str) -> list[str]:
    """Open the palette, type `query`, and return the commands it offers (plain text)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    assert CommandPalette.is_open(app)
    await type_text(pilot, query)
    results = app.screen.query_one("#--results", Vertical).query_one(OptionList)
    hits: list[str] = []
    for _ in range(100):  # the providers answer asynchronously
        await pilot.pause(0.05)
        hits = [str(results.get_option_at_index(i).prompt).split("\n")[0] for i in range(results.option_count)]
        if hits and not any("Searching" in h for h in hits):
            break
    return hits


async def run_command(pilot, app, name: str) -> None:
    hits = await palette_hits(pilot, app, name)
    assert any(h.startswith(name) for h in hits), (name, hits)
    results = app.screen.query_one("#--results", Vertical).query_one(OptionList)
    exact = [i for i, h in enumerate(hits) if h == name]
    results.highlighted = exact[0] if exact else next(i for i, h in enumerate(hits) if h.startswith(name))
    await pilot.press("enter")
    await pilot.pause()
    assert not CommandPalette.is_open(app)


async def test_base_chat_and_failures_commands_run_from_the_palette():
    app = make_test_app(load_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        await run_command(pilot, app, "basechat: preset few-shot assistant")
        s = app.screen
        assert s.query_one("#bc-prompt", Input).value == "Why is the sky blue?"
        assert s.query_one("#bc-fewshot", Checkbox).value is True
        await pilot.press("f4")
        await pilot.pause()
        await run_command(pilot, app, "failures: card use a tool")
        assert app.screen.card.key == "tool"


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_screenshot_is_offered_once(size):
    app = make_test_app(load_models=False)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        hits = await palette_hits(pilot, app, "screenshot")
        assert [h for h in hits if "creenshot" in h] == ["app: save screenshot"]


async def test_tokens_commands_run_from_the_palette():
    app = make_test_app(load_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await run_command(pilot, app, "tokens: preset emoji")
        await settle(app, pilot)
        assert "👍🏽" in app.screen.text
        await run_command(pilot, app, "tokens: clear the text")
        await settle(app, pilot)
        assert app.screen.text == ""


async def test_training_commands_run_from_the_palette():
    app = make_test_app(load_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f5")
        await settle(app, pilot)
        await run_command(pilot, app, "training: preset cpu")  # exactly "cpu", not "cpu-quick"
        await pilot.pause()
        assert app.training.snapshot().preset == "cpu"
