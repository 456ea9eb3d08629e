"""Post-training screen (F6), the RL view: start a short RL run on a tiny chat model, watch it, stop it, compare."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lab.rl import RLConfig
from lab.session import Session, Settings
from screens.widgets.rl_panel import RLPanel
from tests.helpers import make_test_app, settle, shown, until


def small_app():
    app = make_test_app(session=Session(Settings()), load_models=False)
    # the SFT model RL starts from is trained by the run itself (seconds); the RL run never finishes on its own
    app.sft_config = replace(app.sft_config, max_iters=5, lr_decay_iters=5, counts=(0, 0, 0, 60))
    app.rl_config = RLConfig(steps=100_000, prompts_per_step=2, group=4, max_tokens=12, held_out_problems=2,
                             eval_interval=2)
    return app


async def _open_rl_view(app, pilot):
    await settle(app, pilot)
    await pilot.press("f6")
    await settle(app, pilot)
    for _ in range(3):  # dataset -> run -> experiment -> rl
        await pilot.press("v")
    await pilot.pause(0.1)
    assert app.screen.query_one("#post-switch").current == "post-rl"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_rl_view_starts_shows_rollouts_stops_with_a_checkpoint_and_compares(size):
    app = small_app()
    async with app.run_test(size=size) as pilot:
        await _open_rl_view(app, pilot)
        readout = app.screen.query_one("#rl-readout")
        assert "s start" in shown(readout) and "checker" in shown(readout)
        assert "view (v):" in shown(app.screen.query_one("#post-views")) and "▸rl " in shown(app.screen.query_one("#post-views"))
        said = lambda text: any(text in str(n.message) for n in app._notifications)  # noqa: E731
        for key, text in (("x", "no run to stop"), ("p", "no run to pause")):  # nothing runs: each key says so
            await pilot.press(key)
            await pilot.pause()
            assert said(text), key
        await pilot.press("s")
        assert await until(pilot, lambda: any(e.step >= 1 for e in app.rl_run.snapshot().events))
        await pilot.press("r")  # not while a run goes: it says why
        await pilot.pause()
        assert said("rule is fixed while a run goes")
        await pilot.press("c")
        await pilot.pause()
        assert said("x stops it first")
        assert app.screen.query_one(RLPanel).rule == "grpo"
        await pilot.pause(0.5)
        rollouts = shown(app.screen.query_one("#rl-rollouts"))
        assert "its rollouts" in rollouts and ("✓" in rollouts or "✗" in rollouts)
        assert "pass (held-out)" in shown(app.screen.query_one("#rl-curves"))
        await pilot.press("x")
        app.rl_run.thread.join()
        await pilot.pause(0.5)
        view = app.rl_run.snapshot()
        rl_ckpt = app.sft_dir.parent / (app.sft_dir.name + "-rl") / "ckpt.pt"
        assert view.state == "stopped" and "checkpoint saved" in view.message and rl_ckpt.exists()
        assert "stopped at step" in shown(readout)
        await pilot.press("f1", "f6")  # the run outlives leaving the screen
        await pilot.pause(0.3)
        assert "stopped at step" in shown(app.screen.query_one("#rl-readout"))
        await pilot.press("c")  # base -> SFT -> RL on the same prompts
        assert await until(pilot, lambda: "compare:" in shown(app.screen.query_one("#rl-rollouts")))
        text = shown(app.screen.query_one("#rl-rollouts"))
        assert "base" in text and "SFT" in text and "RL" in text


async def test_quitting_stops_the_rl_run_with_a_checkpoint():
    app = small_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_rl_view(app, pilot)
        await pilot.press("r")  # the other update rule: keep the good ones
        await pilot.press("s")
        assert await until(pilot, lambda: app.rl_run.snapshot().state == "running")
        run = app.rl_run
    run.thread.join()
    assert run.snapshot().state == "stopped" and "checkpoint saved" in run.snapshot().message
    assert run.trainer.cfg.rule == "keep"
    assert [n for n in app.exit_notes if n.startswith("RL: stopped at step") and "checkpoint saved" in n]  # said on exit
