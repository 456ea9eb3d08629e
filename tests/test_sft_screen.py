"""Post-training screen (F6): browse a conversation and see its loss mask; run a short tiny SFT live; stop it."""

from __future__ import annotations

from lab.conversations import chat_format, render_conversation
from screens.widgets.conversation_view import ConversationView
from tests.helpers import make_test_app, settle, shown, until


async def test_dataset_view_draws_the_mask_of_the_chat_models_own_rendering():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await settle(app, pilot)
        view = app.screen.query_one(ConversationView)
        assert await until(pilot, lambda: view.shown is not None and view.shown.index == 0)
        await pilot.press("n")
        assert await until(pilot, lambda: view.shown.index == 1)
        example = app.screen.examples[1]
        backend = app.session.loaded("chat")
        reference = render_conversation(chat_format(backend), example.messages)
        assert view.shown.mask == reference.mask and sum(view.shown.mask) > 0
        text = shown(view)
        assert "conversation 2 of 1000" in text and "trained on" in text
        answer = example.messages[-1].content.split()[0]
        assert answer in text.split("<|im_start|>assistant")[-1]  # the answer is drawn after its header
        await pilot.press("b")
        assert await until(pilot, lambda: view.shown.index == 0)


async def test_run_view_trains_live_stops_and_opens_before_after():
    from lab.session import Session, Settings

    app = make_test_app(session=Session(Settings()), load_models=False)  # its own session: "o" changes the models
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await settle(app, pilot)
        readout = app.screen.query_one("#post-readout")
        assert "cpu-quick" in shown(readout) and "minutes" in shown(readout)  # the cost, before it starts
        small = app.sft_config  # tests.helpers gives every test app a small run in a temporary folder
        await pilot.press("s")
        assert app.screen.query_one("#post-switch").current == "post-run"
        assert await until(pilot, lambda: app.sft_run.snapshot().samples and
                            app.sft_run.snapshot().steps[-1] > small.pretrain_iters)
        await pilot.pause(0.3)
        log = app.screen.query_one("#post-samples")
        assert "Q: " in "\n".join(line.text for line in log.lines)  # a held-out question and the model's answer
        assert "loss" in str(app.screen.query_one("#post-plot").render())
        await pilot.press("x")
        app.sft_run.thread.join()
        await pilot.pause(0.5)
        assert "stopped at step" in shown(readout)
        await pilot.press("f1", "f6")  # the run and its plot outlive leaving the screen
        await pilot.pause(0.3)
        assert "stopped at step" in shown(app.screen.query_one("#post-readout"))
        await pilot.press("o")  # before/after: Base vs chat with the model before SFT and after it
        await settle(app, pilot)
        assert app.current_mode == "basechat"
        before, after = app.session.loaded("base"), app.session.loaded("chat")
        assert before.info.source.startswith(str(app.sft_dir / "base" / "ckpt.pt"))
        assert after.info.source.startswith(str(app.sft_dir / "ckpt.pt")) and after.info.has_chat_template


async def test_experiment_view_scores_both_styles_on_the_same_held_out_problems():
    from dataclasses import replace

    from lab.session import Session, Settings

    app = make_test_app(session=Session(Settings()), load_models=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.sft_config = replace(app.sft_config, max_iters=30, lr_decay_iters=30)
        await pilot.press("f6", "v", "v")
        assert app.screen.query_one("#post-switch").current == "post-experiment"
        assert "e runs it" in shown(app.screen.query_one("#post-exp-head"))
        await pilot.press("e")
        assert await until(pilot, lambda: app.sft_run.snapshot().state in ("finished", "failed"))
        app.sft_run.thread.join()
        await pilot.pause(0.5)
        results = app.sft_run.results
        assert [s.question for s in results["answer"]] == [s.question for s in results["working"]]
        head = shown(app.screen.query_one("#post-exp-head"))
        for style in ("answer", "working"):
            right = sum(s.passed for s in results[style])
            assert f"{style}-first {right}/{len(results[style])} right" in head
            pane = shown(app.screen.query_one(f"#post-exp-{style}"))
            marks = [line[0] for line in pane.splitlines() if line.startswith(("✓", "✗"))]
            assert marks == ["✓" if s.passed else "✗" for s in results[style]]
        assert "checker" in head
