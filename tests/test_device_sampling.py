"""Sampling on the device (`lab.sampling.sample_rows_torch`) against the numpy path, and the
transformers backend's device paths (tensor sampling, static KV cache, compiled decode step)
checked on CPU tensors against its exact CPU path, computed in the same run."""

import threading

import numpy as np
import pytest

from lab.backends.hf import TransformersBackend
from lab.backends.hf_decode import COMPILING, StaticDecoder
from lab.sampling import SamplingSettings, make_rng, sample_rows_torch, sample_with_prob, sampling_probs, top_indices

torch = pytest.importorskip("torch")

SETTINGS = [SamplingSettings(temperature=t, top_k=k, top_p=p)
            for t in (0.0, 0.7, 1.0, 1.6) for k in (0, 1, 5, 40) for p in (1.0, 0.9, 0.3)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"t{s.temperature}-k{s.top_k}-p{s.top_p}")
def test_the_same_uniform_draws_the_same_token_with_the_same_probability(settings):
    data = np.random.default_rng(11)
    for trial in range(40):
        vocab = int(data.integers(2, 400))
        logits = (data.normal(size=vocab) * data.uniform(0.5, 6)).astype(np.float32)
        want_token, want_prob = sample_with_prob(logits, settings, make_rng(trial))
        uniforms = [] if settings.greedy else [make_rng(trial).random()]
        row = sample_rows_torch(torch.from_numpy(logits)[None], settings, uniforms, 3)[0]
        assert int(row[0]) == want_token
        assert row[1] == pytest.approx(want_prob, abs=1e-9)
        assert row[1] == pytest.approx(float(sampling_probs(logits, settings)[want_token]), abs=1e-9)
        lse = np.logaddexp.reduce(logits.astype(np.float64))
        assert row[2] == pytest.approx(np.exp(logits[want_token] - lse), rel=1e-6)
        assert [int(i) for i in row[3:6]] == [int(i) for i in top_indices(logits, 3)]
        np.testing.assert_allclose(row[6:9], logits[top_indices(logits, 3)] - lse, atol=1e-6)


def test_rows_of_a_batch_are_sampled_each_with_its_own_draw():
    data = np.random.default_rng(5)
    logits = data.normal(size=(4, 300)).astype(np.float32) * 3
    settings = SamplingSettings(temperature=0.9, top_k=50, top_p=0.95)
    uniforms = [make_rng(s).random() for s in range(4)]
    rows = sample_rows_torch(torch.from_numpy(logits), settings, uniforms, 2)
    for r, (row_logits, seed) in enumerate(zip(logits, range(4))):
        assert int(rows[r][0]) == sample_with_prob(row_logits, settings, make_rng(seed))[0]


def test_tensor_sampling_in_the_backend_gives_the_numpy_paths_stream(smol_hf):
    ids = smol_hf.tokenize("Once upon a time")
    on_device = TransformersBackend(smol_hf.model, smol_hf.tok, smol_hf.info, "cpu", decode="dynamic",
                                    device_sampling=True)
    for settings in (SamplingSettings(temperature=0.8, top_k=40, top_p=0.95, seed=3), SamplingSettings(temperature=0)):
        want = list(smol_hf.stream(ids, settings, 12))
        got = list(on_device.stream(ids, settings, 12))
        assert [e.id for e in got] == [e.id for e in want]
        for a, b in zip(got, want):
            assert a.prob == pytest.approx(b.prob, abs=1e-5)
            assert a.raw_prob == pytest.approx(b.raw_prob, abs=1e-5)
            assert [t.id for t in a.top] == [t.id for t in b.top]


def test_a_static_cache_gives_the_dynamic_caches_logits_whatever_ran_before(smol_hf):
    static = TransformersBackend(smol_hf.model, smol_hf.tok, smol_hf.info, "cpu", decode="static", static_len=64)
    ids = smol_hf.tokenize("The capital of France is")
    extra = smol_hf.tokenize(" Paris, and the capital of Spain", add_special=False)
    want = smol_hf.logits(ids + extra, prompt_len=len(ids))
    first = static.logits(ids + extra, prompt_len=len(ids))
    np.testing.assert_allclose(first, want, atol=2e-3)
    static.logits(smol_hf.tokenize("Something else entirely, longer than before"))
    static.logits(ids + extra[:2], prompt_len=len(ids))  # a shorter path: the cache is cropped
    np.testing.assert_array_equal(static.logits(ids + extra, prompt_len=len(ids)), first)
    too_long = list(ids) * 20  # beyond the 64 positions of the static cache: the dynamic cache serves
    np.testing.assert_allclose(static.logits(too_long), smol_hf.logits(too_long), atol=2e-3)
    greedy = SamplingSettings(temperature=0)
    before = static.tokens_evaluated
    batch = static.generate_batch(ids, greedy, [1, 2, 3], 10)  # a batch of 3 on a static cache of its own
    assert static.tokens_evaluated - before == 3 * len(ids) + 3 * 9
    assert [r.ids for r in batch] == [smol_hf.generate(ids, greedy, 10).ids] * 3


def test_the_decode_step_compiles_in_the_background_while_tokens_are_served(smol_hf, monkeypatch):
    gate = threading.Event()
    warm = StaticDecoder._warm

    def held_warm(self):
        assert gate.wait(60)
        warm(self)

    monkeypatch.setattr(StaticDecoder, "_warm", held_warm)
    fast = TransformersBackend(smol_hf.model, smol_hf.tok, smol_hf.info, "cpu", decode="static", static_len=64,
                               compile_options={"backend": "eager", "dynamic": False})
    try:
        ids = smol_hf.tokenize("The capital of France is")
        greedy = SamplingSettings(temperature=0)
        assert fast.activity == COMPILING  # what a screen shows while the first tokens still come
        served = fast.generate(ids, greedy, 8)
        assert served.ids == smol_hf.generate(ids, greedy, 8).ids
        gate.set()
        assert fast._static.wait(120)
        assert fast.activity == ""
        assert fast._static.status == "decode step compiled"
        after = fast.generate(ids + [13], greedy, 8)  # a new prompt: the static cache and compiled step
        assert fast._on_static
        assert after.ids == smol_hf.generate(ids + [13], greedy, 8).ids
    finally:
        gate.set()
        fast.close()


def test_the_gpu_check_script_runs_in_its_cpu_smoke_mode(smol_hf, tmp_path, monkeypatch):
    """bench/gpu_check.py is prepared for the GPU machine; its --cpu mode proves it runs (no timing asserted)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setenv("OUT", str(tmp_path))
    gpu_check.main(["make", str(tmp_path / "model")])
    assert sum(f.stat().st_size for f in (tmp_path / "model").iterdir()) < 64 * 2**20  # it travels
    figures = gpu_check.run(str(tmp_path / "model"), cpu=True, tokens=8)
    assert figures["top1_agree"] and figures["seeded_repeats"]
    assert figures["tv_compiled_vs_eager"] < 0.01
    assert set(figures["ratios"]) >= {"lab / HF generate static", "lab device / lab CPU", "batch 8 / batch 1"}
    assert (tmp_path / "gpu_check.json").exists()


async def test_the_app_says_when_a_model_starts_and_ends_compiling_its_decode_step(smol_hf, monkeypatch):
    """The compile runs for real (eager backend, held by a gate until the first notice is on screen);
    the app polls `activity` and notifies when it starts and when it ends."""
    from lab.session import Session, Settings
    from screens.headless import settle
    from tests.helpers import make_test_app, until

    gate = threading.Event()
    warm = StaticDecoder._warm
    monkeypatch.setattr(StaticDecoder, "_warm", lambda self: (gate.wait(60), warm(self)))
    fast = TransformersBackend(smol_hf.model, smol_hf.tok, smol_hf.info, "cpu", decode="static", static_len=64,
                               compile_options={"backend": "eager", "dynamic": False})
    session = Session(Settings())
    session._backends = {"chat": fast}  # loaded, as the app's own load would leave it
    session.close = lambda: None
    app = make_test_app(session=session, load_models=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)

            def notice(text: str):  # the app polls once a second
                return lambda: any(text in str(n.message) for n in app._notifications)

            assert await until(pilot, notice(COMPILING))
            gate.set()
            assert fast._static.wait(120)
            assert await until(pilot, notice("done (" + COMPILING))
    finally:
        gate.set()
        fast.close()
