"""2,000 seeded random keys across every mode of the app, then 400 in talk mode: no unhandled
exception, ever, and the app never stops answering keys (a hang fails with the app's pending
tasks listed)."""

import asyncio
import random
import string

from tests.helpers import make_test_app, settle

KEYS = (list(string.ascii_letters) + list(string.digits)
        + ["up", "down", "left", "right", "home", "end", "pageup", "pagedown", "tab", "shift+tab", "enter",
           "escape", "space", "backspace", "delete", "ctrl+p", "f1", "f2", "f3", "f4", "f5", "ctrl+n", "ctrl+t",
           "ctrl+g", "ctrl+b", "ctrl+o", "ctrl+l", "ctrl+r", "ctrl+s", "full_stop", "comma", "minus"])

HANG = 300  # seconds without an answer that can only mean the app is stuck


async def within(awaitable, what: str, app) -> None:
    try:
        await asyncio.wait_for(awaitable, HANG)
    except asyncio.TimeoutError:
        stuck = [w for w in app.workers if w.is_running]
        tasks = [t.get_coro().__qualname__ for t in asyncio.all_tasks() if not t.done()]
        raise AssertionError(f"the app stopped answering during {what}: running workers {stuck}, "
                             f"screen {type(app.screen).__name__}, pending tasks {tasks}") from None


async def test_two_thousand_random_keys_across_every_mode(tmp_path):
    rng = random.Random(20261127)
    app = make_test_app(screenshot_dir=tmp_path)
    modes = list(app.MODES)
    per_mode = 2000 // len(modes)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        for mode in modes:
            await app.switch_mode(mode)
            await pilot.pause()
            for _ in range(per_mode):
                key = rng.choice(KEYS)
                await within(pilot.press(key), f"key {key!r} in {mode}", app)
            cancel = getattr(app.screen, "action_cancel", None)
            if cancel is not None:  # random digits may have asked for long runs: stop them, as a person would
                cancel()
            await within(settle(app, pilot), f"settling {mode}", app)
            assert app._exception is None
        # Talk mode: a presenter's keys and random ones, on the shipped track.
        from lab.talk import load_track

        track = load_track()
        talk_keys = KEYS + ["pagedown"] * 10 + ["pageup"] * 3 + ["f9", "home"]
        for i in range(400):
            if app.talk is None and i % 40 == 0:
                app.start_talk(track)
                await within(settle(app, pilot), "starting the talk", app)
            key = rng.choice(talk_keys)
            await within(pilot.press(key), f"key {key!r} in talk mode", app)
        cancel = getattr(app.screen, "action_cancel", None)
        if cancel is not None:
            cancel()
        await within(settle(app, pilot), "settling talk mode", app)
        assert app._exception is None
        assert app.is_running
    assert app._exception is None
    assert app.return_code in (None, 0)
