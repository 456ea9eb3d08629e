"""The catalogue: defaults from installed packages, paths, and models already on disk."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from lab import catalogue


def test_defaults_resolve_from_packages():
    chat = catalogue.resolve("smollm2-135m-instruct")
    base = catalogue.resolve("gemma-3-270m")
    assert chat.role == "chat" and chat.path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and os.path.exists(chat.path)
    assert base.role == "base" and os.path.exists(base.path)
    assert catalogue.resolve("smollm2") == chat and catalogue.resolve("GEMMA") == base


def test_gemma_assembled_once_with_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    path = catalogue.gemma_path(assemble=True)
    assert path.parent == tmp_path / "models"
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    assert h == catalogue._gemma_expected_sha256() and h.startswith("a5fd3b62") and h.endswith("6818")
    mtime = path.stat().st_mtime_ns
    assert catalogue.gemma_path(assemble=True) == path and path.stat().st_mtime_ns == mtime  # not rewritten
    # A damaged cached file is detected (stamp no longer matches) and rebuilt.
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 16)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    rebuilt = catalogue.gemma_path(assemble=True)
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == h


def test_paths_and_hub_ids(tmp_path):
    src = catalogue.smollm2_path()
    link = tmp_path / "my-model.gguf"
    link.symlink_to(src)
    e = catalogue.resolve(str(link))
    assert e.kind == "gguf" and e.source == "file" and e.name == "my-model"
    assert catalogue.resolve(str(tmp_path)).path == str(link)  # a folder with one GGUF
    hub = catalogue.resolve("HuggingFaceTB/SmolLM2-360M")
    assert hub.kind == "hub" and hub.hub_id == "HuggingFaceTB/SmolLM2-360M"


def test_discovers_lm_studio_ollama_and_hf_cache(tmp_path, monkeypatch):
    home = tmp_path / "home"
    src = catalogue.smollm2_path()
    lms = home / ".lmstudio" / "models" / "bartowski" / "SmolLM2-GGUF"
    lms.mkdir(parents=True)
    (lms / "SmolLM2-135M-Q4.gguf").symlink_to(src)
    ollama = home / ".ollama" / "models"
    digest = "sha256:" + "ab" * 32
    (ollama / "blobs").mkdir(parents=True)
    (ollama / "blobs" / digest.replace(":", "-")).symlink_to(src)
    man = ollama / "manifests" / "registry.ollama.ai" / "library" / "smollm2"
    man.mkdir(parents=True)
    (man / "135m").write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00"}]}))
    snap = home / ".cache" / "huggingface" / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "smollm2-135m-instruct-q8_0.gguf").symlink_to(src)
    monkeypatch.setenv("HOME", str(home))
    for var in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS"):
        monkeypatch.delenv(var, raising=False)
    found = {e.source.split(" ")[0]: e for e in catalogue.discover(include_builtin=False)}
    assert set(found) == {"LM", "Ollama", "HF"}
    assert found["Ollama"].source == "Ollama (smollm2:135m)"
    assert found["HF"].hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    assert found["LM"].size_bytes == os.path.getsize(src)
    # A discovered name resolves and loads like any other model.
    b = catalogue.load("smollm2-135m-q4")
    assert b.next_token(b.tokenize("The capital of France is")).top[0].piece == b" Paris"
    b.close()


@pytest.mark.slow
def test_hf_folder_loads_through_transformers(smol_hf):
    """The converted cache folder is a plain HF folder (config.json + safetensors): load it as one."""
    from lab.backends.hf import converted_cache_folder

    folder = converted_cache_folder(catalogue.smollm2_path())
    b = catalogue.load(str(folder))
    assert b.info.backend == "transformers"
    assert b.next_token(b.tokenize("The capital of France is")).top[0].piece == b" Paris"


def test_cli_doctor_lists_both_defaults_offline():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "deepdive_lab", "doctor"], capture_output=True, text=True, env=env,
                         timeout=300, check=True).stdout
    assert "smollm2-135m-instruct" in out and "[chat default]" in out
    assert "gemma-3-270m" in out and "[base default]" in out
    assert "llama-cpp-python" in out and "torch" in out and "devices" in out
    assert "cl100k_base (GPT-4)          available" in out


def test_cli_models_and_flags():
    out = subprocess.run([sys.executable, "-m", "deepdive_lab", "models"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.count("default]") == 2
    from deepdive_lab.cli import build_parser

    args = build_parser().parse_args(["--model", "x.gguf", "--device", "cpu"])
    assert args.model == "x.gguf" and args.device == "cpu"
