"""Sampling is a pure, seeded function of logits: checked against hand-computed cases."""

import math

import numpy as np
import pytest

from lab.sampling import (SamplingSettings, entropy, filtered_logits, kept_tokens, log_softmax, make_rng, sample,
                          sample_with_prob, sampling_probs, softmax, top_k_filter, top_p_filter)


def test_softmax_matches_hand_computation():
    p = softmax(np.array([0.0, math.log(3.0)]))
    assert p == pytest.approx([0.25, 0.75])


def test_top_k_keeps_k_largest():
    out = top_k_filter(np.array([1.0, 3.0, 2.0]), 2)
    assert np.isneginf(out[0]) and out[1] == 3.0 and out[2] == 2.0


def test_top_p_keeps_smallest_nucleus():
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    kept = np.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [True, True, False]
    assert np.isfinite(top_p_filter(logits, 0.5)).tolist() == [True, False, False]
    assert np.isfinite(top_p_filter(logits, 0.01)).sum() == 1  # the top token always survives


def test_temperature_zero_is_argmax_and_ignores_seed():
    logits = np.array([0.1, 2.0, 1.9, -5.0])
    s = SamplingSettings(temperature=0.0)
    assert {sample(logits, s, make_rng(seed)) for seed in range(20)} == {1}
    assert sampling_probs(logits, s).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_same_seed_same_tokens_and_seeds_differ():
    logits = np.zeros(1000)
    s = SamplingSettings(temperature=1.0)
    a = [sample(logits, s, r) for r in [make_rng(7)] * 1 for _ in range(50)]
    rng = make_rng(7)
    b = [sample(logits, s, rng) for _ in range(50)]
    rng2 = make_rng(7)
    c = [sample(logits, s, rng2) for _ in range(50)]
    assert b == c
    assert len(set(a)) > 10  # a uniform distribution really is sampled


def test_sampling_frequencies_follow_probabilities():
    logits = np.log(np.array([0.7, 0.2, 0.1]))
    rng = make_rng(0)
    draws = np.bincount([sample(logits, SamplingSettings(), rng) for _ in range(4000)], minlength=3) / 4000
    assert draws == pytest.approx([0.7, 0.2, 0.1], abs=0.03)


def test_filtered_tokens_are_never_sampled():
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    s = SamplingSettings(top_k=2)
    rng = make_rng(1)
    assert {sample(logits, s, rng) for _ in range(500)} == {0, 1}


def test_entropy_of_uniform_is_log_n():
    assert entropy(log_softmax(np.zeros(8))) == pytest.approx(math.log(8))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        SamplingSettings(temperature=-1)
    with pytest.raises(ValueError):
        SamplingSettings(top_p=0.0)


def test_top_indices_matches_full_sort():
    from lab.sampling import top_indices

    rng = np.random.default_rng(3)
    for scale in (0.1, 3.0, 30.0):
        x = (rng.standard_normal(50000) * scale).astype(np.float32)
        for n in (1, 5, 40):
            assert top_indices(x, n).tolist() == np.argsort(-x, kind="stable")[:n].tolist()


@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])
def test_top_p_partial_sort_equals_full_sort(scale):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(60000) * scale
    for p in (0.5, 0.9, 0.95):
        probs = softmax(x)
        order = np.argsort(-probs, kind="stable")
        n = int(np.searchsorted(np.cumsum(probs[order]), p, side="left")) + 1
        expected = np.zeros(x.size, dtype=bool)
        expected[order[:n]] = True
        assert (np.isfinite(top_p_filter(x, p)) == expected).all()


@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])
def test_a_draw_over_the_kept_tokens_equals_the_walk_over_the_whole_vocabulary(scale):
    """sample_with_prob walks only the tokens the filters keep; the reference walks sampling_probs
    (every token, zeros for the filtered ones) in vocabulary order with the same uniform."""
    rng = np.random.default_rng(5)
    settings = [SamplingSettings(temperature=t, top_k=k, top_p=p)
                for t in (0.3, 1.0, 1.7) for k in (0, 1, 40) for p in (0.5, 0.95, 1.0)]
    for trial in range(12):
        x = (rng.standard_normal(50000) * scale).astype(np.float32)
        for s in settings:
            token, prob = sample_with_prob(x, s, make_rng(trial))
            probs = sampling_probs(x, s)
            assert np.isfinite(filtered_logits(x, s))[token] and prob > 0
            cumulative = np.cumsum(probs)
            want = int(min(np.searchsorted(cumulative, make_rng(trial).random() * cumulative[-1], side="right"),
                           probs.size - 1))
            assert token == want and prob == pytest.approx(probs[want], rel=1e-12)
            kept = kept_tokens(x.astype(np.float64) / s.temperature, s)
            assert (kept is None and np.isfinite(filtered_logits(x, s)).all()) or (
                kept.tolist() == np.flatnonzero(np.isfinite(filtered_logits(x, s))).tolist())
