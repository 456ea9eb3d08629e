"""Typed engine errors. Each message says what went wrong and what to do.

Every error the engine raises on bad input is a `LabError`, so a caller (the app,
the CLI) can catch one type, show `str(err)` and carry on.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class: a problem the user can act on. `str(err)` is the message to show."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(f"{message} {self.hint}".strip() if self.hint else message)


class ModelNotFoundError(LabError):
    """A path was given but nothing is there."""

    hint = "Check the path, or run `deepdive-lab models` to list the models found."


class UnknownModelError(LabError):
    """A short name that the catalogue does not know."""

    hint = "Run `deepdive-lab models` to list the names it knows, or pass a .gguf path or an HF folder."


class CorruptModelError(LabError):
    """The file is a model format but is truncated or damaged."""

    hint = "The file is damaged or incomplete: download it again."


class NotAModelError(LabError):
    """The file or folder is not a model the lab can read."""

    hint = "Give a .gguf file, a folder with config.json and weights, or a hub id."


class OfflineError(LabError):
    """A hub id was asked for, but the hub cannot be reached."""

    hint = "Connect to the internet, or use a model already on disk (`deepdive-lab models`)."


class ModelOutOfMemoryError(LabError):
    """Loading or running the model ran out of memory."""

    hint = "Try a smaller or more quantised model, a shorter context, or `--device cpu`."


class BackendUnavailableError(LabError):
    """A Python package a backend needs is not installed or fails to import."""

    hint = "Reinstall deepdive-lab (`pip install -e .`) to get its dependencies."


class TokenizerUnavailableError(LabError):
    """An encoding cannot be loaded (usually: offline and not cached)."""

    hint = "It needs a one-time download; connect once, or set TIKTOKEN_CACHE_DIR to a folder that has it."


class CancelledError(LabError):
    """A long operation was cancelled by the caller."""
