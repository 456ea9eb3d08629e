"""The Failures screen, driven by keys: truth, tokens vs letters, real answers, pass rates."""

import re

from textual.widgets import Input

from lab.failures import CARD_BY_KEY, make_prompt, score
from lab.sampling import SamplingSettings
from screens.widgets.card_info import CardInfo
from screens.widgets.result_view import ResultView
from tests.helpers import make_test_app, settle, shown, type_text


async def open_screen(pilot, app, samples="3"):
    await settle(app, pilot)
    await pilot.press("f4")
    await settle(app, pilot)
    s = app.screen
    s.query_one("#fl-samples", Input).value = samples
    return s


async def replace_text(pilot, box: Input, text: str) -> None:
    box.focus()
    await pilot.press("end", *["backspace"] * len(box.value))
    await type_text(pilot, text)
    await pilot.pause()


def info_text(s) -> str:
    return shown(s.query_one("#fl-info", CardInfo))


async def test_strawberry_card_shows_truth_and_the_tokenizers_split():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        text = info_text(s)
        assert "truth     3" in text
        assert "person sees s t r a w b e r r y" in text
        backend = app.session.loaded("chat")
        prompt = make_prompt(backend, CARD_BY_KEY["count"].experiment().variants[0], "chat")
        ids = backend.tokenize(prompt.text, add_special=False, parse_special=True)
        assert list(ids) == list(prompt.ids)
        # the word's tokens, found from the tokenizer's own pieces and their byte offsets
        data, pos, pieces = prompt.text.encode(), 0, []
        start = data.rfind(b"strawberry")
        for t in ids:
            p = backend.token_bytes(t)
            if pos + len(p) > start and pos < start + len(b"strawberry"):
                pieces.append(p.decode())
            pos += len(p)
        assert "model sees " + "|".join(pieces) in text
        assert f"{len(pieces)} tokens" in text


async def test_typing_a_word_and_letter_recomputes_the_truth():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        await replace_text(pilot, s.query_one("#fl-count-word", Input), "Mississippi")
        await replace_text(pilot, s.query_one("#fl-count-letter", Input), "s")
        assert "truth     4" in info_text(s) and "M i s s i s s i p p i" in info_text(s)
        await replace_text(pilot, s.query_one("#fl-count-letter", Input), "xy")
        assert "Type one letter." in info_text(s)
        await pilot.press("ctrl+g")  # nothing to ask: no run, no crash
        await settle(app, pilot)
        assert app.is_running and not s.query_one("#fl-result-0", ResultView).answers


async def test_pass_rate_on_screen_is_the_checker_applied_to_the_answers_shown():
    from screens.failures import AnswerUpdate

    app = make_test_app()
    updates = []
    hook = lambda m: updates.append(m) if isinstance(m, AnswerUpdate) else None  # noqa: E731
    async with app.run_test(size=(120, 50), message_hook=hook) as pilot:
        s = await open_screen(pilot, app, samples="3")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        view = s.query_one("#fl-result-0", ResultView)
        screen_text = shown(view)
        answers = view.answers
        assert len(answers) == 3 and all(a.done for a in answers)
        for a in answers:
            assert a.text.replace("\n", " ⏎ ")[:30] in screen_text.replace("\n", " ")
        variant = CARD_BY_KEY["count"].experiment().variants[0]
        expected = sum(variant.checker(a.text).passed for a in answers)
        m = re.search(r"pass (\d+)/(\d+)", screen_text)
        assert m and (int(m.group(1)), int(m.group(2))) == (expected, 3)
        assert screen_text.count("✓") == expected and screen_text.count("✗") == 3 - expected
        assert f"checker: {variant.checker.description}" in screen_text
        assert 'number after "answer is" / "Answer:", else the first number == 3' in screen_text
        # the answers are the model's: seed 1 through the engine gives the same text
        backend = app.session.loaded("chat")
        prompt = make_prompt(backend, variant, "chat")
        ref = backend.generate(list(prompt.ids), SamplingSettings(temperature=0.7, top_p=0.95, seed=1),
                               variant.max_tokens)
        assert ref.text.strip() == answers[0].text
        assert [len(m.updates) for m in updates] == [1] * len(updates)  # sampled live: shown as each streams
        # run again: replayed from the cache at once, the same answers, with no worker and no message
        updates.clear()
        await pilot.press("ctrl+g")
        assert [a.text for a in view.answers] == [a.text for a in answers]
        assert not updates and not [w for w in app.workers if w.group == "failures" and w.is_running]
        await settle(app, pilot)
        assert all(a.cached for a in view.answers) and "cached" in shown(view)
        assert shown(view).replace(" · cached", "") == screen_text
        # re-roll: the next seeds
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert [a.seed for a in view.answers] == [4, 5, 6] and s.query_one("#fl-seed", Input).value == "4"


async def test_side_by_side_variants_each_get_a_pass_rate():
    app = make_test_app()
    async with app.run_test(size=(120, 50)) as pilot:
        s = await open_screen(pilot, app, samples="1")
        while s.card.key != "arithmetic":
            await pilot.press("ctrl+l")
        await pilot.pause()
        assert "truth     5" in info_text(s)  # (19 - 2*2) / 3: not a number of the question
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        first, working = s.query_one("#fl-result-0", ResultView), s.query_one("#fl-result-1", ResultView)
        assert working.display and first.variant.name == "answer first" and working.variant.name == "working first"
        for view in (first, working):
            text = shown(view)
            passed = sum(score(view.variant, a).passed for a in view.answers)
            assert f"pass {passed}/1" in text and "checker: " + view.variant.checker.description[:30] in text


async def test_tool_card_shows_the_program_its_sandboxed_output_and_the_corrected_answer():
    app = make_test_app()
    async with app.run_test(size=(120, 50)) as pilot:
        s = await open_screen(pilot, app, samples="1")
        s.show_card("tool")
        s.query_one("#fl-seed", Input).value = "3"
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        tool = s.query_one("#fl-result-1", ResultView)
        a = tool.answers[0]
        assert a.program and a.run is not None
        text = shown(tool)
        assert a.program.split("\n")[0] in text and "sandbox: " + a.run["message"] in text
        assert "corrected answer: " in text
        assert f"pass {int(score(tool.variant, a).passed)}/1" in text


async def test_escape_cancels_and_a_failed_model_leaves_the_screen_usable(tmp_path, monkeypatch):
    import lab.failures
    from lab.session import Session, Settings

    real = lab.failures.run_answers
    first = []

    def gated(backend, variant, prompt, settings, seeds, emit, cancel, *args, **kwargs):
        # The first answer streams at once; the rest wait for Escape, so a fast machine cannot finish all ten
        # before the key arrives. The model still answers: the gate only holds back when it starts.
        if first and first[0] != seeds[0]:
            cancel.wait(300)
        first[:] = first or [seeds[0]]
        return real(backend, variant, prompt, settings, seeds, emit, cancel, *args, **kwargs)

    monkeypatch.setattr(lab.failures, "run_answers", gated)

    app = make_test_app(session=Session(Settings(chat_model=str(tmp_path / "missing.gguf"))))
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app, samples="10")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert "failed to load" in shown(s.query_one("#fl-result-0", ResultView))
        await pilot.press("ctrl+n")  # the base model still works
        await settle(app, pilot)
        await pilot.press("ctrl+g")
        view = s.query_one("#fl-result-0", ResultView)
        for _ in range(30_000):  # until the first answer streams (9 are still to come); a bound only for a hang
            if any(view.answers):
                break
            await pilot.pause(0.02)
        assert any(view.answers), "no answer ever arrived"
        await pilot.press("escape")
        await settle(app, pilot)
        assert any(a is not None and a.stop == "cancelled" for a in view.answers), [(a.stop, a.text[:20]) if a else None for a in view.answers]
        assert not [w for w in app.workers if w.group == "failures" and w.is_running]
        assert app.is_running and app._exception is None


async def test_hostile_programs_leave_the_app_running_and_responsive():
    from lab.sandbox import Limits, run_python

    # The wall limit is far above the CPU limit: a busy loop must end on CPU time however loaded the machine.
    hostile = ["import os\nwhile True:\n    os.fork()", "while True:\n    pass", "x = bytearray(50 * 2**30)",
               "print(open('/etc/passwd').read())", "import socket", "print('x' * 100_000_000)"]
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        results = []
        app.run_worker(lambda: results.extend(run_python(c, Limits(cpu_seconds=1, wall_seconds=120)) for c in hostile),
                       thread=True, group="hostile")
        await pilot.press("ctrl+l", "ctrl+l")  # the UI keeps answering keys meanwhile
        assert s.card.key == "backwards"
        await settle(app, pilot)
        assert [r.status for r in results] == ["refused", "cpu", "memory", "refused", "refused", "output"]
        assert app.is_running and app._exception is None
