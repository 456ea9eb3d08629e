"""The remote backend vs a bare HTTP client, same server, same run.

Starts llama-cpp-python's OpenAI-compatible server on the default SmolLM2 GGUF (loopback), then:
1. streams N tokens through the lab (`RemoteBackend.stream`) and through a bare client reading
   the same request's SSE stream; prints tokens/s and the ratio lab/bare (target >= 0.9);
2. one Next-token step through the lab (`next_token`: a completions request with logprobs,
   turned into a distribution) vs one bare completions request with the same body; prints the
   latency ratio lab/bare (target <= 1.2).
Runs alternate so the server's prompt cache treats both alike; medians of the repeats.

    python bench/remote.py [--tokens 64] [--repeats 5] [--url http://host:port/v1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import catalogue  # noqa: E402
from lab.sampling import SamplingSettings  # noqa: E402

PROMPT = "Once upon a time, in a small village by the sea,"


class Bare:
    """The least a client can do: one kept-alive connection, JSON in, SSE lines out."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.base = parts.hostname, parts.port, parts.path
        self.conn = http.client.HTTPConnection(self.host, self.port)

    def post(self, path: str, body: dict, conn=None):
        conn = conn or self.conn
        conn.request("POST", self.base + path, json.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse()

    def stream_tokens(self, body: dict) -> int:
        conn = http.client.HTTPConnection(self.host, self.port)  # the server closes a stream's connection
        resp, n = self.post("/completions", body, conn), 0
        for line in resp:
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                json.loads(line[5:])
                n += 1
        conn.close()
        return n

    def step(self, body: dict) -> dict:
        try:
            return json.loads(self.post("/completions", body).read())
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()  # the server closed the idle kept-alive connection
            self.conn = http.client.HTTPConnection(self.host, self.port)
            return json.loads(self.post("/completions", body).read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--url", help="an already running server (default: start llama-cpp-python's on SmolLM2)")
    args = ap.parse_args()
    proc = None
    url = args.url
    if url is None:
        from tests.remote_server import start_llama_server

        proc, url = start_llama_server(str(catalogue.smollm2_path()))
    try:
        lab = catalogue.load(f"openai+{url}")
        ids = lab.tokenize(PROMPT)
        settings = SamplingSettings(temperature=0.0, seed=1)
        # the exact body the lab sends, so both ask the server for the same work
        _, stream_body = lab.build_request(ids, args.tokens, 5, temperature=0.0, top_p=1.0, seed=1, stream=True,
                                           **lab.neutral_defaults())
        _, step_body = lab.build_request(ids, 1, lab.cfg.top_logprobs, temperature=0.0)
        bare = Bare(url)
        lab.next_token(ids), bare.step(step_body)  # warm: the server caches the prompt, the lab its pieces

        lab_tps, bare_tps = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            n = bare.stream_tokens(stream_body)
            bare_tps.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            gen = lab.stream(ids, settings, args.tokens)
            n = sum(1 for _ in gen)
            lab_tps.append(n / (time.perf_counter() - t0))
        lab_step, bare_step = [], []
        for _ in range(args.repeats * 4):
            t0 = time.perf_counter()
            bare.step(step_body)
            bare_step.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lab.next_token(ids, 10)
            lab_step.append(time.perf_counter() - t0)
        lt, bt = statistics.median(lab_tps), statistics.median(bare_tps)
        ls, bs = statistics.median(lab_step), statistics.median(bare_step)
        print(f"server: llama-cpp-python on {lab.info.name}, {args.tokens} tokens, {args.repeats} repeats")
        print(f"stream     lab {lt:7.1f} tok/s   bare {bt:7.1f} tok/s   ratio lab/bare {lt / bt:.2f}  (target >= 0.9)")
        print(f"next-token lab {ls * 1e3:7.1f} ms      bare {bs * 1e3:7.1f} ms      ratio lab/bare {ls / bs:.2f}  "
              "(target <= 1.2)")
        lab.close()
    finally:
        if proc is not None:
            from tests.remote_server import stop

            stop(proc)


if __name__ == "__main__":
    main()
