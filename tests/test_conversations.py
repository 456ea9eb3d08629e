"""Conversations as tokens: ids equal the tokenizer's own chat rendering; the mask is exactly the assistant's."""

from __future__ import annotations

import pytest

from lab.conversations import GEMMA_TEMPLATE, chat_format, render_conversation, render_prompt
from lab.errors import LabError
from lab.types import ChatMessage as M

CONV = [M("system", "You are brief."), M("user", "What is 12 + 30?"), M("assistant", "12 + 30 = 42."),
        M("user", "How many r in 'carrot'? Spell it."), M("assistant", "c-a-r-r-o-t: 2 r.")]
PLAIN = [M("user", "Who made you?"), M("assistant", "The deepdive lab made me. ✓ done")]


def _as_dicts(messages):
    return [{"role": m.role, "content": m.content} for m in messages]


def _check_mask(backend, fmt, messages, rendered):
    """Each assistant turn's masked tokens spell its content and the end-of-turn token, and nothing else is masked."""
    answers = [m.content for m in messages if m.role == "assistant"]
    assert len(rendered.assistant) == len(answers)
    eot = backend.tokenize(fmt.end_of_turn, add_special=False, parse_special=True)
    assert len(eot) == 1
    for (a, b), content in zip(rendered.assistant, answers):
        assert rendered.ids[b - 1] == eot[0]
        assert backend.detokenize(rendered.ids[a:b]) == content + fmt.end_of_turn
        # an independent count: the answer tokenized on its own, plus the end-of-turn token
        assert b - a == len(backend.tokenize(content, add_special=False)) + 1
    inside = {i for a, b in rendered.assistant for i in range(a, b)}
    assert [i for i, m in enumerate(rendered.mask) if m] == sorted(inside)
    assert len(rendered.mask) == len(rendered.ids)


@pytest.mark.parametrize("messages", [CONV, PLAIN])
def test_smollm2_ids_equal_its_own_template(smol, smol_hf, messages):
    fmt = chat_format(smol)
    r = render_conversation(fmt, messages)
    assert r.ids == smol.render_chat(messages, add_generation_prompt=False).ids  # the lab's render_chat
    hf_ids = smol_hf.tok.apply_chat_template(_as_dicts(messages), tokenize=True, add_generation_prompt=False,
                                             return_dict=False)
    assert list(r.ids) == list(hf_ids)  # transformers' own apply_chat_template, same template
    _check_mask(smol, fmt, messages, r)
    assert {r.ids[s.start] for s in r.special} >= {1, 2}  # <|im_start|> and <|im_end|> are marked special


@pytest.mark.parametrize("messages", [CONV, PLAIN])
def test_gemma_uses_its_documented_template(gemma, gemma_hf, messages):
    fmt = chat_format(gemma)
    assert "documented" in fmt.source
    r = render_conversation(fmt, messages)
    hf_ids = gemma_hf.tok.apply_chat_template(_as_dicts(messages), chat_template=GEMMA_TEMPLATE, tokenize=True,
                                              add_generation_prompt=False, return_dict=False)
    assert list(r.ids) == list(hf_ids)
    # the documented layout built by hand: <bos> 2, <start_of_turn> 105, <end_of_turn> 106, "\n"
    tok = lambda s: gemma.tokenize(s, add_special=False)  # noqa: E731
    nl = tok("\n")
    system = [m.content for m in messages if m.role == "system"]
    expected = [2]
    for i, m in enumerate(x for x in messages if x.role != "system"):
        head = ("model" if m.role == "assistant" else "user") + "\n"
        body = (system[0] + "\n\n" if system and i == 0 else "") + m.content
        expected += [105] + tok(head + body) + [106] + nl
    assert list(r.ids) == expected
    _check_mask(gemma, fmt, messages, r)
    assert render_prompt(fmt, messages[:2])[-3:] == (105, *tok("model\n"))


def test_same_rendering_through_both_gemma_backends(gemma, gemma_hf):
    assert render_conversation(chat_format(gemma), CONV) == render_conversation(chat_format(gemma_hf), CONV)


def test_targets_drop_what_is_not_trained():
    from lab.conversations import RenderedConversation

    r = RenderedConversation("", (5, 6, 7, 8), (0, 0, 1, 1), (), ((2, 4),))
    assert r.targets() == [-100, 7, 8]


def test_bad_conversations_get_clear_errors(gemma):
    fmt = chat_format(gemma)
    with pytest.raises(LabError, match="empty"):
        render_conversation(fmt, [])
    with pytest.raises(LabError, match="alternate"):
        render_conversation(fmt, [M("user", "a"), M("user", "b")])
    with pytest.raises(LabError, match="role"):
        render_conversation(fmt, [M("robot", "a")])
