"""The failure demos' engine: truths computed by code, checkers right on a table of cases,
answers from the real model, cached per model/seed/settings."""

import threading
from decimal import Decimal

import pytest

from lab.errors import LabError
from lab.failures import (CARD_BY_KEY, CARDS, Answer, AnswerCache, answer_number_is, bigger_number_is, contains,
                          count_in, extract_program, first_number_is, letters_are, make_prompt, numbers, pass_rate,
                          run_answers, score, word_tokens)
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


COMPARE = bigger_number_is(Decimal("9.9"), Decimal("9.11"), ("9.9", "9.11"))


@pytest.mark.parametrize("answer,passed,got", [
    ("9.9", True, "9.9"), ("9.90 is bigger", True, "9.90"), ("9.11 is bigger than 9.9", False, "9.11"),
    ("9.9 is bigger than 9.11", True, "9.9"), ("9.11 is smaller than 9.9", True, "9.9"), ("9.9 > 9.11", True, "9.9"),
    ("9.11 < 9.9", True, "9.9"), ("The answer is 9.11. It has more digits.", False, "9.11"),
    ("We need to find the larger of 9.9 and 9.11.", False, "both numbers, no verdict"),
    ("Which number is bigger, 9.9 or 9.11?", False, "both numbers, no verdict"),
    ("9", False, "neither number"), ("", False, "neither number"), ("9.11", False, "9.11"),
    ("Comparing 9.9 and 9.11: 9.9 is the larger number.", True, "9.9"),
])
def test_compare_checker_reads_the_verdict_not_a_restatement(answer, passed, got):
    v = COMPARE(answer)
    assert (v.passed, v.got) == (passed, got)


QUESTION = ("Emily buys 3 apples and 2 oranges. Each orange costs $2. The total cost of all the fruit is $19. "
            "What is the cost of each apple?")


@pytest.mark.parametrize("pick,answer,passed,got", [
    ("last", "3 apples and 2 oranges: 2 * 2 = 4, 19 - 4 = 15, 15 / 3 = 5.\nAnswer: 5", True, "5"),
    ("last", "Answer: $5.", True, "5"), ("last", "So each apple costs 5 dollars.", True, "5"),
    ("last", "The answer is: 4", False, "4"), ("last", "no idea", False, "no number"),
    ("last", "Emily buys 3 apples and 2 oranges. Each orange costs $2.", False, "only the question's numbers"),
    ("first", "3", False, "only the question's numbers"),  # the question's "3 apples" is not an answer
    ("first", "5", True, "5"), ("first", "$5. Because 19 - 4 = 15 and 15 / 3 = 5.", True, "5"),
    ("first", "Emily buys 3 apples, so each costs $7.", False, "7"),
    ("first", "The answer is $5", True, "5"),
])
def test_answer_number_checker_ignores_echoes_of_the_question(pick, answer, passed, got):
    v = answer_number_is(Decimal(5), QUESTION, pick)(answer)
    assert (v.passed, v.got) == (passed, got)


def test_program_output_checker_takes_the_first_number():
    assert first_number_is(Decimal(3))("3\n").passed
    assert not first_number_is(Decimal(3))("2 3").passed


@pytest.mark.parametrize("answer,passed", [
    ("It's S-T-R.", True), ("It's 'str'.", True), ("That's s, t, r", True), ("it's s-t-a", False),
])
def test_contractions_do_not_join_spelled_letters(answer, passed):
    assert letters_are("str", "strawberry")(answer).passed is passed


@pytest.mark.parametrize("answer,passed", [
    ("a", True), ("The first letter is a.", True), ("A", True), ("I think it is a", True),
    ("It is a vowel: e", False), ("e", False), ("apple starts with the letter p", False),
])
def test_a_one_letter_truth_needs_that_letter_alone(answer, passed):
    assert letters_are("a", "apple", 'What are the first 1 letters of the word "apple"?')(answer).passed is passed


def test_an_error_is_not_scored_as_an_answer():
    e = CARD_BY_KEY["arithmetic"].experiment({"total": "16", "apples": "3", "oranges": "2", "price": "2"})
    variant = e.variants[1]
    errored = Answer(1, "so the answer is 4", stop="error", error="the server said (429) 4 times")
    assert score(variant, errored).got == "error" and pass_rate(variant, [errored]) == (0, 0)


def test_letters_checker_counts_a_question_word_only_when_spelled():
    c = letters_are("the", "theater", 'What are the first 3 letters of the word "theater"?')
    assert not c('The first 3 letters of the word "theater" are').passed  # an echo
    assert c("t-h-e").passed and "letter by letter" in c.description


@pytest.mark.parametrize("card", [c.key for c in CARDS])
def test_no_card_passes_an_echo_of_its_question(card):
    """Every checker reads the model's answer: the question itself, or a restatement that
    starts by repeating it, never passes."""
    e = CARD_BY_KEY[card].experiment()
    for variant in e.variants:
        for echo in (variant.prompt, e.question, f"You asked: {e.question} Let me think.", f"{e.question} Hmm."):
            answer = Answer(1, echo, stop="eos", program=echo if variant.tool else None,
                            run={"stdout": ""} if variant.tool else None)
            assert not score(variant, answer).passed, (card, variant.name, echo)


def test_cards_say_the_values_typed():
    assert "b's in bubble" in CARD_BY_KEY["count"].blurb_for({"word": "bubble", "letter": "b"})


def test_contains_checker_ignores_case_and_thousands_commas():
    c = contains("8849")
    assert c("It is 8,849 metres tall.").passed and not c("It is 8,848 m.").passed
    assert not contains("die")("They studied the famine.").passed  # a word, not any substring
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
    assert CARD_BY_KEY["arithmetic"].experiment().truth == "5"  # (19 - 2*2) / 3: not a number of the question

    assert CARD_BY_KEY["arithmetic"].experiment({"apples": "4", "oranges": "1", "price": "3", "total": "23"}).truth == "5"
    assert CARD_BY_KEY["memory"].experiment().truth == "8849"


@pytest.mark.parametrize("card,values,message", [
    ("count", {"letter": "rr"}, "one letter"), ("count", {"word": "  "}, "Type a word"),
    ("count", {"word": "a\x00b"}, "printable"), ("first", {"n": "99"}, "between"),
    ("compare", {"a": "9.9", "b": "9.90"}, "equal"), ("compare", {"a": "nine"}, "decimal"),
    ("arithmetic", {"total": "14"}, "whole-dollar"), ("memory", {"passage": "Nothing here."}, "must contain"),
    ("memory", {"question": "Is the answer 8849?"}, "question itself"),
    ("arithmetic", {"total": "13"}, "also a number in the question"),  # the talk's own numbers: $3 = 3 apples
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
    from lab.sandbox import run_python

    again = run_python(a.program)  # the reference: the same program run again now
    assert a.run is not None and (a.run["status"], a.run["stdout"]) == (again.status, again.stdout)
    assert a.run["status"] != "unavailable"
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
