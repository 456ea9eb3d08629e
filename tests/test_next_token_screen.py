"""The Next-token screen, driven with keys, checked against the engine's own numbers."""

import numpy as np
import pytest
from textual.widgets import Input, TextArea

from lab.sampling import SamplingSettings, make_rng, sample
from tests.helpers import make_test_app, settle, shown


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
async def test_lens_on_transformers_last_layer_is_top1():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        s = await open_screen(pilot, app)
        await pilot.press("ctrl+o", "ctrl+o", "ctrl+l")
        await settle(app, pilot)
        out = shown(s.query_one("#lens"))
        assert "layer 30  '·Paris'" in out and "embeddings" in out


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
