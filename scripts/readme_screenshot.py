"""Make the README's screenshots with the app itself (headless): docs/tokens.svg, docs/compare.svg,
docs/failures.svg (the strawberry card, 10 real answers from the chat model, seeds 1-10),
docs/rl.svg (Post-training's RL view after a whole `tiny` RL run of the tiny chat model),
docs/rlhf.svg (its RLHF view: the simulated person's rankings, a reward model, RL against it) and
docs/talk.svg (the same card as a step of the shipped talk track, projector theme).
The post-training views need the tiny chat model (`deepdive-lab sft --model tiny` makes it).

    python scripts/readme_screenshot.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import TextArea

from screens.app import make_app
from screens.headless import settle

TEXT = "Tokenization is at the heart of much weirdness of LLMs.\nstrawberry 9.11 > 9.9? 你好 👋🏽"


async def main() -> None:
    out = Path(__file__).resolve().parent.parent / "docs"
    out.mkdir(exist_ok=True)
    import tempfile

    app = make_app(failures_dir=Path(tempfile.mkdtemp()), samples_dir=Path(tempfile.mkdtemp()))  # fresh answers
    async with app.run_test(size=(110, 30)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.cursor_blink = False
        area.load_text(TEXT)
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.save_screenshot(filename="tokens.svg", path=str(out))
        app.screen.show_view("tab-compare")
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        app.save_screenshot(filename="compare.svg", path=str(out))
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        app.screen.query_one("#fl-cards").focus()
        await pilot.pause()
        app.save_screenshot(filename="failures.svg", path=str(out))
        await post_training(app, pilot, out)
        from lab.talk import load_track

        track = load_track()
        app.theme = "projector-dark"
        app.start_talk(track, go=False)
        await app.talk.go(next(i for i, s in enumerate(track.steps) if s.fields.get("card") == "count"))
        await settle(app, pilot)  # the card's answers replay from the run above
        app.screen.query_one("#fl-cards").focus()
        await pilot.pause()
        app.save_screenshot(filename="talk.svg", path=str(out))
    print(f"wrote tokens.svg, compare.svg, failures.svg, rl.svg, rlhf.svg and talk.svg in {out}")


async def until(pilot, condition) -> None:
    while not condition():  # the runs are the app's, in their own threads
        await pilot.pause(0.2)


async def post_training(app, pilot, out: Path) -> None:
    """F6: a whole RL run, then RLHF's three steps with the simulated person, to their ends."""
    await pilot.press("f6")
    await settle(app, pilot)
    while app.screen.view_name != "rl":
        await pilot.press("v")
    await pilot.press("s")
    await until(pilot, lambda: app.rl_run is not None and app.rl_run.snapshot().state in ("finished", "stopped",
                                                                                              "failed"))
    await pilot.pause(1.0)
    app.save_screenshot(filename="rl.svg", path=str(out))
    await pilot.press("v")  # rlhf
    await pilot.press("n")
    await until(pilot, lambda: app.rlhf_run is not None and app.rlhf_run.snapshot().pending is not None
                and not app.rlhf_run.busy)
    for key in ("a", "t", "r"):  # the simulated person ranks every prompt; train the reward model; RL against it
        await pilot.press(key)
        await pilot.pause(0.5)
        await until(pilot, lambda: not app.rlhf_run.busy)
    await pilot.pause(1.0)
    app.save_screenshot(filename="rlhf.svg", path=str(out))


if __name__ == "__main__":
    asyncio.run(main())
