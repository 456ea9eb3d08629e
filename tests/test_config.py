"""The config file: values, defaults for a missing file, and clear messages naming the key and file."""

import pytest

from lab.config import load_config
from lab.errors import LabError


def test_values_and_a_missing_file(tmp_path):
    assert load_config(tmp_path / "none.toml").base_model == ""
    f = tmp_path / "config.toml"
    f.write_text('base_model = "smollm2"\ntheme = "projector-light"\ntrack = "~/t.toml"\n'
                 '[keys]\n"basechat.generate" = "ctrl+enter"\n')
    c = load_config(f)
    assert c.base_model == "smollm2" and c.theme == "projector-light" and not c.track.startswith("~")
    assert c.keys == {"basechat.generate": "ctrl+enter"}


@pytest.mark.parametrize("text,message", [
    ("colour = 'red'", "unknown key 'colour'"), ("device = 'tpu'", "device = 'tpu'"),
    ("base_model = 3", "base_model must be a non-empty string"), ("[keys]\na = 1", "[keys] maps binding ids"),
    ("base_model = ", "not valid TOML"),
])
def test_a_bad_value_names_the_key_and_the_file(tmp_path, text, message):
    f = tmp_path / "config.toml"
    f.write_text(text)
    with pytest.raises(LabError) as err:
        load_config(f)
    assert message in str(err.value) and str(f) in str(err.value)


async def test_the_projector_themes_are_high_contrast():
    from screens.app import make_app

    for name, background in (("projector-dark", "#000000"), ("projector-light", "#FFFFFF")):
        app = make_app(load_models=False, theme=name)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.theme == name
            assert app.screen.styles.background.hex.upper() == background
