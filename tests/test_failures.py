"""The failure demos' engine: truths computed by code, checkers right on a table of cases,
answers from the real model, cached per model/seed/settings."""

import threading
from decimal import Decimal

import pytest

from lab.errors import LabError
from lab.failures import (CARD_BY_KEY, AnswerCache, contains, count_in, extract_program, final_number_is,
                          first_number_is, letters_are, make_prompt, numbers, pass_rate, run_answers, score,
                          word_tokens)
from lab.sampling import SamplingSettings


@pytest.mark.parametrize("word,letter,n", [
    ("strawberry", "r", 3), ("Mississippi", "s", 4), ("bookkeeper", "e", 3), ("bookkeeper", "k", 2),
    ("Strawberry", "s", 1), ("naïve", "ï", 1), ("nai\u0308ve", "\u00ef", 1),  # NFD input, NFC letter
    ("ÉCOLE", "é", 1), ("Straße", "s", 1), ("aaaa", "a", 4), ("rhythm", "e", 0), ("Ελλάδα", "λ", 2),
])
def test_letter_counts(word, letter, n):
    assert count_in(word, letter) == n


@pytest.mark.parametrize("answer,passed,got", [
    ("3", True, "3"), ("three", True, "three"), ('There are 3 "r"s in strawberry.', True, "3"),
    ("The letter r appears twice.", False, "twice"), ("It appears 2 times, not 3.", False, "2"),
    ("I cannot count letters.", False, "no number"), ("THREE times", True, "THREE"), ("3.0", True, "3.0"),
    ("r appears 0.15% of the time", False, "0.15"), ("13 times", False, "13"),
])
def test_first_number_checker(answer, passed, got):
    v = first_number_is(Decimal(3))(answer)
    assert (v.passed, v.got) == (passed, got)


def test_numbers_reads_digits_words_and_separators():
    assert [v for _, v in numbers("twice, 3, 8,849 m, 9.11 and -4; once")] == [
        2, 3, 8849, Decimal("9.11"), -4, 1]
    assert numbers("version v2a") == []  # a digit glued to letters is not a number


@pytest.mark.parametrize("answer,passed", [
    ('"str"', True), ("s-t-r", True), ("S, T, R", True), ("The first three letters are STR.", True),
    ('The first three letters of "strawberry" are "st" and "ber".', False),
    ("strawberry", False),  # restating the word earns nothing
    ("s t r a w", False),  # spelling on past N letters is a different answer
    ("st", False),
])
def test_first_letters_checker(answer, passed):
    assert letters_are("str", "strawberry")(answer).passed is passed


@pytest.mark.parametrize("answer,passed", [
    ("yrrebwarts", True), ("Y-R-R-E-B-W-A-R-T-S", True), ("It is yrrebwarts.", True),
    ("yrrebwats", False), ("strawberry backwards is berrystraw", False),
])
def test_backwards_checker(answer, passed):
    assert letters_are("yrrebwarts", "strawberry")(answer).passed is passed


def test_unicode_words_in_letter_checkers():
    assert letters_are("naï", "naïve")("nai\u0308").passed  # NFD spelling of the same letters
    assert letters_are("évian"[::-1], "évian")("naivé").passed


@pytest.mark.parametrize("answer,passed", [
    ("9.9", True), ("9.90 is bigger", True), ("9.11 is bigger than 9.9", False), ("9", False), ("", False),
])
def test_compare_checker(answer, passed):
    assert first_number_is(Decimal("9.9"))(answer).passed is passed


@pytest.mark.parametrize("answer,passed,got", [
    ("3 apples cost 9, so each is 3.\nAnswer: 3", True, "3"), ("Answer: $3.", True, "3"),
    ("So each apple costs 3 dollars.", True, "3"), ("The answer is: 4", False, "4"),
    ("13 - 4 = 9, 9 / 3 = 3. Answer: 3 dollars", True, "3"), ("no idea", False, "no number"),
])
def test_final_number_checker(answer, passed, got):
    v = final_number_is(Decimal(3))(answer)
    assert (v.passed, v.got) == (passed, got)


def test_contains_checker_ignores_case_and_thousands_commas():
    c = contains("8849")
    assert c("It is 8,849 metres tall.").passed and not c("It is 8,848 m.").passed
    assert contains("Tarawa")("the capital is south TARAWA").passed


def test_program_extraction():
    assert extract_program("Here:\n```python\nprint(1)\n```\nDone") == "print(1)\n"
    assert extract_program("```\nx = 2\nprint(x)") == "x = 2\nprint(x)\n"  # an unclosed block runs to the end
    assert extract_program("print('strawberry'.count('r'))") == "print('strawberry'.count('r'))\n"
    assert extract_program("There are three r's.") is None


def test_truths_are_computed_from_the_values_typed():
    assert CARD_BY_KEY["count"].experiment({"word": "Mississippi", "letter": "s"}).truth == "4"
    assert CARD_BY_KEY["first"].experiment({"word": "naïve", "n": "3"}).truth == "naï"
    assert CARD_BY_KEY["backwards"].experiment({"word": "drawer"}).truth == "reward"
    assert CARD_BY_KEY["dots"].experiment({"n": "7"}).truth == "7"
    assert CARD_BY_KEY["compare"].experiment({"a": "3.8", "b": "3.10"}).truth == "3.8"
    assert CARD_BY_KEY["arithmetic"].experiment().truth == "3"  # the talk's (13 - 2*2) / 3
    assert CARD_BY_KEY["arithmetic"].experiment({"apples": "4", "oranges": "1", "price": "3", "total": "23"}).truth == "5"
    assert CARD_BY_KEY["memory"].experiment().truth == "8849"


@pytest.mark.parametrize("card,values,message", [
    ("count", {"letter": "rr"}, "one letter"), ("count", {"word": "  "}, "Type a word"),
    ("count", {"word": "a\x00b"}, "printable"), ("first", {"n": "99"}, "between"),
    ("compare", {"a": "9.9", "b": "9.90"}, "equal"), ("compare", {"a": "nine"}, "decimal"),
    ("arithmetic", {"total": "14"}, "whole-dollar"), ("memory", {"passage": "Nothing here."}, "must contain"),
])
def test_bad_values_get_a_clear_message(card, values, message):
    with pytest.raises(LabError, match=message):
        CARD_BY_KEY[card].experiment(values)


def test_word_tokens_follow_the_tokenizer_split_of_the_prompt(smol):
    e = CARD_BY_KEY["count"].experiment()
    prompt = make_prompt(smol, e.variants[0], "chat")
    toks = word_tokens(smol, prompt, "strawberry")
    # code-computed truth: walk the prompt's own token bytes to the word's byte range
    data = prompt.text.encode()
    start = data.rfind(b"strawberry")
    pieces, pos = [], len(data) - sum(len(smol.token_bytes(t)) for t in prompt.ids)
    for t in prompt.ids:
        piece = smol.token_bytes(t)
        if pos + len(piece) > start and pos < start + 10:
            pieces.append(piece)
        pos += len(piece)
    assert [p for _, p, _ in toks] == pieces
    assert b"".join(pieces).find(b"strawberry") >= 0 and len(pieces) > 1  # several tokens, not ten letters


def test_answers_are_the_models_and_the_cache_replays_them(smol, tmp_path):
    e = CARD_BY_KEY["count"].experiment()
    v = e.variants[0]
    prompt = make_prompt(smol, v, "chat")
    settings = SamplingSettings(temperature=0.7, top_p=0.95)
    cache = AnswerCache(tmp_path)
    got: dict = {}
    run_answers(smol, v, prompt, settings, [1, 2], lambda i, a: got.__setitem__(i, a), threading.Event(), cache)
    first = [got[0], got[1]]
    assert all(a.done and not a.cached for a in first)
    # the same seed through the engine directly gives the same text
    from dataclasses import replace
    direct = smol.generate(list(prompt.ids), replace(settings, seed=1), v.max_tokens)
    assert direct.text.strip() == first[0].text
    got.clear()
    run_answers(smol, v, prompt, settings, [1, 2], lambda i, a: got.__setitem__(i, a), threading.Event(), cache)
    assert [a.text for a in got.values()] == [a.text for a in first] and all(a.cached for a in got.values())
    passed, scored = pass_rate(v, first)
    assert scored == 2 and passed == sum(v.checker(a.text).passed for a in first)
    # another temperature is another experiment: not served from this cache
    got.clear()
    run_answers(smol, v, prompt, SamplingSettings(temperature=0.5), [1], lambda i, a: got.__setitem__(i, a),
                threading.Event(), cache)
    assert not got[0].cached


def test_a_damaged_cache_file_is_sampled_again(smol, tmp_path):
    e = CARD_BY_KEY["dots"].experiment()
    v = e.variants[0]
    prompt = make_prompt(smol, v, "chat")
    cache = AnswerCache(tmp_path)
    got: dict = {}
    run_answers(smol, v, prompt, SamplingSettings(), [5], lambda i, a: got.__setitem__(i, a), threading.Event(), cache)
    for f in tmp_path.rglob("*.json"):
        f.write_text("{not json")
    run_answers(smol, v, prompt, SamplingSettings(), [5], lambda i, a: got.__setitem__(i, a), threading.Event(), cache)
    assert not got[0].cached and got[0].done


def test_the_tool_variant_runs_the_models_program_in_the_sandbox(smol, tmp_path):
    e = CARD_BY_KEY["tool"].experiment()
    v = e.variants[1]
    assert v.tool
    prompt = make_prompt(smol, v, "chat")
    got: dict = {}
    run_answers(smol, v, prompt, SamplingSettings(temperature=0.7, top_p=0.95), [3],
                lambda i, a: got.__setitem__(i, a), threading.Event(), AnswerCache(tmp_path))
    a = got[0]
    assert a.program is not None and a.program.strip() in a.text  # the program comes from the answer
    assert a.run is not None and a.run["status"] in ("ok", "error", "refused", "timeout", "cpu", "memory", "output")
    assert score(v, a) == v.checker(a.run["stdout"])


def test_a_cancelled_run_keeps_nothing(smol, tmp_path):
    e = CARD_BY_KEY["count"].experiment()
    v = e.variants[0]
    cancel = threading.Event()
    cancel.set()
    got: dict = {}
    run_answers(smol, v, make_prompt(smol, v, "chat"), SamplingSettings(), [1, 2],
                lambda i, a: got.__setitem__(i, a), cancel, AnswerCache(tmp_path))
    assert [a.stop for a in got.values()] == ["cancelled", "cancelled"]
    assert pass_rate(v, list(got.values())) == (0, 0) and not list(tmp_path.rglob("*.json"))


def test_the_base_model_gets_the_few_shot_prompt(gemma):
    e = CARD_BY_KEY["compare"].experiment()
    prompt = make_prompt(gemma, e.variants[0], "base")
    assert prompt.text.endswith("Assistant:") and "Human: Which number is bigger, 9.9 or 9.11?" in prompt.text
    assert prompt.stop_text == "\nHuman:"
