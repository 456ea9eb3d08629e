"""Post-training's rlhf view (F6, v to it): rank 5 rollouts by keys, let the simulated person rank the rest,
train a short reward model, start and stop RL against it; the job is the app's and outlives the screen."""

from __future__ import annotations

import pytest

from lab.rlhf import RLHFConfig
from lab.rlhf_run import RLHFRun
from tests.helpers import make_test_app, settle, shown, until

CHAT = dict(n_layer=1, n_head=2, n_embd=32, bpe_vocab=300, pretrain_bytes=20_000, task_docs=100, pretrain_iters=40,
            max_iters=60, lr_decay_iters=60, block_size=128, batch_size=4, counts=(40, 0, 0, 40), eval_interval=1000,
            eval_iters=1, sample_interval=0, seed=3)
# RL long enough that it is always stopped by x, never finished, whatever the machine's speed
CFG = RLHFConfig(prompts=8, held_out=0.25, max_tokens=12, rm_steps=20, rl_steps=100_000, rl_prompts=2, group=2,
                 eval_every=1000, seed=0)


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    from lab.sft import SFTConfig, TinyChat

    out = tmp_path_factory.mktemp("tiny-chat")
    for _ in TinyChat(SFTConfig(**CHAT, out_dir=str(out))).run():
        pass
    return out


async def _open_rlhf(app, pilot):
    await settle(app, pilot)
    await pilot.press("f6")
    await settle(app, pilot)
    while app.screen.view_name != "rlhf":
        await pilot.press("v")
    await pilot.pause()
    return app.screen.query_one("#rlhf-panel")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_rank_by_keys_train_a_reward_model_start_and_stop_rl(sft_dir, size):
    app = make_test_app(sft_dir=sft_dir)
    app.rlhf_run = run = RLHFRun(sft_dir / "ckpt.pt", CFG)
    async with app.run_test(size=size) as pilot:
        panel = await _open_rlhf(app, pilot)
        assert app.focused is panel
        for key, said in (("t", "no rankings yet"), ("r", "train a reward model first"), ("x", "nothing is running"),
                          ("enter", "nothing to rank"), ("backspace", "nothing is being ranked")):
            await pilot.press(key)  # a key that cannot act now says why
            await pilot.pause()
            assert any(said in str(n.message) for n in app._notifications), key
        await pilot.press("n")
        assert await until(pilot, lambda: run.snapshot().pending is not None and not run.busy)
        prompt, replies = run.snapshot().pending
        assert len(replies) == 5
        assert await until(pilot, lambda: "rank: " in shown(panel.query_one("#rlhf-rank")))
        text = shown(panel.query_one("#rlhf-rank"))
        assert f"rank: {prompt}" in text and "order so far (best first): none yet" in text
        await pilot.press("3", "1", "3")  # 3 again is refused: it is already placed
        assert "order so far (best first): 3 > 1" in shown(panel.query_one("#rlhf-rank"))
        await pilot.press("backspace", "enter")  # a ranking with missing items is not committed
        await pilot.pause()
        assert run.job.rankings == {} and run.snapshot().pending is not None
        assert "order so far (best first): 3" in shown(panel.query_one("#rlhf-rank"))
        await pilot.press("n")  # these rollouts wait for their ranking: n says so and keeps them
        await pilot.pause()
        assert any("wait for a ranking" in str(n.message) for n in app._notifications)
        await pilot.press("5", "1", "2", "4", "enter")
        assert await until(pilot, lambda: len(run.job.rankings) == 1)
        assert run.job.rankings[prompt].order == (2, 4, 0, 1, 3) and run.job.rankings[prompt].by == "person"
        await pilot.press("a")  # the simulated person ranks the other 7
        assert await until(pilot, lambda: not run.busy and run.snapshot().ranked == 8)
        assert run.job.rankings[prompt].by == "person"  # the person's ranking is kept
        await pilot.press("t")
        assert await until(pilot, lambda: not run.busy), run.snapshot()
        assert run.snapshot().has_reward_model, run.snapshot().message
        acc = run.snapshot().rm_accuracy
        assert await until(pilot, lambda: "held-out pair accuracy" in shown(panel.query_one("#rlhf-head")))
        head = shown(panel.query_one("#rlhf-head"))
        assert f"held-out pair accuracy {acc:.0%}" in head and "8 rankings (1 by you, 7 simulated) vs 400,000 scores" in head
        await pilot.press("r")
        assert await until(pilot, lambda: len(run.snapshot().steps) >= 2)
        await pilot.press("x")
        assert await until(pilot, lambda: not run.busy)
        view = run.snapshot()
        assert "RL stopped at step" in view.message and len(view.rm) == len(view.true) == len(view.steps) >= 2
        assert f"policy saved: {sft_dir / 'rlhf' / 'ckpt.pt'}" in view.message and run.policy_path.exists()
        assert await until(pilot, lambda: "most over-rated" in shown(panel.query_one("#rlhf-over")))
        assert "reward model" in str(panel.query_one("#rlhf-plot").render())


async def test_the_run_outlives_the_screen_and_quitting_writes_the_policy(sft_dir):
    app = make_test_app(sft_dir=sft_dir)
    app.rlhf_run = run = RLHFRun(sft_dir / "ckpt.pt", CFG)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_rlhf(app, pilot)
        await pilot.press("a")
        assert await until(pilot, lambda: not run.busy and run.snapshot().ranked == 8)
        await pilot.press("t")
        assert await until(pilot, lambda: not run.busy and run.snapshot().has_reward_model)
        await pilot.press("r")
        assert await until(pilot, lambda: len(run.snapshot().steps) >= 1)
        await pilot.press("f1")  # another screen: RL goes on
        await settle(app, pilot)
        steps = len(run.snapshot().steps)
        assert await until(pilot, lambda: len(run.snapshot().steps) > steps) and run.busy
    assert not run.busy and (sft_dir / "rlhf" / "ckpt.pt").exists()  # quit stopped it with a checkpoint
    assert f"RLHF: stopped; policy saved: {sft_dir / 'rlhf' / 'ckpt.pt'}" in app.exit_notes
    from lab.rlhf import load_chat

    model, _ = load_chat(sft_dir / "rlhf" / "ckpt.pt")
    assert model.cfg.n_embd == 32


async def test_without_a_chat_model_the_view_says_how_to_make_one(tmp_path):
    app = make_test_app(sft_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await _open_rlhf(app, pilot)
        await pilot.press("n")
        assert await until(pilot, lambda: not app.rlhf_run.busy and "failed" in app.rlhf_run.snapshot().message)
        assert await until(pilot, lambda: "no tiny-chat model at" in shown(panel.query_one("#rlhf-head")))
        assert "failed" in shown(panel.query_one("#rlhf-head"))
