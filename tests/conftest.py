"""Shared fixtures: the real default models, loaded once per test session."""

from __future__ import annotations

import pytest

from lab import catalogue


@pytest.fixture(scope="session")
def smol():
    """SmolLM2-135M-Instruct (Q4_1) through llama.cpp."""
    b = catalogue.load(catalogue.CHAT_DEFAULT, backend="llama.cpp", device="cpu")
    yield b
    b.close()


@pytest.fixture(scope="session")
def gemma():
    """Gemma 3 270M base (Q4_K_M) through llama.cpp."""
    b = catalogue.load(catalogue.BASE_DEFAULT, backend="llama.cpp", device="cpu")
    yield b
    b.close()


@pytest.fixture(scope="session")
def smol_hf():
    """The same SmolLM2 GGUF de-quantised through transformers (cached after the first run)."""
    b = catalogue.load(catalogue.CHAT_DEFAULT, backend="transformers", device="cpu")
    yield b
    b.close()


@pytest.fixture(scope="session")
def gemma_hf():
    b = catalogue.load(catalogue.BASE_DEFAULT, backend="transformers", device="cpu")
    yield b
    b.close()
