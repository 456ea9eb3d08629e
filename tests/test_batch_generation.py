"""Batched generation: N samples of one prompt in one forward per token (transformers, tiny GPT)
or one after another (the base class's default), each sample the stream its seed gives alone."""

import threading

import pytest
import torch

from lab.backends.tiny import TinyBackend
from lab.errors import LabError
from lab.gpt import GPT, GPTConfig
from lab.sampling import SamplingSettings
from lab.train import Corpus
from lab.types import ModelInfo

GREEDY = SamplingSettings(temperature=0)
SAMPLED = SamplingSettings(temperature=0.9, top_k=40, top_p=0.95)
SEEDS = [3, 1, 4, 1, 5]


@pytest.fixture(scope="module")
def tiny():
    """A small tiny-GPT of seeded random weights over a character vocabulary."""
    torch.manual_seed(0)
    text = "the quick brown fox jumps over the lazy dog. "
    chars = sorted(set(text))
    cfg = GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = GPT(cfg).eval()
    info = ModelInfo(name="tiny-test", architecture="tiny-gpt", parameters=model.n_params(), vocab_size=len(chars),
                     context_length=16, quantisation="float32", backend="torch (tiny)", device="cpu",
                     has_chat_template=False, source="random weights")
    return TinyBackend(model, Corpus("char", [c.encode() for c in chars]), info)


def _alone(backend, ids, settings, seeds, n):
    return [backend.generate(ids, SamplingSettings(settings.temperature, settings.top_k, settings.top_p, seed), n)
            for seed in seeds]


@pytest.mark.parametrize("name", ["smol_hf", "tiny"])
def test_a_greedy_batch_gives_the_ids_of_the_streams_alone(request, name):
    backend = request.getfixturevalue(name)
    ids = backend.tokenize("the quick brown")
    before = backend.tokens_evaluated
    batch = backend.generate_batch(ids, GREEDY, [1, 2, 3], 20)  # longer than the tiny GPT's 16-token window
    assert backend.tokens_evaluated > before
    alone = _alone(backend, ids, GREEDY, [1], 20)[0]
    assert [r.ids for r in batch] == [alone.ids] * 3
    assert [r.text for r in batch] == [alone.text] * 3


@pytest.mark.parametrize("name", ["smol_hf", "tiny"])
def test_a_seeded_batch_repeats_and_each_sample_starts_as_its_seed_does_alone(request, name):
    backend = request.getfixturevalue(name)
    ids = backend.tokenize("the lazy dog")
    first = backend.generate_batch(ids, SAMPLED, SEEDS, 12)
    backend.generate(backend.tokenize("something unrelated"), SAMPLED, 4)
    again = backend.generate_batch(ids, SAMPLED, SEEDS, 12)
    assert [r.ids for r in first] == [r.ids for r in again]
    assert first[1].ids == first[3].ids  # the same seed twice in one batch
    alone = _alone(backend, ids, SAMPLED, SEEDS, 12)
    # The first token comes from the prompt's own logits: the same draw as alone. (Later tokens may
    # part where the batch's arithmetic rounds differently and a draw sits on a boundary.)
    assert [r.ids[0] for r in first] == [r.ids[0] for r in alone]
    assert len({r.ids for r in first}) > 1


def test_events_carry_each_samples_tokens_and_text(smol_hf):
    ids = smol_hf.tokenize("The capital of France is")
    gen = smol_hf.stream_batch(ids, SAMPLED, [7, 8], 10, top_n=3)
    events = list(gen)
    for k, result in enumerate(gen.results):
        mine = [e for i, e in events if i == k]
        assert tuple(e.id for e in mine) == result.ids
        assert "".join(e.text for e in mine) == result.text
        assert [e.index for e in mine] == list(range(len(mine)))
        assert all(len(e.top) == 3 and 0 < e.prob <= 1 for e in mine)


def test_a_backend_without_a_batched_path_runs_the_samples_one_after_another(smol):
    ids = smol.tokenize("Once upon a time")
    batch = smol.generate_batch(ids, SAMPLED, SEEDS[:3], 10)
    assert [r.ids for r in batch] == [r.ids for r in _alone(smol, ids, SAMPLED, SEEDS[:3], 10)]


def test_each_sample_stops_on_its_own_and_cancel_stops_them_all(tiny):
    ids = tiny.tokenize("the ")
    texts = [r.text for r in tiny.generate_batch(ids, SAMPLED, SEEDS, 12)]
    stop = texts[0][2:4]
    results = tiny.generate_batch(ids, SAMPLED, SEEDS, 12, stop_text=stop)
    assert results[0].stop_reason == "stop text" and results[0].text.endswith(stop)
    for text, r in zip(texts, results):
        assert r.stop_reason == ("stop text" if stop in text else "length")
        assert text.startswith(r.text)
    cancel = threading.Event()
    cancel.set()
    assert [r.stop_reason for r in tiny.generate_batch(ids, SAMPLED, SEEDS, 12, cancel)] == ["cancelled"] * 5


def test_a_batch_without_seeds_is_refused_with_a_message(tiny):
    with pytest.raises(LabError, match="at least one seed"):
        tiny.generate_batch(tiny.tokenize("the"), SAMPLED, [], 4)
