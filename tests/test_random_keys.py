"""2,000 seeded random keys across every mode of the app: no unhandled exception, ever."""

import random
import string

from tests.helpers import make_test_app, settle

KEYS = (list(string.ascii_letters) + list(string.digits)
        + ["up", "down", "left", "right", "home", "end", "pageup", "pagedown", "tab", "shift+tab", "enter",
           "escape", "space", "backspace", "delete", "ctrl+p", "f1", "f2", "f3", "f4", "f5", "ctrl+n", "ctrl+t",
           "ctrl+g", "ctrl+b", "ctrl+o", "ctrl+l", "ctrl+r", "ctrl+s", "full_stop", "comma", "minus"])


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
                await pilot.press(rng.choice(KEYS))
            cancel = getattr(app.screen, "action_cancel", None)
            if cancel is not None:  # random digits may have asked for long runs: stop them, as a person would
                cancel()
            await settle(app, pilot)
            assert app._exception is None
        assert app.is_running
    assert app._exception is None
    assert app.return_code in (None, 0)
