"""Bad inputs give typed errors with messages that say what to do; the engine stays usable."""

import shutil

import pytest

from lab import catalogue
from lab.errors import (CorruptModelError, LabError, ModelNotFoundError, ModelOutOfMemoryError, NotAModelError,
                        OfflineError, UnknownModelError)


def test_missing_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no file or folder") as info:
        catalogue.load(str(tmp_path / "nope.gguf"))
    assert "deepdive-lab models" in str(info.value)


def test_unknown_name():
    with pytest.raises(UnknownModelError, match="unknown model 'no-such-model'"):
        catalogue.load("no-such-model")


def test_text_file_is_not_a_model(tmp_path):
    f = tmp_path / "notes.gguf"
    f.write_text("these are my notes, not a model")
    with pytest.raises(NotAModelError, match="not a GGUF model"):
        catalogue.load(str(f))
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(NotAModelError, match="no config.json"):
        catalogue.load(str(folder))


@pytest.mark.parametrize("keep", [2, 1 << 20, 50 << 20])
def test_truncated_gguf_is_corrupt(tmp_path, keep):
    src = catalogue.smollm2_path()
    dst = tmp_path / "cut.gguf"
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(fin.read(keep))
    err = NotAModelError if keep < 4 else CorruptModelError
    with pytest.raises(err) as info:
        catalogue.load(str(dst))
    assert "download it again" in str(info.value) or keep < 4


def test_damaged_header_is_corrupt(tmp_path):
    dst = tmp_path / "bad.gguf"
    shutil.copy(catalogue.smollm2_path(), dst)
    with open(dst, "r+b") as f:  # an absurd metadata count right after the magic and version
        f.seek(16)
        f.write((2**62).to_bytes(8, "little"))
    with pytest.raises(CorruptModelError, match="damaged GGUF"):
        catalogue.load(str(dst))


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="cannot be reached"):
        catalogue.load("HuggingFaceTB/SmolLM2-360M-Instruct")


def test_out_of_memory_is_typed(monkeypatch):
    import llama_cpp

    def boom(*args, **kwargs):
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(llama_cpp, "Llama", boom)
    with pytest.raises(ModelOutOfMemoryError, match="out of memory") as info:
        catalogue.load(catalogue.CHAT_DEFAULT, backend="llama.cpp")
    assert "smaller" in str(info.value)


def test_bad_ids_and_engine_still_usable(smol):
    with pytest.raises(LabError, match="outside the vocabulary"):
        smol.next_token([10**9])
    with pytest.raises(LabError, match="empty"):
        smol.next_token([])
    with pytest.raises(LabError, match="context window"):
        smol.next_token([1] * (smol.info.context_length + 1))
    assert smol.next_token(smol.tokenize("The capital of France is")).top[0].piece == b" Paris"


def test_engine_usable_after_every_failure(tmp_path):
    for bad in (str(tmp_path / "missing.gguf"), "unknown-thing"):
        with pytest.raises(LabError):
            catalogue.load(bad)
    b = catalogue.load(catalogue.CHAT_DEFAULT)
    assert b.next_token(b.tokenize("The capital of France is")).top[0].piece == b" Paris"
    b.close()


