"""Cross-backend oracle: llama.cpp and transformers, fed the same GGUF, agree (DESIGN.md)."""

import pytest

from lab.types import ChatMessage

pytestmark = pytest.mark.slow

PROMPTS = ["The capital of France is", "def fibonacci(n):", "The chemical symbol for gold is"]  # clear top-3s; near-ties flip


def _agree(a, b, prompt):
    ids_a, ids_b = a.tokenize(prompt), b.tokenize(prompt)
    assert ids_a == ids_b, "both backends tokenize the same way"
    da, db = a.next_token(ids_a, top_k=3), b.next_token(ids_b, top_k=3)
    assert [t.id for t in da.top] == [t.id for t in db.top]
    assert da.top[0].prob == pytest.approx(db.top[0].prob, abs=0.03)
    return da, db


@pytest.mark.parametrize("prompt", PROMPTS)
def test_smollm2_backends_agree(smol, smol_hf, prompt):
    da, db = _agree(smol, smol_hf, prompt)
    if prompt.startswith("The capital"):
        assert db.top[0].piece == b" Paris"


@pytest.mark.parametrize("prompt", ["The capital of France is", "def fibonacci(n):", "1, 2, 3, 4, 5,"])
def test_gemma_backends_agree(gemma, gemma_hf, prompt):
    _agree(gemma, gemma_hf, prompt)


def test_token_pieces_agree(smol, smol_hf, gemma, gemma_hf):
    for a, b in ((smol, smol_hf), (gemma, gemma_hf)):
        ids = a.tokenize("Hello, wörld! 123 \n\tspaces  ", add_special=False)
        assert [a.token_bytes(i) for i in ids] == [b.token_bytes(i) for i in ids]


def test_chat_template_equals_transformers_rendering(smol, smol_hf):
    msgs = [ChatMessage("system", "Be brief."), ChatMessage("user", "Who are you?")]
    ref = smol_hf.tok.apply_chat_template([{"role": m.role, "content": m.content} for m in msgs],
                                          tokenize=False, add_generation_prompt=True)
    assert smol.render_chat(msgs).text == ref
    assert smol_hf.render_chat(msgs).text == ref
    assert smol.render_chat(msgs).ids == smol_hf.render_chat(msgs).ids


def test_logit_lens_last_layer_is_the_models_prediction(smol_hf):
    ids = smol_hf.tokenize("The capital of France is")
    layers = smol_hf.lens(ids, top_k=1)
    assert len(layers) == smol_hf.model.config.num_hidden_layers + 1
    assert layers[-1].top[0].id == smol_hf.next_token(ids, 1).top[0].id
    assert layers[-1].top[0].piece == b" Paris"


def test_lens_unavailable_on_llama_cpp_says_so(smol):
    from lab.errors import LabError

    assert not smol.capabilities.supports_hidden_states
    with pytest.raises(LabError, match="hidden states"):
        smol.lens(smol.tokenize("hi"))


def test_hf_kv_cache_reuse(smol_hf):
    import numpy as np

    ids = smol_hf.tokenize("The quick brown fox jumps over the lazy dog.")
    full = smol_hf.logits(ids)
    before = smol_hf.tokens_evaluated
    step = smol_hf.logits(ids + [13], prompt_len=len(ids))  # one token after the prompt: one pass of one token
    assert smol_hf.tokens_evaluated - before == 1
    assert int(full.argmax()) == int(smol_hf.logits(ids).argmax())
    smol_hf.logits(smol_hf.tokenize("Something else entirely"))
    np.testing.assert_array_equal(step, smol_hf.logits(ids + [13], prompt_len=len(ids)))  # whatever ran before
