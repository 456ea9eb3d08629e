"""Rehearse then replay: a track run headless fills the caches; on stage each step then shows
the same screen, from the caches."""

import re

from lab.talk import parse_track
from screens.talk import rehearse
from tests.helpers import make_test_app, settle, shown

TRACK = {"title": "rehearsal", "step": [
    {"screen": "basechat", "caption": "who are you", "preset": "who are you?", "samples": 2, "seed": 3,
     "max_tokens": 10, "run": True},
    {"screen": "failures", "caption": "count", "card": "count", "samples": 2, "seed": 5, "run": True},
    {"screen": "failures", "caption": "bad", "card": "nope"},
]}


def screen_text(app) -> str:
    """What the step's screen shows, less the figures that differ by design between a live run
    and a replay (tokens/s, seconds, 'cached')."""
    text = "\n".join(shown(w) for w in app.screen.query("PaneView, ResultView, CardInfo"))
    text = re.sub(r" · [\d.]+ tok/s| · cached|cached", "", text)
    return re.sub(r"\s+", " ", text)


async def run_steps(app, pilot, track) -> list[str]:
    await settle(app, pilot)
    app.start_talk(track, go=False)
    await settle(app, pilot)
    texts = []
    for i in range(len(track.steps)):
        await app.talk.go(i)
        await settle(app, pilot)
        texts.append((screen_text(app), app.talk.live))
    return texts


async def test_rehearse_then_replay_shows_the_same_screens_from_the_caches(tmp_path):
    track = parse_track(TRACK, "t.toml", model_exists=lambda name: True)
    dirs = dict(failures_dir=tmp_path / "failures", samples_dir=tmp_path / "samples")
    report, lines = [], []
    app = make_test_app(**dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await rehearse(pilot, track, report, lines.append)
    assert [r.step for r in report] == [1, 2, 3]
    assert not report[0].problem and not report[1].problem and "unknown card 'nope'" in report[2].problem
    assert "rehearsed 3 steps" in lines[-2] and lines[-1] == "1 step(s) failed"
    assert list((tmp_path / "samples").rglob("*.json")) and list((tmp_path / "failures").rglob("*.json"))

    live = make_test_app(failures_dir=tmp_path / "live-f", samples_dir=tmp_path / "live-s")
    async with live.run_test(size=(120, 40)) as pilot:
        fresh = await run_steps(live, pilot, track)
    stage = make_test_app(**dirs)
    async with stage.run_test(size=(120, 40)) as pilot:
        replayed = await run_steps(stage, pilot, track)
    assert [text for text, _ in replayed] == [text for text, _ in fresh]
    assert [live for _, live in fresh] == [True, True, False]  # no cache: computed live, and said so
    assert [live for _, live in replayed] == [False, False, False]  # every step from the rehearsal
    assert "seed 3" in replayed[0][0] and "#2 seed 6" in replayed[1][0]


NEXT = {"title": "next", "step": [
    {"screen": "next", "caption": "bars", "prompt": "The capital of France is", "role": "chat", "seed": 3,
     "keys": ["s", "s"]},
]}


def bars_text(app) -> str:
    """The bars and the info line, less the count of model calls (whether the look-ahead or the
    key reached a state first is a matter of timing, in a live run as on stage)."""
    text = shown(app.screen.query_one("#bars")) + "\n" + shown(app.screen.query_one("#next-info"))
    return re.sub(r" · model calls \d+", "", text)


async def test_a_rehearsed_next_token_step_replays_its_bars_from_the_cache_without_a_forward_pass(tmp_path):
    track = parse_track(NEXT, "t.toml", model_exists=lambda name: True)
    dirs = dict(failures_dir=tmp_path / "failures", samples_dir=tmp_path / "samples")
    app = make_test_app(**dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await rehearse(pilot, track, [], lambda line: None)
    assert list((tmp_path / "samples" / "logits").rglob("*.npy"))  # the states the step showed (and one key away)

    results = []
    for folder in (tmp_path / "cold", tmp_path / "samples"):  # live (an empty cache), then from the rehearsal's
        app = make_test_app(failures_dir=tmp_path / "failures", samples_dir=folder)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            app.start_talk(track, go=False)
            await settle(app, pilot)
            await app.talk.go(0)
            await settle(app, pilot)
            ex = app.screen.explorer
            results.append((bars_text(app), app.talk.live, ex.live_calls, len(ex.history)))
    (live_text, was_live, live_calls, steps), (stage_text, stage_live, stage_calls, stage_steps) = results
    assert steps == stage_steps == 3  # the prompt and two samples
    assert was_live and live_calls >= 1  # the prompt state at least was computed live, and the caption said so
    assert not stage_live and stage_calls == 0  # every state of the path came from the rehearsal cache
    assert stage_text == live_text and "sampled (seed 4)" in stage_text
