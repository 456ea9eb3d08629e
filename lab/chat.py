"""Chat templates: a conversation becomes the exact text (and tokens) a chat model sees.

Templates are the Jinja strings models ship (GGUF metadata `tokenizer.chat_template`,
or `tokenizer_config.json`). They are rendered in a sandbox, as transformers and
llama.cpp do, with the same variables (`messages`, `add_generation_prompt`,
`bos_token`, `eos_token`, `raise_exception`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from lab.errors import LabError
from lab.types import ChatMessage

MESSAGE_ROLES = ("system", "user", "assistant")


@lru_cache(maxsize=16)
def _compile(template: str):
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent, ensure_ascii=False)
    return env.from_string(template)


def render_template(template: str, messages: Sequence[ChatMessage], add_generation_prompt: bool = True,
                    bos_token: str = "", eos_token: str = "") -> str:
    """Render `messages` with a chat template string.

    Example: ChatML with [user "hi"] -> "<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n".
    """
    from jinja2 import TemplateError

    for m in messages:
        if m.role not in MESSAGE_ROLES:
            raise LabError(f"unknown chat role {m.role!r}; use one of {', '.join(MESSAGE_ROLES)}.")
    try:
        return _compile(template).render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except TemplateError as exc:
        raise LabError(f"the model's chat template refused this conversation: {exc}") from exc
