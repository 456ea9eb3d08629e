"""The next-token explorer's look-ahead: states one key away, computed in the background,
are the model's own logits, and a step never computes a state twice."""

import threading

import numpy as np

from lab.explorer import Explorer
from lab.sampling import SamplingSettings


def test_prefetched_states_equal_the_engine_and_cost_the_path_no_model_call(smol):
    ex = Explorer(smol)
    ids = ex.set_prompt("The capital of France is")
    top = [row.id for row in ex.filtered(SamplingSettings(), 3)]
    assert ex.prefetch(ids, top, lambda: True) == 3
    calls = ex.model_calls
    ex.append(top[1], "picked #2")
    assert ex.model_calls == calls and ex.prefetch_calls == 3
    # the path's state is the engine's for (prompt + pick, prompt length): the pick evaluated alone
    np.testing.assert_array_equal(ex.logits(), smol.logits(list(ids) + [top[1]], prompt_len=len(ids)))
    ex.undo()
    np.testing.assert_array_equal(ex.logits(), ex.cached(ids))


def test_a_step_waits_for_the_same_state_in_flight_instead_of_computing_it_twice(smol):
    ex = Explorer(smol)
    ids = ex.set_prompt("Once upon a time")
    token = ex.filtered(SamplingSettings(), 1)[0].id
    started = threading.Event()
    original = smol.logits

    def slow_logits(seq, **kwargs):
        started.set()
        threading.Event().wait(0.2)  # a slow model: the step arrives while this runs
        return original(seq, **kwargs)

    smol.logits = slow_logits
    try:
        t = threading.Thread(target=ex.prefetch, args=(ids, [token], lambda: True))
        t.start()
        started.wait(5)
        ex.append(token, "picked #1")
        t.join(5)
    finally:
        del smol.logits
    assert ex.prefetch_calls == 1 and ex.model_calls == 1  # the prompt once, the step's state once (ahead)


def test_prefetch_stops_when_the_path_moves_on(smol):
    ex = Explorer(smol)
    ids = ex.set_prompt("1, 2, 3,")
    top = [row.id for row in ex.filtered(SamplingSettings(), 5)]
    wanted = iter([True, False, False, False, False])
    assert ex.prefetch(ids, top, lambda: next(wanted)) == 1



def test_appends_from_a_worker_racing_undo_and_redo_keep_the_path_consistent(smol):
    ex = Explorer(smol)
    prompt = ex.set_prompt("Once upon a time")
    tokens = [row.id for row in ex.filtered(SamplingSettings(), 4)]
    done = threading.Event()
    errors: list[BaseException] = []

    def appender() -> None:
        try:
            for i in range(40):
                ex.append(tokens[i % len(tokens)], f"auto {i}")
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            done.set()

    moves = 0
    worker = threading.Thread(target=appender)
    worker.start()
    while not done.is_set():  # the UI thread: undo and redo as fast as it can meanwhile
        ex.undo() if moves % 3 else ex.redo()
        moves += 1
    worker.join()
    assert errors == [] and moves > 0
    step, position, count = ex.state()
    assert count == len(ex.history) and 0 <= position < count and step is ex.history[position]
    assert ex.history[0].ids == prompt
    for before, after in zip(ex.history, ex.history[1:]):
        assert after.ids[:-1] == before.ids  # each state is the one before it plus one token
    ex.redo()
    while ex.redo():
        pass
    last = ex.ids
    assert ex.position == len(ex.history) - 1
    # the logits kept for the last state are that state's: the engine's canonical ones, bit for bit
    np.testing.assert_array_equal(ex.logits(), smol.logits(list(last), prompt_len=len(prompt)))
    assert np.abs(ex.logits() - ex.cached(last[:-1])).max() > 1.0


def test_the_rehearsal_cache_gives_the_live_states_bit_for_bit_and_survives_damage(smol, tmp_path):
    from lab.explorer import LogitsStore
    from lab.runs import model_identity

    store = lambda: LogitsStore(tmp_path / "logits", model_identity(smol), smol.info.vocab_size)  # noqa: E731
    rehearsal = Explorer(smol, store(), record=lambda: True)
    ids = rehearsal.set_prompt("The capital of France is")
    token = rehearsal.filtered(SamplingSettings(), 2)[1].id
    rehearsal.append(token, "picked #2")
    assert rehearsal.live_calls == 2 and len(list((tmp_path / "logits").rglob("*.npy"))) == 2

    stage = Explorer(smol, store())
    stage.set_prompt("The capital of France is")
    stage.append(token, "picked #2")
    assert stage.live_calls == 0 and stage.model_calls == rehearsal.model_calls  # both states read from disk
    live = smol.logits(list(ids) + [token], prompt_len=len(ids))
    np.testing.assert_array_equal(stage.logits(), live)
    np.testing.assert_array_equal(stage.cached(ids), smol.logits(list(ids)))

    # the prompt length is part of the key: the same ids evaluated whole are another state
    assert store().get(ids + (token,), len(ids) + 1) is None
    # a damaged or truncated file is a miss, computed live again (and not written when not recording)
    for path in (tmp_path / "logits").rglob("*.npy"):
        path.write_bytes(path.read_bytes()[:100])
    cold = Explorer(smol, store())
    cold.set_prompt("The capital of France is")
    assert cold.live_calls == 1
    np.testing.assert_array_equal(cold.logits(), smol.logits(list(ids)))
    assert all(p.stat().st_size == 100 for p in (tmp_path / "logits").rglob("*.npy"))
