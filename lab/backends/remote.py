"""A model served over the OpenAI HTTP API (vLLM, SGLang, llama.cpp's servers, hosted providers).

What HTTP gives, and how it maps onto the `Backend` contract:

- distributions: `/v1/completions` (or chat) with `logprobs` returns the top N tokens of each
  step only. `_last_logits` builds a full-length vector whose top N entries are the server's
  exact log-probabilities and whose other entries share the remaining mass evenly, so the
  bars show the server's numbers; entropy and sampling over the unknown rest are estimates,
  which `capabilities.limits` says in words for the screens to show;
- streams: one SSE request per sample (`seed`, temperature, top-p, top-k sent to the server),
  so a seeded stream reproduces on the same server; cancel closes the connection;
- surprisal: completions with `echo` + `logprobs` (one request);
- tokens: the server's tokenize endpoint (llama-cpp-python's /extras/tokenize, llama-server's
  and vLLM's /tokenize), else the model's Hugging Face tokenizer from the local cache. The
  server receives text (rebuilt from the ids), which it tokenizes again itself;
- chat (kind "chat"): `/v1/chat/completions`, the server applies its own template; the lab
  keeps the messages behind the ids `render_chat` returns;
- no hidden states: no logit lens over HTTP.

Token ids of streamed tokens come from pieces the lab has seen before (a stream never waits on
a tokenize request); an unknown one is -1. Not thread-safe beyond `Backend`'s lock.
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from lab.backends.base import Backend, Generation
from lab.backends.http import Http, RemoteError, StatusError
from lab.backends.remote_wire import HFTokenizer, ServerTokenizer, Step, first_choice, steps_of
from lab.errors import LabError, TokenizerUnavailableError
from lab.remotes import RemoteConfig
from lab.types import (Capabilities, ChatMessage, GenerationResult, ModelInfo, RenderedChat, TokenEvent, TokenProb,
                       TokenSurprise)

UNKNOWN_ID = -1  # a streamed token the server named by its text only, not seen before
_SEPARATORS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>", "</s>")
_UNKNOWN_CONTEXT = 1 << 20


class _Memo(OrderedDict):
    """A small LRU map."""

    def put(self, key, value, limit: int = 256) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > limit:
            self.popitem(last=False)


# ---- the backend ---------------------------------------------------------------------------

class RemoteBackend(Backend):
    def __init__(self, cfg: RemoteConfig, http: Http | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.listeners: list[Callable[[str], None]] = []  # told about retries (429) as sentences
        self.http = http or Http(cfg, self._notice)
        self.model = cfg.model
        self._tokenizer = None
        self._bos: list[int] | None = None  # what the server's tokenizer puts before any text
        self._texts: _Memo = _Memo()  # ids -> the text they were tokenized from
        self._chats: _Memo = _Memo()  # ids from render_chat -> the messages (kind "chat")
        self._piece_ids: dict[bytes, int] = {}  # pieces seen in logprobs -> their ids
        self._separator: tuple[str, int] | None | bool = None  # (text, id) of a special token; False: none
        self.requests = 0  # HTTP requests to the model endpoints (not counting tokenize)
        vocab = cfg.vocab_size
        self.info = ModelInfo(name=cfg.name, architecture="remote", parameters=0, vocab_size=max(vocab, 1),
                              context_length=_UNKNOWN_CONTEXT, quantisation="(server)",
                              backend=f"remote {cfg.kind}", device=self.http.where,
                              has_chat_template=cfg.kind == "chat", source=f"{cfg.url} ({cfg.source})")
        self._vocab_known = vocab > 0
        self.capabilities = Capabilities(
            supports_logprobs=True, supports_hidden_states=False, supports_chat_template=cfg.kind == "chat",
            supports_gpu=False, supports_kv_cache=True, logprobs_top_n=cfg.top_logprobs,
            supports_prompt_logprobs=cfg.kind == "completions", limits=self._limits())

    # ---- connecting --------------------------------------------------------------------
    @classmethod
    def connect(cls, cfg: RemoteConfig) -> "RemoteBackend":
        """Check the key is there and the server answers; learn the model name and sizes."""
        if cfg.key_env and not cfg.api_key():
            raise RemoteError(f"{cfg.name} needs an API key, and {cfg.key_env} is not set.",
                              f"Set {cfg.key_env} in the environment (or key = \"...\" in its [remotes.NAME] table).")
        backend = cls(cfg)
        backend._learn_models()
        try:
            backend.tokenizer()
        except TokenizerUnavailableError as exc:
            backend.capabilities = replace(backend.capabilities, supports_tokenize=False,
                                           limits=(exc.message,) + backend.capabilities.limits)
        return backend

    def _learn_models(self) -> None:
        h = self.http
        try:
            listing = h.request("GET", f"{h.base}/models", None, "model list (/models)")
        except StatusError as exc:
            if exc.status in (404, 405):
                if not self.model:
                    raise h.error(f"{h.where} does not list its models; name one (…/v1#MODEL).") from exc
                return
            raise
        models = [m for m in listing.get("data", []) if isinstance(m, dict)]
        if not self.model:
            if not models:
                raise h.error(f"{h.where} serves no model.")
            self.model = str(models[0].get("id", ""))
        for m in models:
            if m.get("id") == self.model:
                meta = m.get("meta") or {}  # llama-server
                vocab = int(meta.get("n_vocab") or 0)
                context = int(m.get("max_model_len") or meta.get("n_ctx_train") or 0)  # vLLM, llama-server
                if vocab and not self._vocab_known:
                    self.info, self._vocab_known = replace(self.info, vocab_size=vocab), True
                if context:
                    self.info = replace(self.info, context_length=context)
        shown = self.model.rsplit("/", 1)[-1] if self.model.startswith("/") else self.model  # a server's file path
        if shown and shown not in self.info.name:
            self.info = replace(self.info, name=f"{self.cfg.name} ({shown})")

    def _limits(self) -> tuple[str, ...]:
        host, n = self.http.where, self.cfg.top_logprobs
        out = [f"{host} returns the top {n} tokens of each step only: the rest of the distribution is unknown "
               "(spread evenly here, so entropy and sampling from the rest are estimates).",
               "no logit lens over HTTP: a server does not expose hidden states.",
               "the server receives text, so a path built token by token is tokenized again by the server."]
        if self.cfg.kind == "chat":
            out.append("a chat endpoint applies the server's own template, which HTTP does not show; "
                       "a prompt is sent as a user message.")
        else:
            out.append("surprisal needs the server to return the prompt's logprobs (echo).")
        return tuple(out)

    def add_listener(self, callback: Callable[[str], None]) -> None:
        self.listeners.append(callback)

    def _notice(self, message: str) -> None:
        from lab.remotes import announce

        for callback in list(self.listeners):
            callback(message)
        announce(message)

    # ---- tokens --------------------------------------------------------------------------
    def tokenizer(self):
        """The server's tokenize endpoint, else a cached HF tokenizer, else a clear error."""
        if self._tokenizer is not None:
            return self._tokenizer
        for dialect in ("extras", "tokenize"):
            tok = ServerTokenizer(self.http, self.model, dialect)
            try:
                tok.encode("Hello", True)
            except StatusError as exc:
                if exc.status in (404, 405):
                    continue
                if exc.status == 422 or exc.status == 400:
                    continue  # another server's request shape
                raise
            self._tokenizer = tok
            return tok
        names = [n for n in (self.cfg.tokenizer, self.model) if n and "/" in n]
        for name in names:
            try:
                self._tokenizer = HFTokenizer(name)
            except TokenizerUnavailableError:
                continue
            if not self._vocab_known:
                self.info, self._vocab_known = replace(self.info, vocab_size=self._tokenizer.size), True
            return self._tokenizer
        raise TokenizerUnavailableError(
            f"{self.http.where} has no tokenize endpoint and no tokenizer for {self.model or self.cfg.name} is in the "
            "local Hugging Face cache, so the lab cannot show this model's tokens.",
            "Set tokenizer = \"org/name\" in its [remotes.NAME] table to a tokenizer you have cached.")

    def _see(self, ids: Sequence[int]) -> None:
        """Grow the vocabulary estimate when the server's size is unknown."""
        if not self._vocab_known and ids:
            top = max(ids) + 1
            if top > self.info.vocab_size:
                self.info = replace(self.info, vocab_size=top)

    def bos_prefix(self) -> list[int]:
        if self._bos is None:
            tok = self.tokenizer()
            self._bos = tok.encode("", True) if isinstance(tok, ServerTokenizer) and tok.dialect == "extras" else []
            if not self._bos:
                plain = tok.encode("a", False) if not isinstance(tok, ServerTokenizer) or tok.dialect != "extras" \
                    else []
                full = tok.encode("a", True)
                self._bos = full[:len(full) - len(plain)] if plain and full[-len(plain):] == plain else []
        return self._bos

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        tok = self.tokenizer()
        if isinstance(tok, ServerTokenizer) and tok.dialect == "extras":
            ids = tok.encode(text, True)
            bos = self.bos_prefix()
            if not add_special and bos and ids[:len(bos)] == bos:
                ids = ids[len(bos):]
        else:
            ids = tok.encode(text, add_special)
        self._see(ids)
        with self.lock:
            self._texts.put(tuple(ids), text)
        return ids

    def _token_bytes(self, token_id: int) -> bytes:
        try:
            return self.tokenizer().decode([token_id]).encode("utf-8")
        except StatusError as exc:
            if exc.status >= 500:  # llama-cpp-python fails on a token that is part of a character
                return "\ufffd".encode()
            raise

    def token_bytes(self, token_id: int) -> bytes:
        if token_id == UNKNOWN_ID:
            raise LabError("this token came from the server as text only; its id is not known.")
        if token_id >= 0:
            self._see([token_id])  # ids the caller got elsewhere extend an unknown vocabulary's estimate
        return super().token_bytes(token_id)

    @property
    def eos_ids(self) -> frozenset[int]:
        return frozenset()  # the server stops at the end of generation itself

    def _check_ids(self, ids: Sequence[int]) -> list[int]:
        ids = [int(i) for i in ids]
        if not ids:
            raise LabError("the sequence is empty: give at least one token.")
        if any(i < 0 for i in ids):
            raise LabError("a token id is negative.")
        if len(ids) > self.info.context_length:
            raise LabError(f"{len(ids)} tokens do not fit the context window of {self.info.context_length}.")
        return ids

    def _text_for(self, ids: Sequence[int]) -> str:
        """The text the server should receive for `ids`: the text they were tokenized from when
        the lab tokenized it, plus the pieces of tokens appended since."""
        ids = tuple(ids)
        best: tuple[int, ...] = ()
        with self.lock:
            for key in self._texts:
                if len(key) > len(best) and ids[:len(key)] == key:
                    best = key
            text = self._texts.get(best, "")
        rest = list(ids[len(best):])
        if not best:
            bos = self._bos or []
            if bos and rest[:len(bos)] == bos:
                rest = rest[len(bos):]
        return text + self.detokenize_bytes(rest).decode("utf-8", errors="replace")

    def _ids_for(self, pieces: list[bytes]) -> list[int | None]:
        """Ids of the token pieces named in logprobs: seen before, else one tokenize request for
        all of them (joined by a special token, which tokenizers never merge across)."""
        missing = [p for p in dict.fromkeys(pieces) if p and p not in self._piece_ids]
        if missing:
            sep = self._special_separator()
            found: dict[bytes, int] = {}
            if sep:
                text = sep[0].join(p.decode("utf-8", errors="replace") for p in missing)
                ids = self.tokenizer().encode(text, False)
                bos = self._bos or []
                if bos and ids[:len(bos)] == bos:
                    ids = ids[len(bos):]
                groups: list[list[int]] = [[]]
                for i in ids:
                    if i == sep[1]:
                        groups.append([])
                    else:
                        groups[-1].append(i)
                if len(groups) == len(missing):
                    found = {p: g[0] for p, g in zip(missing, groups) if len(g) == 1}
            else:
                for p in missing:
                    ids = self.tokenize(p.decode("utf-8", errors="replace"), add_special=False)
                    if len(ids) == 1:
                        found[p] = ids[0]
            for p, i in found.items():
                self._piece_ids[p] = i
                self._piece_cache.setdefault(i, p)
            self._see(list(found.values()))
        return [self._piece_ids.get(p) for p in pieces]

    def _special_separator(self) -> tuple[str, int] | None:
        if self._separator is None:
            self._separator = False
            tok = self.tokenizer()
            bos = self.bos_prefix()
            for text in _SEPARATORS:
                ids = tok.encode(f"a{text}a", False)
                if bos and ids[:len(bos)] == bos:
                    ids = ids[len(bos):]
                if len(ids) == 3 and ids[0] == ids[2] != ids[1]:
                    self._separator = (text, ids[1])
                    break
        return self._separator or None

    # ---- requests ----------------------------------------------------------------------------
    def _messages_for(self, ids: Sequence[int]) -> list[dict]:
        with self.lock:
            messages = self._chats.get(tuple(ids))
        if messages is None:
            messages = [ChatMessage("user", self._text_for(ids))]
        return [{"role": m.role, "content": m.content} for m in messages]

    def neutral_defaults(self) -> dict:
        """Sampling defaults a server would add on its own, switched off so its samples follow the
        lab's settings: llama-cpp-python's server applies repeat_penalty 1.1, min_p 0.05, top_k 40."""
        try:
            tok = self.tokenizer()
        except LabError:
            return {}
        if isinstance(tok, ServerTokenizer) and tok.dialect == "extras":
            return {"repeat_penalty": 1.0, "min_p": 0.0, "top_k": 0}
        return {}

    def build_request(self, ids: Sequence[int], max_tokens: int, top_n: int, **sampling) -> tuple[str, dict]:
        """(path, JSON body) of a completions or chat request for the tokens after `ids`."""
        h = self.http
        body = {"model": self.model, "max_tokens": max_tokens, **{k: v for k, v in sampling.items() if v is not None}}
        if self.cfg.kind == "chat":
            body["messages"] = self._messages_for(ids)
            if top_n:
                body.update(logprobs=True, top_logprobs=top_n)
            return f"{h.base}/chat/completions", body
        body["prompt"] = self._text_for(ids)
        if top_n:
            body["logprobs"] = top_n
        return f"{h.base}/completions", body

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        # The server evaluates every request itself; how it batches is its own (prompt_len unused).
        return self._logits_from(self._top_after(ids))

    def _top_after(self, ids: Sequence[int]) -> list[tuple[bytes, float, int | None]]:
        path, body = self.build_request(ids, 1, self.cfg.top_logprobs, temperature=0.0)
        self.requests += 1
        steps = steps_of(first_choice(self.http.request("POST", path, body, "such model or endpoint"), self.http))
        if not steps or not steps[0].top:
            raise self._no_logprobs()
        return steps[0].top

    def _no_logprobs(self) -> LabError:
        self.capabilities = replace(self.capabilities, supports_logprobs=False)
        return self.http.error(f"{self.http.where} returned no logprobs, so the lab cannot show this model's "
                               "next-token probabilities.",
                               "Use a server that returns logprobs (vLLM, llama.cpp's server, llama-cpp-python, "
                               "most providers' completions endpoints).")

    def _logits_from(self, top: list[tuple[bytes, float, int | None]]) -> np.ndarray:
        """A full-length vector: the known top tokens at their exact logprobs, the rest of the
        probability spread evenly over the other ids (a known-size vocabulary, or the ids seen)."""
        ids = self._ids_for([p for p, _, i in top if i is None])
        it = iter(ids)
        known: dict[int, float] = {}
        for piece, lp, tid in top:
            tid = tid if tid is not None else next(it)
            if tid is not None and tid not in known:
                known[tid] = lp
                if piece:
                    self._piece_cache.setdefault(tid, piece)
        self._see(list(known))
        size = max(self.info.vocab_size, max(known, default=0) + 1)
        mass = float(sum(math.exp(lp) for lp in known.values()))
        rest = size - len(known)
        tail = math.log(max(1.0 - mass, 1e-9) / rest) if rest > 0 else -math.inf
        logits = np.full(size, tail, dtype=np.float32)
        for tid, lp in known.items():
            logits[tid] = lp
        return logits

    def stream(self, ids: Sequence[int], settings=None, max_tokens: int = 64, cancel: threading.Event | None = None,
               top_n: int = 5, stop_at_eos: bool = True, stop_text: str = "") -> Generation:
        from lab.sampling import SamplingSettings

        return RemoteGeneration(self, self._check_ids(ids), settings or SamplingSettings(), max_tokens, cancel,
                                top_n, stop_at_eos, stop_text)

    def surprisal(self, ids: Sequence[int], top_k: int = 5) -> list[TokenSurprise]:
        """One completions request with echo: the server's logprob of each prompt token."""
        ids = self._check_ids(ids)
        if self.cfg.kind != "completions":
            raise LabError(f"{self.info.name} is a chat endpoint: surprisal needs the completions endpoint "
                           "with echo (a base-model remote).")
        path, body = self.build_request(ids, 1, max(top_k, self.cfg.top_logprobs), temperature=0.0, echo=True)
        self.requests += 1
        choice = first_choice(self.http.request("POST", path, body, "such model or endpoint"), self.http)
        steps = steps_of(choice)
        bos = self._bos or []
        body_ids = ids[len(bos):] if bos and ids[:len(bos)] == bos else ids
        if len(steps) < len(body_ids):
            raise self.http.error(f"{self.http.where} did not return the prompt's logprobs (echo), so the lab "
                                  "cannot show surprisal for this model." if len(steps) <= 1 else
                                  f"{self.http.where} tokenized the text into {len(steps) - 1} tokens, not "
                                  f"{len(body_ids)}: the rows would not line up.")
        first = len(ids) - len(body_ids)  # BOS tokens the text does not show
        out = [TokenSurprise(i, t, self.token_bytes(t), 1.0, 0.0, 1, ()) for i, t in enumerate(ids[:first + 1])]
        # llama-cpp-python's echo pairs token k with the distribution after it when the model has
        # no BOS (an upstream bug): there, the distribution that predicted token k is entry k-1's.
        shifted = isinstance(self._tokenizer, ServerTokenizer) and self._tokenizer.dialect == "extras" and not bos
        for k in range(1, len(body_ids)):
            pos = first + k
            step = steps[k - 1] if shifted else steps[k]
            if shifted and not step.top:  # the first entry comes without alternatives: ask for them
                step = Step(b"", None, self._top_after(ids[:pos]))
            top = self._top(step.top, len(step.top))
            lp = step.logprob if not shifted else next((t.logprob for t in top if t.id == ids[pos]), None)
            if lp is None and shifted and top:
                lp = top[-1].logprob  # below the top N: at most the smallest one shown
            if lp is None:
                raise self._no_logprobs()
            rank = 1 + sum(1 for t in top if t.logprob > lp) if any(t.id == ids[pos] for t in top) else len(top) + 1
            out.append(TokenSurprise(pos, ids[pos], self.token_bytes(ids[pos]), math.exp(lp), -lp / math.log(2), rank,
                                     top[:top_k]))
        return out

    def _top(self, top: list[tuple[bytes, float, int | None]], k: int) -> tuple[TokenProb, ...]:
        ids = self._ids_for([p for p, _, i in top if i is None])
        it = iter(ids)
        rows = []
        for piece, lp, tid in top:
            tid = tid if tid is not None else next(it)
            rows.append(TokenProb(UNKNOWN_ID if tid is None else tid, piece, math.exp(lp), lp))
        rows.sort(key=lambda t: -t.logprob)
        return tuple(rows[:k])

    def _layer_logits(self, ids: Sequence[int]) -> list[np.ndarray]:
        raise LabError(f"{self.info.name} is served over HTTP, which does not expose hidden states: "
                       "no logit lens over HTTP.")

    def render_chat(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> RenderedChat:
        """Kind "chat": the server applies its own template, which HTTP does not show; the text
        here lists the messages, and its ids stand for them in `stream`."""
        if self.cfg.kind != "chat":
            return super().render_chat(messages, add_generation_prompt)
        text = "\n".join(f"[{m.role}] {m.content}" for m in messages)
        ids = self.tokenize(text, add_special=False)
        with self.lock:
            self._chats.put(tuple(ids), list(messages))
        return RenderedChat(text, tuple(ids), (), "the server's own chat template (not visible over HTTP)")

    def close(self) -> None:
        self.http.close()


class RemoteGeneration(Generation):
    """A `Generation` read from one SSE stream; same events and result as an in-process one."""

    backend: RemoteBackend

    def _run(self):
        b, s = self.backend, self.settings
        sampling = {**b.neutral_defaults(), "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed,
                    "stream": True}
        if s.top_k:
            sampling["top_k"] = s.top_k
        path, body = b.build_request(self.prompt, self.max_tokens, self.top_n, **sampling)
        cancel = self.cancel or threading.Event()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        identity = s.temperature == 1.0 and s.top_k == 0 and s.top_p >= 1.0
        out: list[int] = []
        parts: list[str] = []
        reason, tail, index, finish = "length", "", 0, None
        t0 = time.perf_counter()
        b.requests += 1
        events = b.http.stream(path, body, cancel)
        try:
            for chunk in events:
                choices = chunk.get("choices") or []
                if not choices:
                    continue  # e.g. a usage-only chunk
                choice = choices[0]
                delta = choice.get("delta") or {}
                text = choice.get("text") if b.cfg.kind == "completions" else delta.get("content")
                steps = steps_of(choice)
                if not steps and text:
                    steps = [Step(text.encode("utf-8"), None, [])]
                for k, step in enumerate(steps):
                    piece = step.piece or (b._piece_cache.get(step.id, b"") if step.id is not None else b"")
                    tid = step.id if step.id is not None else b._piece_ids.get(piece, UNKNOWN_ID)
                    raw = math.exp(step.logprob) if step.logprob is not None else math.nan
                    top = tuple(TokenProb(b._piece_ids.get(p, UNKNOWN_ID) if i is None else i, p, math.exp(lp), lp)
                                for p, lp, i in step.top[:self.top_n])
                    if text is not None and len(steps) == 1:
                        shown = decoder.decode(text.encode("utf-8")) if isinstance(text, str) else ""
                    else:
                        shown = decoder.decode(piece)
                    out.append(tid)
                    parts.append(shown)
                    yield TokenEvent(index, tid, piece, raw if identity else math.nan, raw, top, shown)
                    index += 1
                    if self.stop_text:
                        tail = (tail + shown)[-(len(self.stop_text) + len(shown)):]
                        if self.stop_text in tail:
                            reason = "stop text"
                            break
                if reason == "stop text":
                    break
                finish = choice.get("finish_reason") or finish
                if finish:
                    reason = "eos" if finish == "stop" else ("length" if finish == "length" else str(finish))
            if cancel.is_set() and reason not in ("stop text", "eos"):
                reason = "cancelled"
            elif reason == "length" and not finish and index < self.max_tokens:
                raise b.http.error(
                    f"{b.http.where} ended the stream after {index} tokens without saying why.",
                    "A server that runs one request at a time may drop a stream when another request "
                    "arrives (llama-cpp-python's server: start it with --interrupt_requests False).")
        finally:
            events.close()  # closes the connection (early: stop text, cancel, an error)
            parts.append(decoder.decode(b"", final=True))
            self.result = GenerationResult(tuple(out), "".join(parts), reason, time.perf_counter() - t0)
