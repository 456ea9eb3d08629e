"""The Base vs chat screen: real streams from both models, checked against the engine."""

import threading

from textual.widgets import Checkbox, Input

from lab.prompts import FEW_SHOT_STOP, few_shot
from lab.sampling import SamplingSettings
from lab.types import ChatMessage
from tests.helpers import make_test_app, settle, shown


async def open_screen(pilot, app, **values):
    await settle(app, pilot)
    await pilot.press("f3")
    await settle(app, pilot)
    s = app.screen
    for key, value in values.items():
        s.query_one(f"#bc-{key}", Input).value = value
    return s


async def test_streams_equal_the_engine_for_the_same_seed():
    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "24", "seed": "5", "samples": "2"})
        s.query_one("#bc-prompt", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        settings = SamplingSettings(temperature=0.8, top_p=0.95)
        base, chat = app.session.loaded("base"), app.session.loaded("chat")
        prompt = s.query_one("#bc-prompt", Input).value
        chat_ids = chat.render_chat([ChatMessage("system", "You are a helpful assistant."),
                                     ChatMessage("user", prompt)]).ids
        for role, backend, ids in (("base", base, base.tokenize(prompt)), ("chat", chat, chat_ids)):
            pane = s.pane(role)
            assert [x.seed for x in pane.samples] == [5, 6]
            for sample in pane.samples:
                ref = backend.generate(list(ids), SamplingSettings(0.8, 0, 0.95, sample.seed), 24)
                assert sample.ids == ref.ids, role
                assert sample.stop_reason == ref.stop_reason
                assert sample.text == ref.text
            assert pane.samples[0].ids != pane.samples[1].ids  # every run differs
            assert f"seed 5 · {len(pane.samples[0].ids)} tokens" in shown(pane)
        del settings


async def test_reroll_uses_new_seeds_and_same_seed_reproduces():
    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "12", "seed": "1"})
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        first = s.pane("chat").samples[0].ids
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert s.pane("chat").samples[0].seed == 2
        s.query_one("#bc-seed", Input).value = "1"
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert s.pane("chat").samples[0].ids == first


async def test_template_view_and_system_prompt_toggle():
    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        chat = app.session.loaded("chat")
        prompt = s.query_one("#bc-prompt", Input).value
        with_system = chat.render_chat([ChatMessage("system", "You are a helpful assistant."),
                                        ChatMessage("user", prompt)])
        out = shown(s.pane("chat"))
        assert "ids: " + " ".join(map(str, with_system.ids)) in " ".join(out.split())
        assert f"{len(with_system.ids)} tokens, {len(with_system.special)} special" in out
        assert "You are a helpful assistant." in out
        s.query_one("#bc-system-on", Checkbox).value = False
        await pilot.pause()
        without = chat.render_chat([ChatMessage("user", prompt)])
        out = shown(s.pane("chat"))
        assert "You are a helpful assistant." not in out
        assert "You are a helpful AI assistant named SmolLM" in out  # the template's own default
        assert f"{len(without.ids)} tokens" in out
        assert "Who·are·you" in shown(s.pane("base"))  # the base model gets the plain text


async def test_few_shot_wraps_the_prompt_for_the_base_model():
    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "40", "temperature": "0"})
        s.query_one("#bc-fewshot", Checkbox).value = True
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert "Human:·What·is·the·capital·of·France?" in shown(s.pane("base"))
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        sample = s.pane("base").samples[0]
        base = app.session.loaded("base")
        prompt = s.query_one("#bc-prompt", Input).value
        ref = base.generate(base.tokenize(few_shot(prompt)), SamplingSettings(temperature=0), 40)
        stops = FEW_SHOT_STOP in ref.text
        assert ref.text.startswith(sample.text)  # same greedy tokens, cut at the next "Human:"
        assert (FEW_SHOT_STOP in sample.text) == stops  # it ran exactly up to that point, no further
        assert sample.stop_reason.startswith("stop text") if stops else sample.stop_reason == ref.stop_reason


async def test_cancel_stops_both_streams_and_leaves_no_thread():
    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "1000", "temperature": "1.0"})
        before = {t.name for t in threading.enumerate()}
        await pilot.press("ctrl+g")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await settle(app, pilot)
        stops = {role: s.pane(role).samples[0].stop_reason for role in ("base", "chat")}
        for role in ("base", "chat"):
            sample = s.pane(role).samples[0]
            assert sample.stop_reason in ("cancelled", "eos"), role
            assert len(sample.events) < 1000
        assert "cancelled" in stops.values()  # escape did stop a stream that was still running
        assert not [w for w in app.workers if w.group.startswith("pane-") and w.is_running]
        assert {t.name for t in threading.enumerate()} <= before | {"MainThread"}


async def test_a_pane_whose_model_fails_says_why_and_the_other_works(tmp_path):
    from lab.session import Session, Settings
    from screens.app import make_app

    session = Session(Settings(base_model=str(tmp_path / "nope.gguf")))
    app = make_app(session=session)
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "8"})
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert "the base model failed to load: no file or folder" in shown(s.pane("base"))
        assert len(s.pane("chat").samples[0].events) > 0


async def test_regurgitation_marks_how_long_the_base_model_repeats_the_original():
    from lab.prompts import ORIGINALS, matching_prefix

    app = make_test_app()
    async with app.run_test(size=(130, 40)) as pilot:
        s = await open_screen(pilot, app)
        s.load_preset("regurgitation")
        s.apply_step({"temperature": 0.0, "max_tokens": 24, "samples": 1, "run": True})
        await settle(app, pilot)
        sample = s.pane("base").samples[0]
        prompt = s.query_one("#bc-prompt", Input).value
        original = ORIGINALS[prompt]
        chars = matching_prefix(sample.text, original)
        tokens = 0
        for end in (sum(len(e.text) for e in sample.events[:k + 1]) for k in range(len(sample.events))):
            if end > chars:
                break
            tokens += 1
        assert f"repeats the original for {tokens} tokens ({chars} characters)" in shown(s.pane("base"))
        assert "repeats the original" not in shown(s.pane("chat"))  # the chat pane answers; nothing to compare


async def test_answers_for_an_earlier_prompt_say_so_until_the_next_run():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        s = await open_screen(pilot, app, **{"max-tokens": "4"})
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        marker = "These answers are for an earlier prompt"
        assert marker not in shown(s.pane("chat"))
        await pilot.press("ctrl+l")  # a preset changes the prompt
        await pilot.pause()
        assert marker in shown(s.pane("chat")) and marker in shown(s.pane("base"))
        s.load_preset("who are you?")  # back to the prompt that was asked: current again
        s.query_one("#bc-fewshot", Checkbox).value = False
        await pilot.pause()
        assert marker not in shown(s.pane("chat"))
        s.query_one("#bc-system-on", Checkbox).value = False  # only the chat model's request changes
        await pilot.pause()
        assert marker in shown(s.pane("chat")) and marker not in shown(s.pane("base"))
        assert "system prompt: off" in str(s.query_one("#bc-system-on", Checkbox).label)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert marker not in shown(s.pane("chat"))


async def test_the_repeat_count_on_a_hand_made_sample():
    from lab.types import TokenEvent
    from screens.widgets.pane_view import Sample

    app = make_test_app(load_models=False)
    async with app.run_test(size=(100, 30)) as pilot:
        s = await open_screen(pilot, app)
        pane = s.pane("base")
        pane.start([7])
        pane.original = " jumps over the lazy dog."
        texts = [" jumps", " over", " the", " lazy", " cat", " dog"]
        pane.samples = [Sample(7, [TokenEvent(i, 1000 + i, t.encode(), 0.5, 0.5, (), t) for i, t in enumerate(texts)],
                               "length")]
        pane._sync_blocks()
        pane.redraw()
        await pilot.pause()
        # " jumps over the lazy " matches (21 characters: the space of " cat" too); 4 whole tokens
        assert "repeats the original for 4 tokens (21 characters)" in shown(pane)
