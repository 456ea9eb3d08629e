"""SFT data: the seeded default set (truths checked independently) and the all-or-nothing JSONL loader."""

from __future__ import annotations

import json
import re

import pytest

from lab.errors import LabError
from lab.sft_data import ASSISTANT_NAME, Example, checker, default_set, load_jsonl, split
from lab.types import ChatMessage


def test_same_seed_same_set_and_both_styles_share_problems():
    a, b = default_set(seed=3, style="working"), default_set(seed=3, style="working")
    assert a == b and a != default_set(seed=4, style="working")
    answer_first = default_set(seed=3, style="answer")
    assert [e.question for e in a] == [e.question for e in answer_first]
    assert [e.truth for e in a] == [e.truth for e in answer_first]
    counts = {t: sum(e.task == t for e in a) for t in ("identity", "apples", "letters", "arithmetic")}
    assert counts == {"identity": 300, "apples": 300, "letters": 200, "arithmetic": 200}


def test_truths_hold_and_the_checker_accepts_the_reference_answer():
    for style in ("working", "answer"):
        for e in default_set(seed=1, style=style):
            q, a = e.question, e.messages[-1].content
            assert checker(e)(a).passed, (q, a)
            if e.task == "apples":  # recompute from the question's own numbers
                n, m, each, total = map(int, re.search(
                    r"buys (\d+) \w+ and (\d+) \w+\. Each \w+ costs \$(\d+)\. The total cost is \$(\d+)", q).groups())
                assert (total - m * each) / n == int(e.truth)
                if style == "answer":
                    assert a.startswith(f"The answer is ${e.truth}.")
                else:
                    assert a.endswith(f"The answer is ${e.truth}.") and "/" in a.split("The answer")[0]
            elif e.task == "letters":
                letter, word = re.search(r"(?:How many|does) (\w) (?:are in the word|appear in) (\w+)", q).groups()
                assert word.count(letter) == int(e.truth) and "-".join(word) in a
            elif e.task == "arithmetic":
                x, op, y = re.search(r"(\d+) ([-+*]) (\d+)", q).groups()
                assert eval(f"{int(x)} {op} {int(y)}") == int(e.truth)  # noqa: S307 (digits and one operator)
            else:
                assert ASSISTANT_NAME in a and "deepdive-lab" in a


def test_checker_rejects_wrong_answers():
    e = next(x for x in default_set(seed=2) if x.task == "apples")
    wrong = int(e.truth) + 1
    assert not checker(e)(f"The answer is ${wrong}.").passed
    ident = next(x for x in default_set(seed=2) if x.task == "identity")
    assert not checker(ident)("I am a language model made by a company.").passed


def test_split_keeps_held_out_questions_out_of_train():
    train, held = split(default_set(seed=0), held_out=0.1, seed=0)
    assert held and train
    assert not {e.question for e in held} & {e.question for e in train}
    assert 0.05 < len(held) / (len(train) + len(held)) < 0.2


def _write(tmp_path, lines: list[str]):
    p = tmp_path / "data.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = json.dumps({"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello!"}]})


def test_jsonl_loads_openai_messages(tmp_path):
    got = load_jsonl(_write(tmp_path, [GOOD, "", GOOD]))
    assert got == [Example((ChatMessage("system", "Be kind."), ChatMessage("user", "Hi"),
                            ChatMessage("assistant", "Hello!")))] * 2


@pytest.mark.parametrize("bad, message", [
    ("{not json", r"line 2 is not valid JSON"),
    (json.dumps({"messages": [{"content": "Hi"}, {"role": "assistant", "content": "x"}]}), r"line 2, message 1 has no role"),
    (json.dumps({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "Hi"}]}),
     r"line 2 ends with a user turn"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}), r"line 2, message 1 has role 'wizard'"),
    (json.dumps({"prompt": "x"}), r'line 2 has no "messages" list'),
])
def test_bad_jsonl_names_the_line_and_loads_nothing(tmp_path, bad, message):
    p = _write(tmp_path, [GOOD, bad, GOOD])
    with pytest.raises(LabError, match=message) as err:
        load_jsonl(p)
    assert "Nothing was loaded" in str(err.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(LabError, match="holds no conversations"):
        load_jsonl(p)


def test_hundred_megabyte_line_is_refused_without_reading_it_all(tmp_path):
    p = tmp_path / "huge.jsonl"
    with open(p, "w") as f:
        f.write(GOOD + "\n")
        f.write('{"messages": [{"role": "user", "content": "')
        chunk = "a" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write('"}]}\n')
    with pytest.raises(LabError, match="line 2 is longer than 1 MB"):
        load_jsonl(p)


def test_missing_file(tmp_path):
    with pytest.raises(LabError, match="cannot read"):
        load_jsonl(tmp_path / "nope.jsonl")
