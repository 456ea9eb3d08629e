"""Backends: llama.cpp (GGUF) and transformers/torch. Each imports its library lazily."""

from lab.backends.base import Backend, Generation

__all__ = ["Backend", "Generation"]
