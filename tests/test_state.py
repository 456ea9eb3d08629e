"""Save the lab's state, reset, reopen: every screen comes back as it was; a damaged or newer
file loads nothing; a card's answers and a run's samples export as Markdown and JSON."""

import json


from screens.widgets.result_view import ResultView
from tests.helpers import make_test_app, settle, shown


async def prepare(app, pilot):
    await settle(app, pilot)
    await pilot.press("f3")
    await settle(app, pilot)
    s = app.screen
    s.apply_step({"preset": "who are you?", "samples": 2, "seed": 9, "max_tokens": 6, "run": True})
    await settle(app, pilot)
    await pilot.press("f4")
    await settle(app, pilot)
    app.screen.apply_step({"card": "count", "values": {"word": "banana", "letter": "a"}, "samples": 2, "seed": 4,
                           "run": True})
    await settle(app, pilot)


def snapshot(app) -> dict:
    screens = app._mode_screens()
    return {mode: shown(screen.query_one("#pane-base" if mode == "basechat" else "#fl-result-0"))
            for mode, screen in screens.items() if mode in ("basechat", "failures")}


async def test_save_reset_and_reopen_bring_every_screen_back(tmp_path):
    app = make_test_app(screenshot_dir=tmp_path / "shots")
    async with app.run_test(size=(120, 40)) as pilot:
        await prepare(app, pilot)
        before = snapshot(app)
        assert "seed 9" in before["basechat"] and "#2 seed 5" in before["failures"]
        saved = app.action_save_state(str(tmp_path / "lab.json"))
        assert saved and json.loads(saved.read_text())["format"] == "deepdive-lab-state"
        await app.action_reset_screen()  # failures back to its defaults
        await settle(app, pilot)
        assert app.screen.values()["word"] == "strawberry" and not app.screen.query_one(ResultView).answers
        await pilot.press("f3")
        await app.action_reset_screen()
        await settle(app, pilot)
        assert not app.screen.pane("base").samples

        assert await app.open_state(str(saved))
        await settle(app, pilot)
        assert app.current_mode == "failures" and app.screen.values() == {"word": "banana", "letter": "a"}
        assert snapshot(app) == before

        md = app.export_screen("md")
        js = json.loads(app.export_screen("json").read_text())
        assert "# Count a letter" in md.read_text() and "seed 4" in md.read_text()
        assert js["truth"] == "3" and len(js["variants"][0]["answers"]) == 2
        assert js["variants"][0]["passed"] == sum(a["passed"] for a in js["variants"][0]["answers"])


async def test_the_tokens_screen_comes_back_with_its_exact_text(tmp_path):
    app = make_test_app(load_models=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        s = app.screen
        s.apply_step({"text": "a\r\nb\u2028c\td", "encoding": "o200k_base", "view": "compare"})
        s.show_ids = True
        await settle(app, pilot)
        saved = app.action_save_state(str(tmp_path / "t.json"))
        await app.action_reset_screen()
        await settle(app, pilot)
        assert app.screen.text != "a\r\nb\u2028c\td"
        assert await app.open_state(str(saved))
        await settle(app, pilot)
        s = app.screen
        assert (s.text, s.current, s.active_view, s.show_ids) == ("a\r\nb\u2028c\td", "o200k_base", "tab-compare", True)


async def test_a_damaged_or_newer_file_loads_nothing(tmp_path):
    app = make_test_app(load_models=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        good = {"format": "deepdive-lab-state", "version": 1, "mode": "failures",
                "screens": {"failures": {"fields": {"card": "dots", "values": {"n": "7"}}, "answers": [[{"bad": 1}]]}}}
        cases = {"damaged.json": "{ nope", "newer.json": json.dumps({**good, "version": 99}),
                 "half.json": json.dumps(good), "other.json": json.dumps({"hello": 1})}
        for name, text in cases.items():
            (tmp_path / name).write_text(text)
            assert not await app.open_state(str(tmp_path / name))
            await pilot.pause()
            assert app.screen.card.key == "count"  # nothing applied, not even the card
        messages = [n.message for n in app._notifications]
        assert any("damaged (not JSON)" in m for m in messages)
        assert any("newer deepdive-lab" in m for m in messages)
        assert any("Failures screen's part" in m for m in messages)
        assert any("not a deepdive-lab state file" in m for m in messages)


async def test_the_next_token_path_comes_back_at_the_state_shown(tmp_path):
    from textual.widgets import TextArea

    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        await pilot.press("escape")  # focus the bars
        await settle(app, pilot)
        for key in ("1", "2", "1", "u"):  # three picks, then one step back: the path has a state ahead
            await pilot.press(key)
            await settle(app, pilot)
        ex = app.screen.explorer
        history, position = [s.ids for s in ex.history], ex.position
        assert len(history) == 4 and position == 2
        bars = shown(app.screen.query_one("#bars"))
        saved = app.action_save_state(str(tmp_path / "n.json"))
        await app.action_reset_screen()
        await settle(app, pilot)
        assert len(app.screen.explorer.history) == 1
        assert await app.open_state(str(saved))
        await settle(app, pilot)
        s = app.screen
        assert [st.ids for st in s.explorer.history] == history and s.explorer.position == position
        assert s.query_one("#next-prompt", TextArea).text == "The capital of France is"
        assert shown(s.query_one("#bars")) == bars
