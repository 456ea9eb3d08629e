"""Number boxes: a bad value is shown as bad, and the last good value stays in use, visibly."""

from textual.widgets import Input

from screens.widgets.number_field import NumberField
from tests.helpers import make_test_app, shown, type_text


async def test_a_bad_temperature_is_shown_and_the_last_good_one_stays_in_use():
    app = make_test_app(load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        s = app.screen
        box = s.query_one("#bc-temperature", NumberField)
        box.focus()
        await pilot.press("ctrl+a", "backspace")  # select all, delete
        box.value = ""
        await type_text(pilot, "1.5")
        await pilot.pause()
        assert box.number == 1.5 and not box.invalid and not box.hint.display
        box.value = ""  # as after select-all + delete (empty is invalid too)
        await type_text(pilot, "abc")
        await pilot.pause()
        assert box.value == "abc" and box.invalid and box.has_class("-invalid")
        assert box.hint.display and shown(box.hint) == "✗ using 1.5"
        assert s.settings().temperature == 1.5  # not a silent 1, not the default
        box.value = "9"  # out of range (0 to 5)
        await pilot.pause()
        assert box.invalid and shown(box.hint) == "✗ using 1.5" and "from 0 to 5" in str(box.tooltip)
        box.value = "0"
        await pilot.pause()
        assert box.number == 0.0 and not box.hint.display and not box.has_class("-invalid")


async def test_whole_number_boxes_refuse_fractions():
    app = make_test_app(load_models=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        samples = app.screen.query_one("#fl-samples", Input)
        samples.value = "2.5"
        await pilot.pause()
        assert samples.invalid and samples.number == 10
        samples.value = "3"
        await pilot.pause()
        assert samples.number == 3
