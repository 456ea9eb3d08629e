"""Named remotes: OpenAI-compatible servers the lab can use as models.

A remote is a URL, a model name on that server, which endpoint to use (`completions` for
base models, `chat` for chat models) and where its API key comes from. Three ways to name one:

- a spec on the command line: `openai+http://host:8000/v1#model` (completions) or
  `openai-chat+https://host/v1#model` (chat completions); the fragment is the model name;
- a preset below (the talk's systems), e.g. `hyperbolic-405b-base`;
- a table in the lab's config file (`lab.config`: `<user config dir>/deepdive-lab/config.toml`):

      [remotes.my-vllm]
      url = "http://gpu-box:8000/v1"
      model = "meta-llama/Llama-3.1-8B"
      kind = "completions"          # or "chat"
      key_env = "MY_VLLM_KEY"       # optional: the environment variable holding the key
      tokenizer = "meta-llama/Llama-3.1-8B"   # optional: a local HF tokenizer when the server has none

Keys come from the environment variable `key_env` (or a `key = "..."` in the config file) and
are never shown: `redact` removes them from every message the remote backend produces.
Headless, no network here: `lab.backends.remote` does the talking.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from lab.errors import LabError, UnknownModelError

KINDS = ("completions", "chat")
SCHEMES = {"openai+": "completions", "openai-chat+": "chat"}


@dataclass(frozen=True)
class RemoteConfig:
    """One OpenAI-compatible endpoint and how to talk to it."""

    name: str
    url: str  # the API base, ending in /v1 for most servers
    model: str = ""  # the server's model name ("" = the first one it lists)
    kind: str = "completions"  # "completions" (base models) or "chat" (the server applies the template)
    key_env: str = ""  # environment variable holding the API key
    key: str = field(default="", repr=False)  # a key written in the config file (the variable wins)
    tokenizer: str = ""  # HF tokenizer id used from the local cache when the server cannot tokenize
    vocab_size: int = 0  # 0: learned from the server or the tokenizer
    top_logprobs: int = 20  # how many alternatives to ask for per token (servers cap it: OpenAI 20, vLLM 20)
    connect_timeout: float = 10.0  # seconds to open a connection
    read_timeout: float = 120.0  # seconds to wait for the next byte (the first token of a big model is slow)
    retries: int = 4  # tries on 429 (rate limited) before giving up
    backoff: float = 1.0  # seconds before the first retry; doubles each time (a Retry-After header wins)
    source: str = ""  # "preset", "config file", "spec"
    note: str = ""  # one line for `deepdive-lab models`

    def api_key(self) -> str:
        return (os.environ.get(self.key_env, "") if self.key_env else "") or self.key

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.rpartition("@")[2]

    def key_status(self) -> str:
        if not self.key_env and not self.key:
            return "no key needed"
        if self.api_key():
            return f"key from ${self.key_env}" if self.key_env and os.environ.get(self.key_env) else "key from config"
        return f"set ${self.key_env}" if self.key_env else "key missing"


PRESETS: dict[str, RemoteConfig] = {p.name: p for p in (
    RemoteConfig("hyperbolic-405b-base", "https://api.hyperbolic.xyz/v1", "meta-llama/Meta-Llama-3.1-405B",
                 "completions", "HYPERBOLIC_API_KEY", tokenizer="meta-llama/Llama-3.1-405B", vocab_size=128256,
                 source="preset", note="the talk's base model: Llama 3.1 405B base on Hyperbolic"),
    RemoteConfig("together-405b-instruct", "https://api.together.xyz/v1",
                 "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", "chat", "TOGETHER_API_KEY",
                 tokenizer="meta-llama/Llama-3.1-405B-Instruct", vocab_size=128256, source="preset",
                 note="Llama 3.1 405B Instruct on Together"),
    RemoteConfig("openrouter-405b-instruct", "https://openrouter.ai/api/v1", "meta-llama/llama-3.1-405b-instruct",
                 "chat", "OPENROUTER_API_KEY", tokenizer="meta-llama/Llama-3.1-405B-Instruct", vocab_size=128256,
                 source="preset", note="Llama 3.1 405B Instruct through OpenRouter"),
    RemoteConfig("vllm-local", "http://localhost:8000/v1", "", "completions", source="preset",
                 note="vLLM (`vllm serve MODEL`) on this machine or through an SSH tunnel"),
    RemoteConfig("llama-server-local", "http://localhost:8080/v1", "", "completions", source="preset",
                 note="llama.cpp's llama-server (`llama-server -m FILE`)"),
)}


config_override: Path | None = None  # the CLI's --config FILE (else lab.config's usual place)


def config_file() -> Path:
    """The lab's config file (`lab.config`), whose [remotes.NAME] tables are read here."""
    from lab.config import config_path

    return config_override or config_path()


_FIELDS = {"url": str, "model": str, "kind": str, "key_env": str, "key": str, "tokenizer": str, "vocab_size": int,
           "top_logprobs": int, "connect_timeout": float, "read_timeout": float, "retries": int, "backoff": float}


def configured() -> dict[str, RemoteConfig]:
    """The remotes of the config file (an unreadable file is an error that names it)."""
    from lab.config import load_config

    config = load_config(config_override)
    path = config.path
    out = {}
    for name, table in config.remotes.items():
        if not isinstance(table, dict) or "url" not in table:
            raise LabError(f"{path}: [remotes.{name}] needs at least url = \"http://host:port/v1\".")
        unknown = sorted(set(table) - set(_FIELDS))
        if unknown:
            raise LabError(f"{path}: [remotes.{name}] has unknown keys: {', '.join(unknown)} "
                           f"(known: {', '.join(_FIELDS)}).")
        try:
            values = {k: _FIELDS[k](v) for k, v in table.items()}
        except (TypeError, ValueError) as exc:
            raise LabError(f"{path}: [remotes.{name}]: {exc}") from exc
        out[name.lower()] = _checked(RemoteConfig(name.lower(), source="config file", **values))
    return out


def all_remotes() -> dict[str, RemoteConfig]:
    """Presets, then the config file's remotes (a config entry with a preset's name replaces it)."""
    return {**PRESETS, **configured()}


def _checked(cfg: RemoteConfig) -> RemoteConfig:
    if cfg.kind not in KINDS:
        raise LabError(f"remote {cfg.name}: kind must be completions or chat, not {cfg.kind!r}.")
    parts = urlsplit(cfg.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabError(f"remote {cfg.name}: {redact(cfg.url)!r} is not an http(s) URL.")
    if parts.username or parts.password:
        raise LabError(f"remote {cfg.name}: the URL holds a user name or password; put the key in an environment "
                       "variable named by key_env instead (a URL is shown on screen).")
    return replace(cfg, url=cfg.url.rstrip("/"))


def is_remote_spec(spec: str) -> bool:
    return spec.strip().lower().startswith(tuple(SCHEMES))


def parse_spec(spec: str) -> RemoteConfig:
    """`openai+http://host:8000/v1#model` (or `openai-chat+...`) to a config. Key: none, or a named
    remote's. Example: "openai+http://127.0.0.1:8000/v1#smollm2" -> url http://127.0.0.1:8000/v1,
    model smollm2, kind completions."""
    spec = spec.strip()
    for prefix, kind in SCHEMES.items():
        if spec.lower().startswith(prefix):
            url, _, model = spec[len(prefix):].partition("#")
            host = urlsplit(url).netloc.rpartition("@")[2]  # never a user name or password
            name = f"{host}{'/' + model if model else ''}"
            return _checked(RemoteConfig(name, url, model, kind, source="spec"))
    raise UnknownModelError(f"{spec!r} is not a remote spec (openai+http://host:port/v1#model).")


def find(spec: str) -> RemoteConfig | None:
    """A remote spec or the name of a preset / configured remote; None when it is neither."""
    if is_remote_spec(spec):
        return parse_spec(spec)
    return all_remotes().get(spec.strip().lower())


def redact(text: str, *keys: str) -> str:
    """`text` with every key (and any Bearer token) replaced by ***. Keys shorter than 4
    characters are left alone (they would match ordinary words)."""
    import re

    for key in keys:
        if key and len(key) >= 4:
            text = text.replace(key, "***")
    return re.sub(r"(?i)(bearer\s+)[^\s\"',]+", r"\1***", text)


def known_keys() -> list[str]:
    """Every key the lab could send (presets' and configured remotes' variables, config keys),
    so a message is cleaned of all of them, not only its own remote's."""
    try:
        remotes = all_remotes().values()
    except LabError:
        remotes = PRESETS.values()
    return [k for k in {r.api_key() for r in remotes} if k]


_listeners: list[Callable[[str], None]] = []
_listeners_lock = threading.Lock()


def listen(callback: Callable[[str], None]) -> Callable[[], None]:
    """Be told about remote servers' retries (429) as sentences, from whichever thread makes the
    request (the app shows them). Returns the function that stops it."""
    with _listeners_lock:
        _listeners.append(callback)

    def stop() -> None:
        with _listeners_lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return stop


def announce(message: str) -> None:
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        try:
            callback(message)
        except Exception:  # a listener that has gone away (an app that closed) is not the request's problem
            pass
