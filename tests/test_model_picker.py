"""Switching models in the app: pick any catalogue model for a role, see it load, use it."""

from textual.widgets import OptionList

from lab.session import Session, Settings
from screens.model_picker import ModelPicker
from tests.helpers import make_test_app, settle, shown
from tests.test_palette import run_command


async def test_pick_the_chat_model_as_the_base_model_and_generate_with_it():
    session = Session(Settings())  # its own session: the shared one keeps its models
    app = make_test_app(session=session)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        await run_command(pilot, app, "models: pick the base model")
        await settle(app, pilot)
        assert isinstance(app.screen, ModelPicker)
        models = app.screen.query_one(OptionList)
        ids = [models.get_option_at_index(i).id for i in range(models.option_count)]
        assert "smollm2-135m-instruct" in ids and "gemma-3-270m" in ids
        models.highlighted = ids.index("smollm2-135m-instruct")
        await pilot.press("enter")
        await settle(app, pilot)
        assert session.model_name("base") == "smollm2-135m-instruct"
        assert session.loaded("base") is not None and app.model_states["base"] == "ready"
        assert "base: smollm2-135m-instruct" in str(app.screen.query_one("ModelStatus").render())
        assert "smollm2-135m-instruct · base model" in shown(app.screen.pane("base"))


async def test_escape_leaves_the_models_as_they_were():
    session = Session(Settings())
    app = make_test_app(session=session, load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_pick_model("chat")
        await settle(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ModelPicker)
        assert session.model_name("chat") == "smollm2-135m-instruct"
