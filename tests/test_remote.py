"""The remote backend against a real OpenAI-compatible server (llama-cpp-python's, on the
default SmolLM2 GGUF), compared with the same GGUF run in-process by llama.cpp."""

import math
import threading

import pytest

from lab import catalogue, remotes
from lab.errors import LabError
from lab.sampling import SamplingSettings

PROMPTS = ["The capital of France is", "Once upon a time, there was a", "1, 2, 3, 4,"]


@pytest.fixture(scope="module")
def remote(llama_server):
    b = catalogue.load(f"openai+{llama_server}")
    yield b
    b.close()


def test_spec_and_named_remotes_resolve(llama_server, tmp_path, monkeypatch):
    entry = catalogue.resolve(f"openai-chat+{llama_server}#smol")
    assert (entry.kind, remotes.find(entry.path).kind, remotes.find(entry.path).model) == ("remote", "chat", "smol")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[remotes.my-server]\nurl = "{llama_server}"\nkind = "completions"\ntop_logprobs = 8\n')
    monkeypatch.setenv("DEEPDIVE_LAB_CONFIG", str(cfg))
    b = catalogue.load("my-server")
    assert b.capabilities.logprobs_top_n == 8 and b.info.backend == "remote completions"
    assert len(b.next_token(b.tokenize(PROMPTS[0]), 8).top) == 8
    from lab.doctor import remote_lines

    line = next(x for x in remote_lines(timeout=5.0) if "my-server" in x)
    assert "answers: " in line and "SmolLM2" in line
    cfg.write_text('[remotes.bad]\nurl = "ftp://x"\n')
    with pytest.raises(LabError, match="not an http"):
        catalogue.resolve("bad")


def test_tokens_equal_the_in_process_tokenizer(remote, smol):
    for text in PROMPTS + ["strawberry", "héllo wörld ✓"]:
        assert remote.tokenize(text) == smol.tokenize(text)
        assert remote.tokenize(text, add_special=False) == smol.tokenize(text, add_special=False)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_next_token_matches_in_process(remote, smol, prompt):
    ids = smol.tokenize(prompt)
    theirs, ours = remote.next_token(ids, 5), smol.next_token(ids, 5)
    assert theirs.top[0].id == ours.top[0].id
    assert theirs.top[0].piece == ours.top[0].piece
    assert abs(theirs.top[0].prob - ours.top[0].prob) < 0.02
    # the bars read the same numbers through logits(): the server's top N at their exact values
    logits = remote.logits(ids)
    assert math.isclose(float(math.exp(logits[ours.top[0].id])), theirs.top[0].prob, rel_tol=1e-4)
    assert remote.capabilities.logprobs_top_n == 20 and remote.capabilities.limits


def test_greedy_continuation_matches_in_process(remote, smol):
    """Compared up to the first near-tie of the in-process model (a margin under 0.05, where CPU
    numerics and a server's prompt caching may flip the choice)."""
    compared = 0
    for prompt in PROMPTS:
        ids = smol.tokenize(prompt)
        ours = smol.generate(ids, SamplingSettings(temperature=0.0), 16)
        n, path = 0, list(ids)
        for tid in ours.ids:
            top = smol.next_token(path, 2).top
            if top[0].prob - top[1].prob < 0.05:
                break
            n, path = n + 1, path + [tid]
        theirs = remote.generate(ids, SamplingSettings(temperature=0.0), 16)
        same = smol.detokenize_bytes(ours.ids[:n])
        assert theirs.text.encode()[:len(same)] == same, prompt
        compared += n
    assert compared >= 6


def test_seeded_stream_reproduces_and_events_are_whole(remote, smol):
    ids = smol.tokenize(PROMPTS[1])
    settings = SamplingSettings(temperature=0.9, top_p=0.95, seed=7)
    remote.generate(ids, settings, 20)  # the server caches the prompt: compare runs that both find it cached
    a, b = remote.stream(ids, settings, 20), remote.stream(ids, settings, 20)
    ea, eb = list(a), list(b)
    assert [e.piece for e in ea] == [e.piece for e in eb] and a.result.text == b.result.text
    assert a.result.text == "".join(e.text for e in ea) and len(ea) == 20 and a.result.stop_reason == "length"
    assert all(0 < e.raw_prob <= 1 and math.isnan(e.prob) and len(e.top) == 5 for e in ea)
    other = remote.generate(ids, SamplingSettings(temperature=0.9, top_p=0.95, seed=8), 20)
    assert other.text != a.result.text


def test_stop_text_and_cancel(remote, smol):
    ids = smol.tokenize("Count: 1, 2, 3,")
    gen = remote.stream(ids, SamplingSettings(temperature=0.0), 40, stop_text=" 6")
    list(gen)
    assert gen.result.stop_reason == "stop text" and " 6" in gen.result.text
    cancel = threading.Event()
    gen = remote.stream(ids, SamplingSettings(temperature=0.0), 200, cancel)
    events = []
    for ev in gen:
        events.append(ev)
        if len(events) == 3:
            cancel.set()
    assert gen.result.stop_reason == "cancelled" and len(events) <= 4


def test_surprisal_matches_in_process(remote, smol):
    ids = smol.tokenize(PROMPTS[0])
    theirs, ours = remote.surprisal(ids), smol.surprisal(ids)
    assert [r.id for r in theirs] == [r.id for r in ours]
    for t, o in zip(theirs, ours):
        if o.rank <= 20:  # the server names only its top 20
            assert abs(t.prob - o.prob) < 0.02 and t.rank == o.rank
        else:
            assert t.rank == 21 and t.prob >= o.prob


def test_chat_endpoint_streams_the_servers_template(llama_server, smol):
    from lab.types import ChatMessage

    chat = catalogue.load(f"openai-chat+{llama_server}")
    rendered = chat.render_chat([ChatMessage("user", "What is the capital of France?")])
    assert "server" in rendered.template_source
    gen = chat.stream(rendered.ids, SamplingSettings(temperature=0.0), 12)
    events = list(gen)
    ref = smol.generate(smol.render_chat([ChatMessage("user", "What is the capital of France?")]).ids,
                        SamplingSettings(temperature=0.0), 12)
    assert events and gen.result.text.strip() and gen.result.text.split()[0] == ref.text.split()[0]
    with pytest.raises(LabError, match="logit lens over HTTP"):
        chat.lens(rendered.ids)
    chat.close()
