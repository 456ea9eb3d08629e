"""Every fault of a remote server gives a clear message (a LabError), loses nothing, and the
key never shows. The server is the tests' own (tests/fault_server.py): no internet needed."""

import io
import math
import socket
import threading
from contextlib import redirect_stdout
from dataclasses import replace

import pytest

from lab import catalogue, remotes
from lab.backends.remote import RemoteBackend
from lab.errors import LabError
from lab.sampling import SamplingSettings
from tests.fault_server import FaultServer

KEY = "sk-planted-9f8e7d6c5b4a39281706"


@pytest.fixture(scope="module")
def server():
    srv = FaultServer()
    yield srv
    srv.shutdown()


def config(url: str, **fields) -> remotes.RemoteConfig:
    return replace(remotes.parse_spec(f"openai+{url}#m"), backoff=0.01, **fields)


def remote(url: str, **fields) -> RemoteBackend:
    return RemoteBackend.connect(config(url, **fields))


@pytest.fixture
def planted(monkeypatch, tmp_path, server):
    """A configured remote whose key is in the environment, pointing at the 401 fault."""
    monkeypatch.setenv("DDL_TEST_KEY", KEY)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[remotes.planted]\nurl = "{server.url("401")}"\nmodel = "m"\nkey_env = "DDL_TEST_KEY"\n'
                   f'connect_timeout = 1\n')
    monkeypatch.setenv("DEEPDIVE_LAB_CONFIG", str(cfg))
    return "planted"


def test_ok_server_gives_top_n_and_streams(server):
    b = remote(server.url("ok"))
    ids = b.tokenize("hi")
    assert ids == list(b"hi") and b.detokenize(ids) == "hi"
    d = b.next_token(ids, 3)
    assert [t.piece for t in d.top] == [b"a", b"b", b"c"] and abs(d.top[0].prob - math.exp(-0.3)) < 1e-6
    gen = b.stream(ids, SamplingSettings(seed=3), 4)
    assert "".join(e.text for e in gen) == "xxxx" and gen.result.stop_reason == "length"
    path, headers, body = server.requests[-1]
    assert body["seed"] == 3 and body["stream"] is True and body["prompt"] == "hi"


def test_server_down_dns_and_connect_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(LabError, match="nothing answers at 127.0.0.1"):
        remote(f"http://127.0.0.1:{port}/v1")
    with pytest.raises(LabError, match="cannot resolve no-such-host.invalid"):
        remote("http://no-such-host.invalid/v1")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        with pytest.raises(LabError, match="timed out|cannot connect"):
            for _ in range(8):  # fill the accept queue: the next connection waits, then times out
                c = socket.socket()
                c.settimeout(0.3)
                fillers.append(c)
                c.connect_ex(listener.getsockname())
            remote(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", connect_timeout=0.3)
    finally:
        for c in fillers:
            c.close()
        listener.close()


@pytest.mark.parametrize("fault, message", [
    ("401", r"refused the request \(401\): set DDL_TEST_KEY to a valid API key"),
    ("404", r"\(404\): The model `nope` does not exist"),
    ("500", r"failed \(500\): CUDA out of memory"),
    ("badjson", r"malformed JSON"),
])
def test_status_and_body_faults(server, fault, message, monkeypatch):
    monkeypatch.setenv("DDL_TEST_KEY", KEY)
    with pytest.raises(LabError, match=message) as info:
        b = remote(server.url(fault), key_env="DDL_TEST_KEY")
        b.next_token(b.tokenize("hi"))
    assert KEY not in str(info.value)


def test_missing_key_names_the_variable(server, monkeypatch):
    monkeypatch.delenv("DDL_TEST_KEY", raising=False)
    with pytest.raises(LabError, match="DDL_TEST_KEY is not set"):
        remote(server.url("ok"), key_env="DDL_TEST_KEY")


def test_429_is_retried_with_backoff_and_shown(server):
    b = RemoteBackend(config(server.url("429")))
    notices = []
    b.add_listener(notices.append)
    b._learn_models()
    assert len(notices) == 2 and all("429" in n and "retrying" in n for n in notices)


def test_stream_cut_off_keeps_the_tokens_so_far(server):
    from lab.runs import stream_seeds

    b = remote(server.url("cut"))
    updates = []
    stream_seeds(b, b.tokenize("hi"), SamplingSettings(), [1], 4, threading.Event(), updates.append)
    assert updates[-1].stop == "error" and "cut off" in updates[-1].error
    assert "".join(u.text for u in updates) == "xx"  # what arrived is kept


def test_stream_dropped_by_the_server_says_so(server):
    b = remote(server.url("early"))
    gen = b.stream(b.tokenize("hi"), SamplingSettings(), 4)
    events = []
    with pytest.raises(LabError, match="ended the stream after 2 tokens without saying why"):
        for ev in gen:
            events.append(ev)
    assert "".join(e.text for e in events) == "xx"


def test_server_that_ignores_logprobs(server):
    b = remote(server.url("nologprobs"))
    with pytest.raises(LabError, match="returned no logprobs"):
        b.next_token(b.tokenize("hi"))
    gen = b.stream(b.tokenize("hi"), SamplingSettings(), 4)
    events = list(gen)
    assert gen.result.text == "xxxx" and all(e.raw_prob != e.raw_prob for e in events)  # nan: not known


def test_slow_first_token_read_timeout(server):
    server.slow_seconds = 1.5
    b = remote(server.url("slow"), read_timeout=0.3)
    with pytest.raises(LabError, match=r"sent nothing for 0.3 s \(read timeout\)"):
        b.next_token(b.tokenize("hi"))


def test_cancel_mid_stream_closes_the_connection(server):
    b = remote(server.url("drip"))
    cancel = threading.Event()
    gen = b.stream(b.tokenize("hi"), SamplingSettings(), 200, cancel)
    for i, _ in enumerate(gen):
        if i == 3:
            cancel.set()
    assert gen.result.stop_reason == "cancelled" and len(gen.result.ids) < 10
    assert server.hung_up.wait(5)  # the server saw the client go


def test_cancel_while_waiting_for_a_slow_first_token(server):
    server.slow_seconds = 3.0
    b = remote(server.url("slow"))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    gen = b.stream(b.tokenize("hi"), SamplingSettings(), 4, cancel)
    assert list(gen) == [] and gen.result.stop_reason == "cancelled"


def test_planted_key_never_shows_in_errors_models_or_doctor(planted, server):
    with pytest.raises(LabError) as info:
        catalogue.load(planted)
    assert "401" in str(info.value) and KEY not in str(info.value) and "***" in str(info.value)
    assert server.requests[-1][1]["Authorization"] == f"Bearer {KEY}"  # it was sent, only not shown
    from deepdive_lab.cli import main
    from lab.doctor import remote_lines

    out = io.StringIO()
    with redirect_stdout(out):
        main(["models"])
    text = out.getvalue() + "\n".join(remote_lines(timeout=1.0))
    assert "planted" in text and "401" in text and KEY not in text


def test_hosted_presets_build_the_requests_they_would_send(monkeypatch):
    monkeypatch.setenv("HYPERBOLIC_API_KEY", KEY)
    cfg = remotes.PRESETS["hyperbolic-405b-base"]
    b = RemoteBackend(cfg)
    from lab.backends.http import Http

    h = Http(cfg)
    assert (h.host, h.port, h.https, h.base) == ("api.hyperbolic.xyz", 443, True, "/v1")
    assert h._headers(False)["Authorization"] == f"Bearer {KEY}"
    b._texts.put((1, 2), "The capital of France is")
    path, body = b.build_request((1, 2), 1, 20, temperature=0.0)
    assert path == "/v1/completions" and body == {"model": "meta-llama/Meta-Llama-3.1-405B", "max_tokens": 1,
                                                  "temperature": 0.0, "prompt": "The capital of France is",
                                                  "logprobs": 20}
    for name in ("together-405b-instruct", "openrouter-405b-instruct"):
        chat = RemoteBackend(remotes.PRESETS[name])
        chat._texts.put((5,), "Hi")
        path, body = chat.build_request((5,), 8, 5)
        assert path.endswith("/v1/chat/completions") and body["messages"] == [{"role": "user", "content": "Hi"}]
        assert body["logprobs"] is True and body["top_logprobs"] == 5
    assert KEY not in repr(cfg) and "key from $HYPERBOLIC_API_KEY" == cfg.key_status()


def test_a_key_in_the_url_is_refused_without_showing_it():
    with pytest.raises(LabError, match="holds a user name or password") as info:
        remotes.parse_spec(f"openai+https://user:{KEY}@example.org/v1#m")
    assert KEY not in str(info.value)
