"""Talk mode, driven as a presenter would: PageDown/PageUp (a clicker), arrows where no text
box has focus, F9 for the step list, Esc to leave; each step puts its screen in its state."""

import gc

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

        assert gc.get_freeze_count() > 0  # the warm lab is out of the full collections while the talk runs
        await pilot.press("escape")
        await pilot.pause()
        assert app.talk is None and not app.screen.query(TalkCaption)
        assert gc.get_freeze_count() == 0  # left: the collector has it all back
        assert app.screen.card.key == "compare"  # the lab stays as it is
        await pilot.press("pagedown")  # keys are the screen's own again: the card list pages down
        await pilot.pause()
        assert app.talk is None and app.screen.card.key == "memory"


async def test_a_step_that_names_a_model_loads_it_for_its_role_first():
    from lab.session import Session, Settings

    track = parse_track({"step": [{"screen": "next", "role": "base", "model": "smollm2-135m-instruct",
                                   "prompt": "The capital of France is", "caption": "same model, base role"}]},
                        "t.toml")
    assert not track.problems
    session = Session(Settings())  # its own: the shared test session keeps its models
    app = make_test_app(session=session, talk=track)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert session.model_name("base") == "smollm2-135m-instruct"
        assert app.screen.explorer is not None and app.screen.explorer.backend is session.loaded("base")
        assert "▶ 1/1" in caption_text(app)


async def test_every_step_of_the_shipped_track_puts_its_screen_in_its_state():
    """Walk the default track (its runs and keys left out: the rehearsal test runs models) and
    read back, on each screen, the state the step names."""
    from dataclasses import replace

    from textual.widgets import TextArea

    from lab.prompts import PRESETS
    from lab.talk import load_track
    from screens.tokens import load_presets

    track = load_track()
    track = replace(track, steps=tuple(replace(s, keys=(), fields={k: v for k, v in s.fields.items() if k != "run"})
                                       for s in track.steps))
    app = make_test_app(load_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.start_talk(track, go=False)
        for i, step in enumerate(track.steps):
            await app.talk.go(i)
            await settle(app, pilot)
            s, f = app.screen, step.fields
            assert app.current_mode == step.screen and f"▶ {step.index}/" in caption_text(app), step.name
            if step.screen == "tokens":
                assert s.text == f.get("text", load_presets().get(f.get("preset"))), step.name
                assert s.current == f.get("encoding", s.current) and s.active_view == f"tab-{f.get('view', 'tokens')}"
            elif step.screen == "next":
                assert s.query_one("#next-prompt", TextArea).text == f["prompt"] and s.role == f.get("role", s.role)
                assert s.view == f.get("view", s.view)
                for key in ("temperature", "seed"):
                    if key in f:
                        assert s.number(key) == f[key], (step.name, key)
            elif step.screen == "basechat":
                assert s.query_one("#bc-prompt", Input).value == f.get("prompt", PRESETS.get(f.get("preset")))
                for key, box in (("samples", "samples"), ("seed", "seed"), ("max_tokens", "max-tokens")):
                    if key in f:
                        assert s.number(box) == f[key], (step.name, key)
            elif step.screen == "failures":
                assert s.card.key == f["card"] and all(s.values()[k] == v for k, v in f.get("values", {}).items())
                assert s.number("samples") == f.get("samples", s.number("samples"))
            elif step.screen == "training":
                assert app.training.snapshot().preset == f["preset"]
            elif step.screen == "post":
                from lab.sft_data import conversation_index

                assert s.view_name == f["view"] and s.query_one("#post-switch").current == f"post-{f['view']}"
                if "conversation" in f:
                    assert s.index == conversation_index(s.examples, f.get("task", ""), f["conversation"])
                    assert s.examples[s.index].task == f.get("task", s.examples[s.index].task)
        assert {s.screen for s in track.steps} >= {"tokens", "next", "basechat", "failures", "training", "post"}


async def test_the_notes_follow_the_step_on_screen_in_a_second_terminal(tmp_path, monkeypatch):
    from screens.talk import follow_notes

    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    track = parse_track(TRACK, "test.toml", model_exists=lambda name: True)
    app = make_test_app(load_models=False, talk=track)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        lines: list[str] = []
        follow_notes(lines.append, poll=0.01, stop=lambda: len(lines) >= 3)
        assert "step 1/4 · few-shot" in lines[1] and lines[2] == "Say: a base model plays an assistant."
        await pilot.press("pagedown")
        await settle(app, pilot)
        lines.clear()
        follow_notes(lines.append, poll=0.01, stop=lambda: len(lines) >= 3)
        assert "step 2/4 · counting" in lines[1] and lines[2] == "(no notes for this step)"
