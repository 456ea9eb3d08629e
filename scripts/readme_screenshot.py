"""Make the README's screenshots with the app itself (headless): docs/tokens.svg, docs/compare.svg,
docs/failures.svg (the strawberry card, 10 real answers from the chat model, seeds 1-10), and
docs/talk.svg (the same card as a step of the shipped talk track, projector theme).

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
        from lab.talk import load_track

        track = load_track()
        app.theme = "projector-dark"
        app.start_talk(track, go=False)
        await app.talk.go(next(i for i, s in enumerate(track.steps) if s.fields.get("card") == "count"))
        await settle(app, pilot)  # the card's answers replay from the run above
        app.screen.query_one("#fl-cards").focus()
        await pilot.pause()
        app.save_screenshot(filename="talk.svg", path=str(out))
    print(f"wrote {out / 'tokens.svg'}, {out / 'compare.svg'}, {out / 'failures.svg'} and {out / 'talk.svg'}")


if __name__ == "__main__":
    asyncio.run(main())
