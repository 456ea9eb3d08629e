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
