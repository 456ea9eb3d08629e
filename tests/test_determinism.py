"""Same model, prompt, settings and seed => same answer, whatever the model ran before.

For both default models and the three paths that sample (the Failures screen's `run_answers`,
Base vs chat's seeded streams, the Next-token explorer's path), seeds 1-10 run in forward
order, then in reverse order after an unrelated prompt, on the shared model (whose history is
whatever other tests left), and each seed alone on a freshly loaded model: the texts (and the
explorer's numbers) are identical. Before the fix llama.cpp re-evaluated only the last token
of a cached prompt, and seeded answers depended on what ran first.
"""

import threading
from dataclasses import replace

import pytest

from lab import catalogue
from lab.prompts import PRESETS, base_request, chat_request
from lab.explorer import Explorer
from lab.failures import CARD_BY_KEY, make_prompt, run_answers
from lab.runs import stream_seeds
from lab.sampling import SamplingSettings

SEEDS = list(range(1, 11))
MODELS = {"smol": catalogue.CHAT_DEFAULT, "gemma": catalogue.BASE_DEFAULT}
SETTINGS = SamplingSettings(temperature=0.9, top_p=0.95)
MAX_TOKENS = 5


VARIANT = replace(CARD_BY_KEY["count"].experiment().variants[0], max_tokens=MAX_TOKENS)
NEXT_PROMPT = "The capital of France is"


def failures_prompt(backend):
    return make_prompt(backend, VARIANT, "chat" if backend.info.has_chat_template else "base")


def failures_path(backend, seeds):
    """The strawberry card through `run_answers` (no answer cache): seed -> answer text."""
    got = {}
    run_answers(backend, VARIANT, failures_prompt(backend), SETTINGS, seeds,
                lambda i, a: got.__setitem__(seeds[i], a), threading.Event(), cache=None)
    assert all(a.done and a.stop != "error" for a in got.values())
    return {seed: a.text for seed, a in got.items()}


def base_chat_prompt(backend):
    if backend.info.has_chat_template:
        return chat_request(backend, PRESETS["who are you?"], "You are a helpful assistant.")
    return base_request(backend, PRESETS["few-shot assistant"], True)


def base_chat_path(backend, seeds):
    """Base vs chat's request for this model's role, streamed by `stream_seeds`: seed -> text."""
    req = base_chat_prompt(backend)
    texts: dict[int, str] = {seed: "" for seed in seeds}
    stream_seeds(backend, req.ids, SETTINGS, seeds, MAX_TOKENS, threading.Event(),
                 lambda u: texts.__setitem__(u.seed, texts[u.seed] + u.text), stop_text=req.stop_text)
    return texts


def next_token_path(backend, seeds):
    """The explorer: from the prompt, three sampled steps per seed, then undo back to the
    prompt (the next seed branches from it). seed -> (path text, top-5 probabilities shown)."""
    ex = Explorer(backend)
    prompt = ex.set_prompt(NEXT_PROMPT)
    out = {}
    for seed in seeds:
        for step in range(3):
            ex.prefetch(ex.ids, [row.id for row in ex.filtered(SETTINGS, 2)], lambda: True)  # look-ahead as the screen does
            ex.append(ex.sample(SETTINGS, seed * 10 + step), f"sampled (seed {seed})")
        rows = ex.filtered(SETTINGS, 5)
        out[seed] = (backend.detokenize(ex.ids[len(prompt):]), tuple((r.id, r.raw_prob, r.prob) for r in rows))
        while ex.undo():
            pass
    return out


PATHS = {
    "failures": (failures_path, lambda b: failures_prompt(b).ids),
    "base vs chat": (base_chat_path, lambda b: base_chat_prompt(b).ids),
    "next token": (next_token_path, lambda b: b.tokenize(NEXT_PROMPT)),
}


@pytest.mark.parametrize("name", list(PATHS))
@pytest.mark.parametrize("model", ["smol", "gemma"])
def test_a_seed_gives_the_same_text_whatever_ran_before(request, model, name):
    path, prompt_of = PATHS[name]
    shared = request.getfixturevalue(model)
    forward = path(shared, SEEDS)
    shared.generate(shared.tokenize("An unrelated prompt, to leave other state behind:"), SETTINGS, 4)
    ids = list(prompt_of(shared))
    start = max(1, len(ids) - 8)
    for k in range(start + 1, len(ids) + 1):  # the prompt's end reached one token at a time, as on Next token
        shared.logits(ids[:k], prompt_len=start)
    reverse = path(shared, SEEDS[::-1])
    alone = {}
    for seed in SEEDS:
        fresh = catalogue.load(MODELS[model], backend="llama.cpp", device="cpu")
        try:
            alone.update(path(fresh, [seed]))
        finally:
            fresh.close()
    assert forward == reverse
    assert forward == alone
    assert len(set(forward.values())) > 1  # the seeds do draw different answers


def test_a_state_is_the_same_however_the_cache_was_left(smol):
    """The logits after (ids, prompt length) are bit-identical after any history: another
    prompt, a longer path, a shorter one, the surprisal pass that evaluates every position."""
    ids = smol.tokenize("How many r are in the word strawberry?")
    extra = smol.tokenize(" There are three", add_special=False)
    n = len(ids)
    want = smol.logits(ids + extra, prompt_len=n)
    histories = [
        lambda: smol.logits(smol.tokenize("Something else")),
        lambda: smol.logits(ids + extra + extra, prompt_len=n),
        lambda: smol.logits(ids + extra[:1], prompt_len=n),
        lambda: smol.logits(ids + extra),  # the same ids with another prompt length
        lambda: smol.surprisal(ids + extra),
    ]
    for before in histories:
        before()
        got = smol.logits(ids + extra, prompt_len=n)
        assert (got == want).all()
