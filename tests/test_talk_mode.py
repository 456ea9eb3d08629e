"""Talk mode, driven as a presenter would: PageDown/PageUp (a clicker), arrows where no text
box has focus, F9 for the step list, Esc to leave; each step puts its screen in its state."""

from textual.widgets import Checkbox, Input

from lab.talk import parse_track
from screens.talk import TalkCaption
from screens.widgets.number_field import NumberField
from tests.helpers import make_test_app, settle, shown

TRACK = {"title": "test talk", "step": [
    {"screen": "basechat", "caption": "few-shot", "preset": "few-shot assistant", "seed": 4, "samples": 2,
     "max_tokens": 8, "notes": "Say: a base model plays an assistant."},
    {"screen": "failures", "caption": "counting", "card": "count", "values": {"word": "bubble", "letter": "b"},
     "samples": 3, "seed": 2},
    {"screen": "nowhere", "caption": "a bad step"},
    {"screen": "failures", "caption": "decimals", "card": "compare", "values": {"a": "3.8", "b": "3.11"}},
]}


def caption_text(app) -> str:
    return shown(app.screen.query_one(TalkCaption))


async def test_a_presenter_walks_the_track_with_a_clicker():
    track = parse_track(TRACK, "test.toml", model_exists=lambda name: True)
    app = make_test_app(load_models=False, talk=track)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "basechat"
        s = app.screen
        assert s.query_one("#bc-prompt", Input).value == "Why is the sky blue?"
        assert s.query_one("#bc-fewshot", Checkbox).value is True
        assert s.query_one("#bc-seed", NumberField).number == 4 and s.query_one("#bc-samples", NumberField).number == 2
        assert "▶ 1/4" in caption_text(app) and "few-shot" in caption_text(app)

        await pilot.press("pagedown")
        await settle(app, pilot)
        s = app.screen
        assert app.current_mode == "failures" and s.card.key == "count"
        assert s.values() == {"word": "bubble", "letter": "b"}
        assert "truth     3" in shown(s.query_one("#fl-info")) and "b's in bubble" in shown(s.query_one("#fl-blurb"))
        assert "▶ 2/4" in caption_text(app)

        await pilot.press("pagedown")  # the bad step says what is wrong; the talk goes on
        await settle(app, pilot)
        assert "unknown screen 'nowhere'" in caption_text(app) and app.screen.query_one(TalkCaption).has_class("-error")
        await pilot.press("right")  # an arrow steps too when no text box has focus
        await settle(app, pilot)
        assert app.screen.card.key == "compare" and "▶ 4/4" in caption_text(app)
        await pilot.press("pagedown")  # past the end: stays on the last step
        await settle(app, pilot)
        assert "▶ 4/4" in caption_text(app)

        await pilot.press("home")
        await settle(app, pilot)
        assert app.current_mode == "basechat" and "▶ 1/4" in caption_text(app)
        app.action_talk_notes()
        await pilot.pause()
        assert "a base model plays an assistant" in caption_text(app)

        app.screen.query_one("#bc-prompt", Input).focus()
        await pilot.press("right", "space")  # typing: arrows and space edit the text box
        await pilot.pause()
        assert "▶ 1/4" in caption_text(app) and app.screen.query_one("#bc-prompt", Input).value.endswith(" ")
        await pilot.press("pagedown")  # PageDown always steps
        await settle(app, pilot)
        assert app.current_mode == "failures"

        await pilot.press("f9")
        await pilot.pause()
        await pilot.press("down", "down", "enter")  # from step 2, two down: step 4
        await settle(app, pilot)
        assert app.screen.card.key == "compare"

        await pilot.press("escape")
        await pilot.pause()
        assert app.talk is None and not app.screen.query(TalkCaption)
        assert app.screen.card.key == "compare"  # the lab stays as it is
        await pilot.press("pagedown")  # keys are the screen's own again: the card list pages down
        await pilot.pause()
        assert app.talk is None and app.screen.card.key == "memory"
