"""What OpenAI-compatible servers send, read one way: logprobs in the completions and the chat
format (vLLM's "token_id:N" names carry ids), and the tokenize endpoints of llama-cpp-python
(/extras/tokenize), llama-server and vLLM (/tokenize), or a cached Hugging Face tokenizer.

    _steps({"logprobs": {"tokens": [" Paris"], "token_logprobs": [-0.26],
                         "top_logprobs": [{" Paris": -0.26, " the": -2.8}]}})
    -> [Step(piece=b" Paris", logprob=-0.26, top=[(b" Paris", -0.26, None), (b" the", -2.8, None)])]
"""

from __future__ import annotations

import math

from lab.backends.http import Http
from lab.errors import TokenizerUnavailableError


class ServerTokenizer:
    """A server's own tokenize/detokenize endpoints. `dialect` "extras" is llama-cpp-python's
    (always adds BOS, parses special tokens); "tokenize" is llama-server's and vLLM's."""

    def __init__(self, http: Http, model: str, dialect: str) -> None:
        self.http, self.model, self.dialect = http, model, dialect
        self.source = f"{http.where}{'/extras' if dialect == 'extras' else ''}/tokenize"

    def encode(self, text: str, add_special: bool) -> list[int]:
        h = self.http
        if self.dialect == "extras":
            out = h.request("POST", f"{h.root}/extras/tokenize", {"input": text, "model": self.model or None},
                            "tokenize endpoint")
        else:
            out = h.request("POST", f"{h.root}/tokenize", {"content": text, "prompt": text, "model": self.model,
                                                          "add_special": add_special,
                                                          "add_special_tokens": add_special}, "tokenize endpoint")
        tokens = out.get("tokens")
        if not isinstance(tokens, list):
            raise h.error(f"{h.where}'s tokenize answer has no token list.")
        return [int(t["id"] if isinstance(t, dict) else t) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        h = self.http
        if self.dialect == "extras":
            return str(h.request("POST", f"{h.root}/extras/detokenize", {"tokens": ids, "model": self.model or None},
                                 "detokenize endpoint").get("text", ""))
        out = h.request("POST", f"{h.root}/detokenize", {"tokens": ids, "model": self.model}, "detokenize endpoint")
        return str(out.get("content", out.get("prompt", "")))


class HFTokenizer:
    """The model's Hugging Face tokenizer, from the local cache only (never downloads)."""

    def __init__(self, hub_id: str) -> None:
        try:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(hub_id, local_files_only=True)
        except Exception as exc:  # not cached, or transformers missing
            raise TokenizerUnavailableError(f"no tokenizer for {hub_id} in the local Hugging Face cache "
                                            f"({exc.__class__.__name__}).") from exc
        self.source = f"HF tokenizer {hub_id} (local cache)"
        self.size = len(self.tok)

    def encode(self, text: str, add_special: bool) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=add_special))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids)


class Step:
    """One token of a logprobs answer: its piece, logprob (None: not given) and alternatives."""

    __slots__ = ("piece", "logprob", "top", "id")

    def __init__(self, piece: bytes, logprob: float | None, top: list, tid: int | None = None) -> None:
        self.piece, self.logprob, self.top, self.id = piece, logprob, top, tid


def first_choice(out: dict, http: Http) -> dict:
    choices = out.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise http.error(f"{http.where}'s answer has no choices: not an OpenAI-compatible reply.")
    return choices[0]


def _token(name: str, raw_bytes=None) -> tuple[bytes, int | None]:
    """A token named by a server: vLLM's "token_id:123" form carries the id."""
    if name.startswith("token_id:") and name[9:].isdigit():
        return b"", int(name[9:])
    return (bytes(raw_bytes) if isinstance(raw_bytes, list) else name.encode("utf-8")), None


def steps_of(choice: dict) -> list[Step]:
    """The logprobs of a completions or chat choice (either OpenAI format) as steps."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return []
    out = []
    if isinstance(lp.get("content"), list):  # chat format
        for c in lp["content"]:
            piece, tid = _token(str(c.get("token", "")), c.get("bytes"))
            top = []
            for t in c.get("top_logprobs") or []:
                p, i = _token(str(t.get("token", "")), t.get("bytes"))
                top.append((p, float(t.get("logprob", -math.inf)), i if i is not None else t.get("id")))
            out.append(Step(piece, _float(c.get("logprob")), top, tid if tid is not None else c.get("id")))
        return out
    tokens = lp.get("tokens") or []
    logprobs = lp.get("token_logprobs") or []
    tops = lp.get("top_logprobs") or []
    for k, name in enumerate(tokens):
        piece, tid = _token(str(name))
        top = []
        entry = tops[k] if k < len(tops) else None
        if isinstance(entry, dict):
            for n, v in entry.items():
                p, i = _token(str(n))
                top.append((p, float(v), i))
        top.sort(key=lambda t: -t[1])
        out.append(Step(piece, _float(logprobs[k] if k < len(logprobs) else None), top, tid))
    return out


def _float(x) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None
