"""A small OpenAI-compatible server of the tests' own that answers with a chosen fault.

The first path segment picks the behaviour: http://127.0.0.1:PORT/<fault>/v1. Faults: ok,
401 (echoes the Authorization header back, as a careless server might), 404 (for completions), 429 (twice, then
ok), 500, badjson, cut (a stream cut off mid-token), nologprobs, slow (first byte after
`slow_seconds`), drip (a token every 20 ms, recording when the client hangs up), notok (no tokenize
endpoint), early (a stream that says [DONE] after 2 of the tokens asked for).
Tokens are bytes: id = byte value, so the answers are easy to check.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, dict, dict]] = []  # (path, headers, body)
        self.hung_up = threading.Event()  # set when a drip stream found the client gone
        self.slow_seconds = 3.0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, fault: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{fault}/v1"


def _top(piece: str) -> dict:
    return {piece: -0.3, "b": -2.0, "c": -3.0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a read-timeout test)
            self.close_connection = True

    def do_GET(self) -> None:
        self._route({})

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self._route(json.loads(self.rfile.read(n) or b"{}"))

    def _route(self, body: dict) -> None:
        fault, _, rest = self.path.lstrip("/").partition("/")
        srv = self.server
        srv.requests.append((self.path, dict(self.headers), body))
        srv.hits[fault] = srv.hits.get(fault, 0) + 1
        if fault == "401":
            return self._json(401, {"error": {"message": f"invalid key in {self.headers.get('Authorization')}"}})
        if fault == "404" and rest.endswith("completions"):
            return self._json(404, {"error": {"message": "The model `nope` does not exist."}})
        if fault == "429" and srv.hits[fault] <= 2:
            return self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if fault == "500":
            return self._json(500, {"error": {"message": "CUDA out of memory"}})
        if fault == "badjson":
            return self._json(200, b"<html>not json{")
        if rest == "v1/models":
            return self._json(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        if fault == "notok" and ("tokenize" in rest):
            return self._json(404, {"detail": "Not Found"})  # a server with no tokenize endpoint
        if rest == "extras/tokenize":
            return self._json(200, {"tokens": list(body["input"].encode())})
        if rest == "extras/detokenize":
            return self._json(200, {"text": bytes(body["tokens"]).decode("utf-8", "replace")})
        if rest == "v1/completions":
            if fault == "slow":
                time.sleep(srv.slow_seconds)
            if body.get("stream"):
                return self._stream(fault, body)
            choice = {"text": "a", "index": 0, "finish_reason": "length", "logprobs": None if fault == "nologprobs"
                      else {"tokens": ["a"], "token_logprobs": [-0.2], "top_logprobs": [_top("a")]}}
            return self._json(200, {"choices": [choice]})
        self._json(404, {"detail": "Not Found"})

    def _stream(self, fault: str, body: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        n = 200 if fault == "drip" else (2 if fault == "early" else min(int(body.get("max_tokens", 4)), 4))
        try:
            for i in range(n):
                lp = None if fault == "nologprobs" else {"tokens": ["x"], "token_logprobs": [-0.1],
                                                         "top_logprobs": [_top("x")]}
                event = {"choices": [{"text": "x", "index": 0, "logprobs": lp, "finish_reason": None}]}
                if fault == "cut" and i == 2:
                    self.wfile.write(b'data: {"choices": [{"te')  # cut off in the middle of an event
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.flush()
                if fault == "drip":
                    time.sleep(0.02)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            srv = self.server
            srv.hung_up.set()
        self.close_connection = True
