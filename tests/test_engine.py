"""The engine on real models (llama.cpp): distributions, sampling, streaming, KV cache, chat."""

import threading

import numpy as np
import pytest

from lab.sampling import SamplingSettings, log_softmax
from lab.types import ChatMessage


def test_capital_of_france_is_paris(smol):
    from llama_cpp import Llama

    ids = smol.tokenize("The capital of France is")
    dist = smol.next_token(ids, top_k=5)
    assert dist.top[0].piece == b" Paris"
    # reference computed now, by llama-cpp-python's own API on the same file (not our backend)
    raw = Llama(model_path=smol.llm.model_path, n_ctx=512, n_gpu_layers=0, logits_all=True, verbose=False)
    raw.eval(ids)
    ref = np.exp(log_softmax(np.array(raw.scores[len(ids) - 1], dtype=np.float32)))
    raw.close()
    assert int(np.argmax(ref)) == dist.top[0].id
    for t in dist.top:
        assert t.prob == pytest.approx(float(ref[t.id]), abs=0.02)
    assert sum(t.prob for t in dist.top) <= 1.0
    assert dist.top[0].logprob == pytest.approx(np.log(dist.top[0].prob))
    assert 0 < dist.entropy < np.log(smol.info.vocab_size)


def test_distribution_sums_to_one_and_ranks_any_token(smol):
    ids = smol.tokenize("The capital of France is")
    logits = smol.logits(ids)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    london = smol.tokenize(" London", add_special=False)[0]
    rare = int(np.argmin(probs))
    dist = smol.next_token(ids, top_k=3, query_ids=[london, rare])
    (lid, lprob, lrank), (rid, rprob, rrank) = dist.queried
    assert lprob == pytest.approx(probs[london], rel=1e-4)
    assert lrank == int((probs > probs[london]).sum()) + 1
    assert rprob == pytest.approx(probs[rare], rel=1e-3)
    assert rrank == int((probs > probs[rare]).sum()) + 1 and rrank > smol.info.vocab_size // 2
    assert dist.prob_of(london) == (lprob, lrank)


def test_temperature_zero_equals_argmax(smol):
    ids = smol.tokenize("Once upon a time")
    gen = smol.stream(ids, SamplingSettings(temperature=0), max_tokens=8)
    seq = list(ids)
    for ev in gen:
        assert ev.id == int(np.argmax(smol.logits(seq, prompt_len=len(ids))))  # the stream's own states
        seq.append(ev.id)
    assert gen.result.stop_reason in ("length", "eos")


def test_seeded_sampling_is_reproducible(smol):
    ids = smol.tokenize("My favourite animal is")
    s = SamplingSettings(temperature=1.0, top_p=0.95, seed=1234)
    a = smol.generate(ids, s, 20)
    b = smol.generate(ids, s, 20)
    c = smol.generate(ids, SamplingSettings(temperature=1.0, top_p=0.95, seed=99), 20)
    assert a.ids == b.ids
    assert a.ids != c.ids


def test_cancelled_stream_stops_within_two_tokens(smol):
    cancel = threading.Event()
    gen = smol.stream(smol.tokenize("Count from one to a hundred:"), SamplingSettings(temperature=0.0),
                      max_tokens=200, cancel=cancel)
    seen = 0
    for ev in gen:
        seen += 1
        if ev.index == 2:
            cancel.set()
    assert gen.result.stop_reason == "cancelled"
    assert seen <= 3 + 2


def test_stop_text_ends_the_stream_at_the_token_that_completes_it(smol):
    ids = smol.tokenize("1, 2, 3, 4, 5, 6,")
    full = smol.generate(ids, SamplingSettings(temperature=0), 24)
    stop = smol.detokenize(full.ids[4:6])  # text the greedy run does produce, on this machine too
    first = next(i for i in range(len(full.ids)) if stop in smol.detokenize(full.ids[:i + 1]))
    gen = smol.stream(ids, SamplingSettings(temperature=0), 24, stop_text=stop)
    events = list(gen)
    assert gen.result.stop_reason == "stop text" and gen.result.text.endswith(stop)
    assert tuple(e.id for e in events) == full.ids[:first + 1]  # the same tokens, cut at the one completing it


def test_token_events_carry_alternatives_and_text(smol):
    gen = smol.stream(smol.tokenize("The capital of France is"), SamplingSettings(temperature=0), max_tokens=3,
                      top_n=4)
    events = list(gen)
    first = events[0]
    assert first.piece == b" Paris" and first.text == " Paris"
    assert len(first.top) == 4 and first.top[0].id == first.id
    assert first.raw_prob == pytest.approx(first.top[0].prob)
    assert gen.result.text == "".join(e.text for e in events)


def test_kv_cache_extends_by_one_decode(smol):
    ids = smol.tokenize("The quick brown fox jumps over the lazy dog. " * 20)
    n = len(ids)
    the = smol.tokenize(" The", add_special=False)[0]
    smol.next_token(ids)
    before = smol.tokens_evaluated
    step = smol.logits(ids + [the], prompt_len=n)  # one token after the prompt
    assert smol.tokens_evaluated - before == 1
    # Branching back to a shorter path after the prompt re-evaluates only its last token.
    smol.logits(ids + [the, the, the], prompt_len=n)
    before = smol.tokens_evaluated
    again = smol.logits(ids + [the], prompt_len=n)
    assert smol.tokens_evaluated - before == 1
    # The same state whether reached incrementally or from scratch: bit for bit.
    smol.logits(ids[:5])  # forces a different path first
    before = smol.tokens_evaluated
    fresh = smol.logits(ids + [the], prompt_len=n)
    assert smol.tokens_evaluated - before == n + 1  # the prompt whole, then the token
    np.testing.assert_array_equal(step, again)
    np.testing.assert_array_equal(step, fresh)


def test_incremental_and_fresh_logits_agree(smol):
    """A token evaluated alone after the prompt and the same token inside the prompt are
    different computations (llama.cpp's batch shapes differ); they agree within rounding."""
    ids = smol.tokenize("Water boils at a temperature of")
    step = smol.logits(ids, prompt_len=1)  # the first token as the prompt, the rest one at a time
    smol.logits(smol.tokenize("Something else entirely"))
    whole = smol.logits(ids)  # the whole sequence as the prompt
    assert int(np.argmax(step)) == int(np.argmax(whole))
    p_step, p_whole = np.exp(log_softmax(step)), np.exp(log_softmax(whole))
    assert np.abs(p_step - p_whole).max() < 0.05
    np.testing.assert_array_equal(step, smol.logits(ids, prompt_len=1))  # and each is reproducible


def test_chat_template_matches_llama_cpp_formatter(smol):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    msgs = [ChatMessage("system", "You are terse."), ChatMessage("user", "How many r are in strawberry?")]
    rendered = smol.render_chat(msgs)
    fmt = Jinja2ChatFormatter(template=smol._chat_template(), eos_token="<|im_end|>", bos_token="<|im_start|>")
    ref = fmt(messages=[{"role": m.role, "content": m.content} for m in msgs])
    assert rendered.text == ref.prompt
    assert rendered.text.startswith("<|im_start|>system\nYou are terse.<|im_end|>")
    specials = [smol.token_bytes(rendered.ids[s.start]) for s in rendered.special]
    assert specials == [b"<|im_start|>", b"<|im_end|>", b"<|im_start|>", b"<|im_end|>", b"<|im_start|>"]
    for s in rendered.special:
        assert rendered.text[s.char_start:s.char_end] == smol.token_bytes(rendered.ids[s.start]).decode()
    assert smol.detokenize(rendered.ids) == rendered.text


def test_base_model_has_no_chat_template(gemma):
    from lab.errors import LabError

    assert not gemma.info.has_chat_template
    with pytest.raises(LabError, match="no chat template"):
        gemma.render_chat([ChatMessage("user", "hi")])


def test_model_info(smol, gemma):
    assert smol.info.vocab_size == 49152 and smol.info.architecture == "llama"
    assert smol.info.quantisation == "Q4_1" and smol.info.has_chat_template
    assert gemma.info.vocab_size == 262144 and gemma.info.architecture == "gemma3"
    assert gemma.info.quantisation == "Q4_K_M"
    assert 250e6 < gemma.info.parameters < 300e6
    assert smol.info.backend == "llama.cpp"


def test_tokenize_roundtrips_tricky_text(smol, gemma):
    for text in ["héllo wörld", "你好，世界", "👩‍👩‍👧 family", "tab\tand\nnewline", "e\u0301", "مرحبا"]:
        for b in (smol, gemma):
            ids = b.tokenize(text, add_special=False)
            assert b.detokenize_bytes(ids) == text.encode()


def _complete(data: bytes) -> bytes:
    """`data` without an unfinished UTF-8 character at its end (the reference for streams)."""
    for back in range(1, min(3, len(data)) + 1):
        lead = data[-back]
        if lead >= 0xC0:  # the start of a multi-byte character
            size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            return data[:-back] if back < size else data
        if lead < 0x80:
            return data
    return data


def test_complete_utf8_reference():
    smile = "😀".encode()
    assert _complete(b"ab" + smile[:2]) == b"ab" and _complete(b"ab" + smile) == b"ab" + smile
    assert _complete("é".encode()[:1]) == b"" and _complete(b"x") == b"x"


@pytest.mark.parametrize("prompt", ["Here is a rare emoji: 🦩 and another one:", "The emoji for a smiling face is"])
def test_partial_utf8_is_held_back_in_streams(gemma, prompt):
    assert len(gemma.tokenize("🦩", add_special=False)) > 1  # a character Gemma spells in byte tokens
    gen = gemma.stream(gemma.tokenize(prompt), SamplingSettings(temperature=0), 12)
    events = list(gen)
    data = b""
    released = ""
    for e in events:
        if e.id not in gemma.eos_ids:
            data += e.piece
        released += e.text
        # what a stream has released is every complete character so far, never half of one
        assert released == _complete(data).decode("utf-8", errors="replace")
    assert gen.result.text == data.decode("utf-8", errors="replace")
