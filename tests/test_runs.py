"""The one run loop: N seeded samples, progress in batches, cancel, errors, and the sample cache."""

import threading

from lab.errors import LabError
from lab.runs import RunHandle, SampleCache, stream_seeds
from lab.sampling import SamplingSettings


def collect(backend, ids, seeds, cancel=None, cache=None, max_tokens=12):
    updates = []
    stream_seeds(backend, ids, SamplingSettings(temperature=0.9, top_p=0.95), seeds, max_tokens,
                 cancel or threading.Event(), updates.append, top_n=3, cache=cache)
    per_seed = {}
    for u in updates:
        per_seed.setdefault(u.seed, []).append(u)
    return per_seed


def test_each_seed_streams_the_engines_own_text_and_ends_once(smol):
    ids = smol.tokenize("Once upon a time")
    per_seed = collect(smol, ids, [3, 4])
    for seed, updates in per_seed.items():
        assert [u.done for u in updates].count(True) == 1 and updates[-1].done
        events = [e for u in updates for e in u.events]
        ref = smol.generate(list(ids), SamplingSettings(0.9, 0, 0.95, seed), 12)
        assert tuple(e.id for e in events) == tuple(ref.ids)
        assert updates[-1].stop == ref.stop_reason and updates[0].index == [3, 4].index(seed)


def test_the_cache_replays_the_same_sample_and_misses_a_damaged_file(smol, tmp_path):
    ids = smol.tokenize("The capital of France is")
    cache = SampleCache(tmp_path)
    first = collect(smol, ids, [1], cache=cache)[1]
    again = collect(smol, ids, [1], cache=cache)[1]
    assert len(again) == 1 and again[0].cached and not first[-1].cached
    assert tuple(e for u in first for e in u.events) == again[0].events
    for path in tmp_path.rglob("*.json"):
        path.write_text("{ not json")
    damaged = collect(smol, ids, [1], cache=cache)[1]
    assert not damaged[-1].cached and tuple(e for u in damaged for e in u.events) == again[0].events


def test_a_cancelled_run_reports_each_seed_cancelled_and_caches_nothing(smol, tmp_path):
    cancel = threading.Event()
    cancel.set()
    per_seed = collect(smol, smol.tokenize("Hi"), [1, 2], cancel=cancel, cache=SampleCache(tmp_path))
    assert [u[-1].stop for u in per_seed.values()] == ["cancelled", "cancelled"]
    assert not list(tmp_path.rglob("*.json"))


class Failing:
    def stream(self, *args, **kwargs):
        raise LabError("the model went away")


def test_an_error_ends_that_sample_with_its_message_and_the_next_seed_still_runs():
    updates = []
    stream_seeds(Failing(), [1, 2], SamplingSettings(), [1, 2], 4, threading.Event(), updates.append)
    assert [(u.seed, u.stop, u.error) for u in updates] == [(1, "error", "the model went away"),
                                                           (2, "error", "the model went away")]


def test_a_new_run_cancels_the_previous_one():
    runs = RunHandle()
    first = runs.start()
    second = runs.start()
    assert first.cancel.is_set() and not second.cancel.is_set()
    assert runs.is_current(second.id) and not runs.is_current(first.id)
    runs.stop()
    assert second.cancel.is_set() and not runs.running
