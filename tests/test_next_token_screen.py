"""The Next-token screen, driven with keys, checked against the engine's own numbers;
its layout at 80x24, 120x40 and 200x50 checked on what the terminal shows."""

import numpy as np
import pytest
from textual import events
from textual.widgets import Input, TextArea

from lab.sampling import SamplingSettings, make_rng, sample
from screens.widgets.bars_view import one_line
from tests.helpers import make_test_app, settle, shown, type_text

SIZES = [(80, 24), (120, 40), (200, 50)]
CONTROLS = ["#next-temperature", "#next-top-k", "#next-top-p", "#next-seed", "#next-k-shown", "#next-auto-N",
            "#next-query"]


def screen_lines(app) -> list[str]:
    """The terminal's text, line by line: what a person sees (scrolled panes as scrolled)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def wheel(pilot, selector: str, down: bool = True) -> None:
    """Turn the mouse wheel once over the widget, as the terminal reports it."""
    region = pilot.app.screen.query_one(selector).region
    x, y = region.x + region.width // 2, region.y + region.height // 2
    kind = events.MouseScrollDown if down else events.MouseScrollUp
    pilot.app.post_message(kind(None, x, y, 0, 1 if down else -1, 0, False, False, False, screen_x=x, screen_y=y))
    await pilot.pause()


async def open_screen(pilot, app, prompt=None):
    await settle(app, pilot)
    await pilot.press("f2")
    await settle(app, pilot)
    if prompt is not None:
        app.screen.query_one("#next-prompt", TextArea).load_text(prompt)
        await settle(app, pilot)
    await pilot.press("escape")  # focus the bars
    await settle(app, pilot)
    return app.screen


async def test_pick_appends_that_token_and_undo_restores_exactly():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        ex = s.explorer
        before_ids = ex.ids
        before = ex.cached(before_ids).copy()
        engine = app.session.loaded("chat").next_token(list(before_ids), 9)
        assert "Paris" in shown(s.query_one("#bars"))
        await pilot.press("3")
        await settle(app, pilot)
        assert ex.ids == before_ids + (engine.top[2].id,)
        await pilot.press("u")
        await settle(app, pilot)
        assert ex.ids == before_ids
        assert np.array_equal(ex.cached(ex.ids), before)
        assert shown(s.query_one("#bars")).count("%") >= 10
        await pilot.press("r")  # and forward again
        assert ex.ids == before_ids + (engine.top[2].id,)


async def test_temperature_zero_and_one():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        logits = s.explorer.cached(s.explorer.ids)
        s.query_one("#next-temperature", Input).value = "0"
        await settle(app, pilot)
        rows = s.explorer.filtered(s.settings(), 10, logits)
        assert rows[0].prob == 1.0 and all(r.prob == 0.0 for r in rows[1:])
        assert "100.00%" in shown(s.query_one("#bars"))
        calls = s.explorer.model_calls
        s.query_one("#next-temperature", Input).value = "1"
        await settle(app, pilot)
        assert s.explorer.model_calls == calls  # filters redraw from cached logits: no model call
        engine = app.session.loaded("chat").next_token(list(s.explorer.ids), 10)
        rows = s.explorer.filtered(s.settings(), 10, logits)
        assert [r.id for r in rows] == [t.id for t in engine.top]
        for r, t in zip(rows, engine.top):
            assert r.prob == pytest.approx(t.prob, rel=1e-6) and r.raw_prob == pytest.approx(t.prob, rel=1e-6)
        assert f"{engine.top[0].prob * 100:.2f}%" in shown(s.query_one("#bars"))


async def test_same_seed_same_sample_and_seed_is_visible():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app, "Once upon a time")
        base = s.explorer.ids
        logits = s.explorer.cached(base)
        s.query_one("#next-seed", Input).value = "42"
        await settle(app, pilot)
        assert "next sample seed 42" in shown(s.query_one("#bars"))
        s.query_one("#bars").focus()
        await pilot.press("s")
        await settle(app, pilot)
        first = s.explorer.ids[-1]
        assert first == sample(logits, SamplingSettings(seed=42), make_rng(42))
        assert s.query_one("#next-seed", Input).value == "43"  # the next sample gets a new, visible seed
        await pilot.press("u")
        s.query_one("#next-seed", Input).value = "42"
        s.query_one("#bars").focus()
        await pilot.press("s")
        await settle(app, pilot)
        assert s.explorer.ids == base + (first,)
        assert "sampled (seed 42)" in shown(s.query_one("#next-info"))


async def test_query_token_probability_equals_engine():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        s.query_one("#next-query", Input).value = " London"
        await settle(app, pilot)
        backend = app.session.loaded("chat")
        lid = backend.tokenize(" London", add_special=False)[0]
        prob, rank = backend.next_token(list(s.explorer.ids), 1, [lid]).queried[0][1:]
        assert f"(id {lid}): p={prob:.6f}, rank {rank:,}" in shown(s.query_one("#bars"))
        s.query_one("#next-query", Input).value = "not one token at all"
        await settle(app, pilot)
        assert "type one token" in shown(s.query_one("#bars"))


async def test_surprisal_view_uses_real_probabilities():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app, "The capital of France is Paris")
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        out = shown(s.query_one("#surprisal"))
        backend = app.session.loaded("chat")
        ids = list(s.explorer.ids)
        paris = backend.next_token(ids[:-1], 1, [ids[-1]]).queried[0][1]
        await pilot.press("end")  # select the last token
        out = shown(s.query_one("#surprisal"))
        assert f"'·Paris' at {len(ids) - 1}: p={paris:.4f}" in out
        await pilot.press("left")
        is_id = ids[-2]
        p_is = backend.next_token(ids[:-2], 1, [is_id]).queried[0][1]
        assert f"'·is' at {len(ids) - 2}: p={p_is:.4f}" in shown(s.query_one("#surprisal"))


async def test_lens_on_llama_cpp_says_why_and_auto_step_runs():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        await pilot.press("ctrl+o", "ctrl+o")
        await settle(app, pilot)
        assert "does not expose hidden states" in shown(s.query_one("#lens"))
        await pilot.press("ctrl+o")
        s.query_one("#next-auto-N", Input).value = "4"
        s.query_one("#next-temperature", Input).value = "0"
        s.query_one("#bars").focus()
        start = len(s.explorer.ids)
        await pilot.press("a")
        await settle(app, pilot)
        assert len(s.explorer.ids) == start + 4
        backend = app.session.loaded("chat")
        greedy = backend.generate(list(s.explorer.ids[:start]), SamplingSettings(temperature=0), 4)
        assert s.explorer.ids[start:] == greedy.ids


@pytest.mark.slow
async def test_lens_on_transformers_last_layer_is_top1_and_reachable_by_scrolling():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        await pilot.press("ctrl+l")  # from the bars: loads the model through transformers, shows the lens
        await settle(app, pilot)
        lens = app.session.lens_loaded("chat")
        assert lens is not None and lens.capabilities.supports_hidden_states and lens is not s.explorer.backend
        layers = lens.lens(list(s.explorer.ids), top_k=1)
        out = shown(s.query_one("#lens"))
        assert f"layer {len(layers) - 1}  '·Paris'" in out and "embeddings" in out
        last = f"layer {len(layers) - 1}"
        assert app.focused is s.query_one("#lens")
        assert not any(last in line for line in screen_lines(app))  # 31 readouts do not fit 40 lines
        await pilot.press("end")
        assert any(last in line and "·Paris" in line for line in screen_lines(app))
        await pilot.press("home")
        assert any("embeddings" in line for line in screen_lines(app))
        await wheel(pilot, "#lens-pane")
        assert s.query_one("#lens-pane").scroll_y > 0
        await pilot.press("ctrl+o", "ctrl+o", "ctrl+o")  # around the views and back: the session's model is reused
        await settle(app, pilot)
        assert app.session.lens_loaded("chat") is lens and last in shown(s.query_one("#lens"))


async def test_switch_model_keeps_prompt_and_failed_model_says_why(tmp_path):
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app, "Once upon a time")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert s.explorer.backend is app.session.loaded("base")
        assert s.query_one("#next-prompt", TextArea).text == "Once upon a time"
        assert "gemma-3-270m (base, llama.cpp)" in shown(s.query_one("#next-info"))
    from lab.session import Session, Settings
    from screens.app import make_app

    app = make_app(session=Session(Settings(chat_model=str(tmp_path / "missing.gguf"))))
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        assert "the chat model failed to load: no file or folder" in shown(s.query_one("#bars"))
        await pilot.press("1", "s", "u", "a", "ctrl+o")
        assert app.is_running


@pytest.mark.parametrize("size", SIZES)
async def test_every_control_is_on_screen_and_each_candidate_is_one_row(size):
    width, height = size
    app = make_test_app()
    async with app.run_test(size=size) as pilot:
        s = await open_screen(pilot, app)
        for selector in CONTROLS:  # each box is on screen, not covered, and takes what is typed
            box = s.query_one(selector, Input)
            r = box.region
            assert r.width >= 6 and r.height == 1 and r.right <= width and r.bottom <= height, selector
            assert s.get_widget_at(r.x + 1, r.y)[0] is box, selector
        await pilot.click("#next-auto-N")
        await pilot.press("end", "backspace", "backspace", "3")  # clear the box and type
        assert s.query_one("#next-auto-N", Input).value == "3"
        rows = s.explorer.filtered(SamplingSettings(), 10, s.explorer.cached(s.explorer.ids))
        lines = screen_lines(app)
        assert any(line.lstrip().startswith("entropy") for line in lines)  # the whole table fits
        for rank, row in enumerate(rows, start=1):
            found = [line for line in lines if line.startswith(f" {rank:>2} {one_line(row.piece)}")]
            assert len(found) == 1, rank  # one row per candidate, its numbers on it
            line = found[0]
            assert f"{row.raw_prob * 100:.2f}%" in line and line.rstrip().endswith(f"{row.prob * 100:.2f}%")
            bar = line.count("█") + line.count("░")
            assert width // 3 <= bar <= width - 40  # the bar grows with the screen and the row still fits


async def test_newline_candidates_stay_on_their_row_drawn_as_escapes():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app, "First line.\nSecond line.\n\nThird line.")
        s.query_one("#next-k-shown", Input).value = "40"
        await settle(app, pilot)
        rows = s.explorer.filtered(SamplingSettings(), 40, s.explorer.cached(s.explorer.ids))
        with_newline = [r for r in rows if b"\n" in r.piece]
        assert with_newline  # the case under test: newline pieces among the candidates
        text = shown(s.query_one("#bars")).splitlines()
        table = text[text.index(next(line for line in text if line.lstrip().startswith("# token"))) + 1:-1]
        assert len(table) == len(rows) and text[-1].startswith("entropy")
        for rank, (row, line) in enumerate(zip(rows, table), start=1):
            assert line.startswith(f"{rank:>2} ") and line.endswith(f"{row.prob * 100:.2f}%")
        for row in with_newline:
            assert "↵" in one_line(row.piece) and "\n" not in one_line(row.piece)


async def test_bars_scroll_with_keys_and_wheel_at_80x24():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        s = await open_screen(pilot, app)
        s.query_one("#next-k-shown", Input).value = "50"
        await settle(app, pilot)
        s.query_one("#bars").focus()
        entropy = lambda: any(line.lstrip().startswith("entropy") for line in screen_lines(app))  # noqa: E731
        assert not entropy()  # 50 rows do not fit 24 lines
        await pilot.press("end")
        assert entropy()
        await pilot.press("home")
        assert not entropy()
        pane = s.query_one("#bars-pane")
        await pilot.press("pagedown")
        assert pane.scroll_y > 0
        await pilot.press("home")
        await wheel(pilot, "#bars-pane")
        assert pane.scroll_y > 0
        await pilot.press("1")  # the candidate keys still work in a scrolled table
        await settle(app, pilot)
        assert s.explorer.position == 1


async def test_surprisal_of_a_long_prompt_scrolls():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        s = await open_screen(pilot, app, " ".join(["The quick brown fox jumps over the lazy dog."] * 30))
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        pane = s.query_one("#surprisal-pane")
        assert app.focused is s.query_one("#surprisal") and pane.max_scroll_y > 0
        await pilot.press("pagedown")
        assert pane.scroll_y > 0
        await pilot.press("pageup")
        assert pane.scroll_y == 0
        await wheel(pilot, "#surprisal-pane")
        assert pane.scroll_y > 0


async def test_a_bad_number_is_shown_as_bad_and_the_last_good_value_stays_in_use():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        s = await open_screen(pilot, app)
        box = s.query_one("#next-temperature", Input)
        await pilot.click("#next-temperature")
        await pilot.press("end", "backspace", "backspace", "backspace", "0", ".", "5")
        await settle(app, pilot)
        assert s.settings().temperature == 0.5 and "temperature 0.5," in shown(s.query_one("#bars"))
        await pilot.press("a", "b", "c")
        await settle(app, pilot)
        assert box.value == "0.5abc" and box.has_class("-invalid")
        assert any("using 0.5" in line for line in screen_lines(app))  # said on screen, beside the box
        assert s.settings().temperature == 0.5 and "temperature 0.5," in shown(s.query_one("#bars"))
        rows = s.explorer.filtered(SamplingSettings(temperature=0.5), 10, s.explorer.cached(s.explorer.ids))
        assert f"{rows[0].prob * 100:.2f}%" in shown(s.query_one("#bars"))
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "2")
        await settle(app, pilot)
        assert not box.has_class("-invalid") and s.settings().temperature == 2.0
        assert not any("using" in line for line in screen_lines(app))


async def test_the_layout_follows_a_resize_and_palette_commands_reach_the_screen():
    app = make_test_app()
    async with app.run_test(size=(200, 50)) as pilot:
        s = await open_screen(pilot, app)
        bar = lambda: max(line.count("█") + line.count("░") for line in screen_lines(app))  # noqa: E731
        wide = bar()
        assert s.query_one("#next-query").region.y == s.query_one("#next-seed").region.y  # one row of boxes
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        assert bar() < wide and all(len(line.rstrip()) <= 80 for line in screen_lines(app))
        assert s.query_one("#next-query").region.y == s.query_one("#next-seed").region.y + 1  # two rows
        await pilot.press("ctrl+p")
        await type_text(pilot, "next: next view")
        await pilot.press("enter")
        await settle(app, pilot)
        assert s.view == "surprisal" and s.query_one("#surprisal-pane").display


async def test_a_talk_step_sets_prompt_model_boxes_and_view():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        s.apply_step({"prompt": "Once upon a time", "role": "base", "temperature": 0.5, "top_k": 40, "seed": 7,
                      "view": "surprisal"})
        await settle(app, pilot)
        base = app.session.loaded("base")
        assert s.explorer.backend is base and s.explorer.ids == tuple(base.tokenize("Once upon a time"))
        assert s.settings() == SamplingSettings(temperature=0.5, top_k=40, top_p=1.0, seed=7)
        assert s.view == "surprisal" and "·upon" in shown(s.query_one("#surprisal"))


async def test_keys_pressed_faster_than_the_model_all_count_in_order():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        ex = s.explorer
        start = ex.ids
        s.query_one("#next-seed", Input).value = "5"
        s.query_one("#bars").focus()
        await pilot.press("1", "2", "s", "u", "1", "1")  # no waiting between keys
        await settle(app, pilot)
        ids = ex.ids
        assert len(ids) == len(start) + 4  # 1, 2, s, undo, 1, 1
        top = lambda prefix, rank: ex.filtered(SamplingSettings(), 9, ex.cached(prefix))[rank - 1].id  # noqa: E731
        assert ids[len(start)] == top(start, 1) and ids[len(start) + 1] == top(ids[:len(start) + 1], 2)
        for n in (len(start) + 2, len(start) + 3):
            assert ids[n] == top(ids[:n], 1)
        assert len(ex.history) == 5 and ex.position == 4  # the undone sample was replaced by the branch
        assert s.query_one("#next-seed", Input).value == "6"  # the sample did run (seed 5) before the undo


@pytest.mark.parametrize("piece,drawn", [(b"\n\n", "↵↵"), (b"\r\n", "␍↵"), (b"\t x", "→·x"), (b"\xe6\x88", "⟨e6 88⟩"),
                                         ("\u2028".encode(), "⟨LS⟩"), (b"a\x1bb", "a␛b")])
def test_a_piece_is_drawn_on_one_line_with_visible_escapes(piece, drawn):
    assert one_line(piece) == drawn
