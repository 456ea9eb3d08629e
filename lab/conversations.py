"""Conversations as tokens: a chat template turns turns into ids, and a loss mask marks what SFT learns.

    fmt = chat_format(backend)                   # the model's own template, or Gemma's documented one
    r = render_conversation(fmt, messages)        # r.ids, r.mask (1 = an assistant token, trained on)

The mask is 1 on exactly each assistant turn's tokens up to and including its end-of-turn token
(`<|im_end|>`, `<end_of_turn>`): the system and user turns and the template's role headers are
context the model reads, not text it learns to write (nanochat's `render_conversation` returns the
same pair). The text after the end-of-turn token (ChatML's "\\n") is not trained on: sampling stops
at that token.

How the mask is found, for any template: render the conversation up to assistant turn i with the
generation prompt, then up to and including turn i; the characters between the two are that
turn, which is cut after its end-of-turn token. The whole text is tokenized once (so the ids are
exactly the tokenizer's) and a token is in the mask when its bytes overlap such a span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.chat import render_template
from lab.errors import LabError
from lab.types import ChatMessage, Span

# Gemma's chat format, as Google documents it for Gemma 3 (ai.google.dev/gemma/docs/core/prompt-structure and
# the `chat_template` of google/gemma-3-270m-it's tokenizer_config.json): "<bos><start_of_turn>user\n...
# <end_of_turn>\n<start_of_turn>model\n...<end_of_turn>\n"; the assistant's role is spelled "model", a system
# prompt goes at the start of the first user turn followed by a blank line, and each turn's text is trimmed.
# The base GGUF carries no template, but its vocabulary has the markers as single special tokens:
# <bos> 2, <start_of_turn> 105, <end_of_turn> 106 (DESIGN.md). This is the -it template for plain-text content.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- endif -%}"
)

# ChatML without a default system prompt: the template of the lab's own tiny-chat model.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\n' }}"
    "{%- endif -%}"
)

# End-of-turn markers of the templates the lab knows, most specific first.
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|assistant_end|>")


@dataclass(frozen=True)
class ChatFormat:
    """How one model writes conversations: its template and its tokenizer, as plain callables."""

    template: str  # a Jinja chat template
    end_of_turn: str  # the text of the token that ends an assistant turn
    tokenize: Callable[[str], list[int]]  # text -> ids, special tokens parsed, nothing added
    token_bytes: Callable[[int], bytes]
    is_special: Callable[[int], bool]
    bos_token: str = ""
    eos_token: str = ""
    source: str = ""  # where the template came from, in words


@dataclass(frozen=True)
class RenderedConversation:
    """A conversation as the model sees it in training."""

    text: str
    ids: tuple[int, ...]
    mask: tuple[int, ...]  # 1 where the loss is taken (assistant tokens and their end-of-turn), else 0
    special: tuple[Span, ...]  # positions of special tokens
    assistant: tuple[tuple[int, int], ...]  # each assistant turn's masked token positions [start, end)

    def targets(self, ignore: int = -100) -> list[int]:
        """The next-token targets of ids[:-1]: ids[1:] where the mask is 1, else `ignore`.

        Example: ids [5, 6, 7, 8], mask [0, 0, 1, 1] -> [ignore, 7, 8].
        """
        return [t if m else ignore for t, m in zip(self.ids[1:], self.mask[1:])]


def end_of_turn_for(template: str) -> str:
    for marker in END_OF_TURN:
        if marker in template:
            return marker
    raise LabError("this chat template has no end-of-turn marker the lab knows "
                   f"({', '.join(END_OF_TURN)}), so it cannot mark where an answer ends.")


def chat_format(backend) -> ChatFormat:
    """The chat format of a loaded model: its own template, else Gemma's documented one where the
    vocabulary holds Gemma's turn markers (the Gemma 3 base GGUF), else a clear error."""
    template = backend._chat_template()
    source = getattr(backend, "_template_source", lambda: "model")()
    specials = backend._special_tokens()
    if not template:
        if backend.tokenize("<start_of_turn>", add_special=False, parse_special=True) == [105]:
            template, source = GEMMA_TEMPLATE, "Gemma 3's documented template (the base model ships none)"
            specials = {"bos_token": "<bos>", "eos_token": "<eos>"}
        else:
            raise LabError(f"{backend.info.name} has no chat template and is not a model whose format the lab knows.",
                           "Use a model with a chat template, or a Gemma base model.")
    return ChatFormat(template, end_of_turn_for(template),
                      lambda text: backend.tokenize(text, add_special=False, parse_special=True),
                      backend.token_bytes, backend._is_special, specials.get("bos_token", ""),
                      specials.get("eos_token", ""), source)


def _render(fmt: ChatFormat, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
    return render_template(fmt.template, messages, add_generation_prompt, fmt.bos_token, fmt.eos_token)


def assistant_char_spans(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> list[tuple[int, int]]:
    """Character ranges of each assistant turn's trained text in the full rendering.

    Example (ChatML): [user "hi", assistant "Hello"] -> the range of "Hello<|im_end|>".
    """
    full = _render(fmt, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        before = _render(fmt, messages[:i], True)
        upto = _render(fmt, messages[:i + 1], False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise LabError("this chat template does not render a conversation turn by turn, "
                           "so the assistant's tokens cannot be marked.")
        turn = upto[len(before):]
        cut = turn.rfind(fmt.end_of_turn)
        if cut < 0:
            raise LabError(f"assistant turn {i + 1} does not end with {fmt.end_of_turn} in this template.")
        spans.append((len(before), len(before) + cut + len(fmt.end_of_turn)))
    return spans


def render_conversation(fmt: ChatFormat, messages: Sequence[ChatMessage],
                        add_generation_prompt: bool = False) -> RenderedConversation:
    """Render and tokenize a conversation; mark the assistant turns' tokens (see the module docstring)."""
    if not messages:
        raise LabError("the conversation is empty.")
    text = _render(fmt, messages, add_generation_prompt)
    char_spans = assistant_char_spans(fmt, messages)
    ids = fmt.tokenize(text)
    encoded = text.encode("utf-8")
    byte_spans = [(len(text[:a].encode("utf-8")), len(text[:b].encode("utf-8"))) for a, b in char_spans]
    mask, special, assistant = [], [], []
    pos = 0
    for i, tid in enumerate(ids):
        piece = fmt.token_bytes(tid)
        start, pos = pos, pos + len(piece)
        inside = any(start < b and pos > a for a, b in byte_spans)
        mask.append(int(inside))
        if fmt.is_special(tid):
            c0 = len(encoded[:start].decode("utf-8", errors="ignore"))
            c1 = len(encoded[:pos].decode("utf-8", errors="ignore"))
            special.append(Span(i, i + 1, c0, c1))
        if inside and (i == 0 or not mask[i - 1]):
            assistant.append([i, i + 1])
        elif inside:
            assistant[-1][1] = i + 1
    if pos != len(encoded):
        raise LabError("the tokenizer's pieces do not spell the rendered text, so the mask cannot be placed.")
    return RenderedConversation(text, tuple(ids), tuple(mask), tuple(special), tuple((a, b) for a, b in assistant))


def render_prompt(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> tuple[int, ...]:
    """The ids a model continues to answer: the conversation so far and the assistant's header."""
    return tuple(fmt.tokenize(_render(fmt, messages, True)))
