"""Prompts for base and chat models: how each kind of model receives the same question.

A base model continues raw text (optionally wrapped in a few-shot fake conversation, the
talk's trick to get an assistant out of a base model with only a prompt); a chat model sees
the prompt as a user message through its own chat template. Headless, no UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.types import ChatMessage, RenderedChat

FEW_SHOT_STOP = "\nHuman:"

FEW_SHOT = (
    "The following is a conversation between a Human and a helpful, knowledgeable AI Assistant.\n\n"
    "Human: What is the capital of France?\n"
    "Assistant: The capital of France is Paris.\n\n"
    "Human: How many legs does a spider have?\n"
    "Assistant: A spider has eight legs.\n\n"
    "Human: Can you name a primary colour?\n"
    "Assistant: Red is a primary colour.\n\n"
    "Human: {prompt}\n"
    "Assistant:"
)

# Famous public-domain openings a base model has surely read many times: the prompt, and how
# the original goes on (regurgitation: the continuation is checked against it, token by token).
ORIGINALS = {
    "The quick brown fox": " jumps over the lazy dog.",
    "Four score and seven years ago our fathers brought forth":
        " on this continent, a new nation, conceived in Liberty, and dedicated to the proposition that all men"
        " are created equal.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness,":
        " it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the"
        " season of Darkness,",
}

PRESETS = {
    "base dreams": "Once upon a time, in a small village by the sea,",
    "who are you?": "Who are you, and who made you?",
    "few-shot assistant": "Why is the sky blue?",
    "factual question": "What is the tallest mountain in the world?",
    "regurgitation": "The quick brown fox",
}


def original_after(prompt: str) -> str | None:
    """How a famous text goes on after `prompt`, when the prompt is its opening (or a part of it)."""
    key = prompt.rstrip()
    for opening, rest in ORIGINALS.items():
        whole = opening + rest
        if key and whole.startswith(key) and len(key) >= len(min(ORIGINALS, key=len)):
            return whole[len(key):]
    return None


def matching_prefix(text: str, original: str) -> int:
    """How many characters of `text` repeat `original` exactly from its start.

    >>> matching_prefix(" on this continent, a new land", " on this continent, a new nation")
    26
    """
    n = 0
    for a, b in zip(text, original):
        if a != b:
            break
        n += 1
    return n


def few_shot(prompt: str) -> str:
    """The prompt wrapped in a short fake conversation, ending where the Assistant speaks."""
    return FEW_SHOT.format(prompt=prompt.strip())


@dataclass(frozen=True)
class Request:
    """What each pane generates from: the exact ids, and how they were made."""

    ids: tuple[int, ...]
    text: str  # the exact text the model receives
    rendered: RenderedChat | None = None  # the chat template rendering (chat pane only)
    stop_text: str = ""  # stop when the continuation contains this (few-shot: the next "Human:")


def base_request(backend, prompt: str, use_few_shot: bool) -> Request:
    text = few_shot(prompt) if use_few_shot else prompt
    return Request(tuple(backend.tokenize(text, add_special=True)), text, None,
                   FEW_SHOT_STOP if use_few_shot else "")


def chat_request(backend, prompt: str, system: str | None) -> Request:
    messages = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]
    rendered = backend.render_chat(messages, add_generation_prompt=True)
    return Request(rendered.ids, rendered.text, rendered)
