"""Talk tracks: the default track parses; a bad step gets a clear message naming it, and the
rest of the track still runs."""

import pytest

from lab.errors import LabError
from lab.talk import load_track, parse_track


def test_the_default_track_loads_without_problems():
    track = load_track(model_exists=lambda name: True)
    assert track.title.startswith("Deep Dive")
    assert not track.problems
    screens = [s.screen for s in track.steps]
    assert screens[0] == "tokens" and "failures" in screens and "training" in screens and screens[-1] == "post"
    assert all(s.caption for s in track.steps)


@pytest.mark.parametrize("step,message", [
    ({"screen": "nope"}, "step 2 (nope): unknown screen 'nope'"),
    ({"screen": "tokens", "colour": "red"}, "step 2 (tokens): unknown field 'colour'"),
    ({"screen": "tokens", "view": "bars"}, "view = 'bars'; use one of tokens, compare"),
    ({"screen": "next", "seed": "one"}, "seed must be int, not str"),
    ({"screen": "next", "keys": ["ctrl+g", "hyperspace"]}, "'hyperspace' is not a key name"),
    ({"screen": "next", "keys": ["s", "escape"]}, "'escape' is a talk-mode key"),
    ({"screen": "failures", "card": "strawbery"}, "unknown card 'strawbery'"),
    ({"screen": "failures", "card": "count", "values": {"letter": "rr"}}, "step 2 (failures): Type one letter."),
    ({"screen": "failures", "card": "count", "values": {"colour": "r"}}, "no field 'colour'"),
    ({"screen": "basechat", "preset": "who am i"}, "unknown preset 'who am i'"),
    ({"screen": "post", "view": "tokens"}, "view = 'tokens'; use one of dataset, run"),
    ({"screen": "post", "task": "apples", "conversation": 100_000}, "conversation 100000 is not one of them"),
    ({"screen": "basechat", "model": "no-such-model"}, "the model 'no-such-model' is not in the catalogue"),
])
def test_a_bad_step_names_itself_and_the_rest_still_runs(step, message):
    good = {"screen": "tokens", "text": "hello", "caption": "ok"}
    track = parse_track({"step": [good, step, good]}, "t.toml", model_exists=lambda name: name != "no-such-model")
    assert len(track.steps) == 3
    assert not track.steps[0].error and not track.steps[2].error
    assert message in track.steps[1].error, track.steps[1].error
    assert track.problems == [track.steps[1].error]


def test_unreadable_tracks_get_a_clear_message(tmp_path):
    with pytest.raises(LabError, match="Cannot read the talk track"):
        load_track(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[step]\nscreen = ")
    with pytest.raises(LabError, match="not valid TOML"):
        load_track(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("title = 'x'\n")
    with pytest.raises(LabError, match="no \\[\\[step\\]\\] entries"):
        load_track(empty)
