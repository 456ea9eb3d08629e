"""RL on a transformers model through trl's GRPOTrainer (lab.rl_gemma), on Gemma 3 270M on the CPU:
the estimate comes before the run, the events carry the checker's verdicts on the model's own
completions, a stop ends the run at the next step, and the result saves as a catalogue model."""

from dataclasses import replace

import pytest

from lab.errors import LabError
from lab.rl_gemma import PRESETS, GemmaRL, GemmaRLConfig, make_problems, score_text


def test_a_checker_that_raises_is_a_failure_with_its_reason(monkeypatch):
    import lab.sft_data

    train, _ = make_problems(GemmaRLConfig(tasks=("arithmetic",), problems_n=20))
    e = train[0]
    assert score_text(e, f"The answer is {e.truth}.") == (True, e.truth)
    assert score_text(e, e.question)[0] is False  # the question restated is not an answer

    def broken(example):
        raise ValueError("no rule")

    monkeypatch.setattr(lab.sft_data, "checker", broken)
    passed, got = score_text(e, "The answer is 3.")
    assert not passed and got == "checker failed: ValueError: no rule"


def test_bad_settings_are_refused_before_any_model_loads():
    with pytest.raises(LabError, match="a group at least 2"):
        GemmaRL(GemmaRLConfig(group=1), backend=object())
    with pytest.raises(LabError, match="no problems"):
        GemmaRL(GemmaRLConfig(tasks=("identity",)), backend=object())


def test_grpo_on_gemma_steps_scores_stops_and_saves(tmp_path, monkeypatch):
    cfg = replace(PRESETS["cpu-smoke"], model="gemma-3-270m", device="cpu", steps=3, group=2, max_tokens=8,
                  held_out_problems=1, eval_interval=100, out_dir=str(tmp_path / "trl"))
    run = GemmaRL(cfg)
    estimate = run.estimate()
    assert "s a step" in estimate and "3 steps of 1 prompts x 2 completions" in estimate
    events = []
    for ev in run.run():
        events.append(ev)
        if ev.step == 0:
            run.stop()  # asked before the trainer starts: it ends at the end of its first step, on any machine
    first, step, last = events[0], events[1], events[-1]
    assert first.step == 0 and 0.0 <= first.held_out <= 1.0
    assert step.step == 1 and len(step.attempts) == 2
    assert step.pass_rate == sum(a.passed for a in step.attempts) / 2
    train, _ = make_problems(cfg)
    by_q = {e.question: e for e in train}
    for a in step.attempts:  # the verdicts are the checker's, on the completion the model wrote
        assert (a.passed, a.got) == score_text(by_q[a.question], a.text)
    assert last.stopped == "stopped" and last.step == 1
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path / "cache"))  # the merged model, by name, in a temp cache
    folder = run.save_model("gemma-rl-test")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
