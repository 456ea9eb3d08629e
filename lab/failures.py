"""Jagged intelligence, measured: failure demos with code-computed truth and visible checkers.

Each `Card` turns a few user-typed values into an `Experiment`: the question(s) asked, the
ground truth computed here by code, and one or two `Variant`s (a prompt, a token budget and
the `Checker` that scores an answer). `run_answers` samples a model N times per variant with
seeds seed, seed+1, ...; every answer is real model output, cached per model, prompt, seed
and settings so a talk can replay a run instantly. A pass rate is always the checker applied
to the answers kept, never a stored number. Headless: no UI import.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import replace as dc_replace
from decimal import Decimal, InvalidOperation

from lab.prompts import Request, base_request, chat_request
from lab.cache import JsonCache
from lab.errors import LabError
from lab.runs import SampleUpdate, model_identity, stream_seeds
from lab.sampling import SamplingSettings

# ---- reading answers ------------------------------------------------------------------

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"once": 1, "twice": 2, "thrice": 3, "none": 0})
_NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?![\d])|(?<![^\W\d_])(?:" +
                     "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?![^\W\d_])", re.IGNORECASE)
_SEPARATORS = set(" \t\n,;-–—./|'\"‘’“”`()[]")


def numbers(text: str) -> list[tuple[str, Decimal]]:
    """Every number in `text` in order, as (what was written, value): digits ("8,849", "9.11",
    "-3") and small number words ("three", "twice")."""
    out = []
    for m in _NUMBER.finditer(text):
        written = m.group(0)
        word = written.lower()
        if word in NUMBER_WORDS:
            out.append((written, Decimal(NUMBER_WORDS[word])))
            continue
        try:
            out.append((written, Decimal(written.replace(",", "").replace("−", "-"))))
        except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
            continue
    return out


def letter_items(text: str, exclude: str = "", spelled_only: bool = False) -> list[str]:
    """The letter strings an answer offers, case-folded: each word, and each run of single
    letters spelled out with separators ("s-t-r", "S, T, R" -> "str"). Occurrences of
    `exclude` (the question's own word) are left out, so restating it earns nothing; with
    `spelled_only`, whole words are left out too and only spelled-out runs remain."""
    text = unicodedata.normalize("NFC", text)
    words = [(m.start(), m.end(), m.group(0).replace("’", "").replace("'", ""))
             for m in re.finditer(r"[^\W\d_]+(?:['’][^\W\d_]+)*", text)]  # "it's" is one word
    items: list[str] = []
    run: list[str] = []  # single letters spelled out one after another
    prev_end = None
    for start, end, word in words:
        joined = prev_end is not None and all(c in _SEPARATORS for c in text[prev_end:start])
        if len(word) == 1 and (joined or not run):
            run.append(word)
        else:
            if run:
                items.append("".join(run))
            run = [word] if len(word) == 1 else []
        if len(word) > 1 and not spelled_only:
            items.append(word)
        prev_end = end
    if run:
        items.append("".join(run))
    excluded = unicodedata.normalize("NFC", exclude).casefold()
    return [i.casefold() for i in items if i.casefold() != excluded or not excluded]


def extract_program(answer: str) -> str | None:
    """The Python program in an answer: the first ```python block (or any ``` block; an
    unclosed block runs to the end), else the answer itself when it looks like code."""
    m = re.search(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", answer, re.DOTALL | re.IGNORECASE)
    if m and m.group(1).strip():
        return m.group(1).strip("\n") + "\n"
    if re.search(r"^\s*(print\(|def |import |for |[A-Za-z_]\w* = )", answer, re.MULTILINE):
        return answer.strip("\n") + "\n"
    return None


# ---- checkers -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    passed: bool
    got: str  # what the checker read from the answer ("3", "no number", ...)


@dataclass(frozen=True)
class Checker:
    """A rule a person can read on screen, and the function that applies it."""

    description: str
    check: Callable[[str], Verdict] = field(compare=False)

    def __call__(self, answer: str) -> Verdict:
        return self.check(answer)


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def first_number_is(truth: Decimal, what: str = "the answer") -> Checker:
    """For text that is all answer (a program's output): its first number."""
    def check(answer: str) -> Verdict:
        found = numbers(answer)
        if not found:
            return Verdict(False, "no number")
        return Verdict(found[0][1] == truth, found[0][0])
    return Checker(f"first number in {what} == {_fmt(truth)}", check)


_MARKED = re.compile(r"answer\s*(?:is|was|would be|=|:)\s*[:=]?", re.IGNORECASE)


def _marked_answer(answer: str) -> tuple[str, Decimal] | None:
    """The number right after the last "answer is" / "Answer:" in `answer`, if there is one."""
    for m in reversed(list(_MARKED.finditer(answer))):
        found = numbers(answer[m.end():m.end() + 40])
        if found:
            return found[0]
    return None


def answer_number_is(truth: Decimal, question: str, pick: str = "first") -> Checker:
    """The number the answer gives: the one after the last "answer is" / "Answer:", else the
    `pick` ("first" or "last") number that is not one of the question's own numbers, so an
    answer that restates the question ("Emily buys 2 apples...") earns nothing.

    >>> answer_number_is(Decimal(5), "2 apples cost $10")("You buy 2 apples for $10, so 5 each").passed
    True
    """
    echoes = {value for _, value in numbers(question)}
    shown = ", ".join(_fmt(v) for v in sorted(echoes))

    def check(answer: str) -> Verdict:
        marked = _marked_answer(answer)
        if marked is not None:
            return Verdict(marked[1] == truth, marked[0])
        own = [(w, v) for w, v in numbers(answer) if v not in echoes]
        if not own:
            return Verdict(False, "only the question's numbers" if numbers(answer) else "no number")
        written, value = own[0] if pick == "first" else own[-1]
        return Verdict(value == truth, written)

    rule = f'number after "answer is" / "Answer:", else the {pick} number'
    if echoes:
        rule += f" that is not the question's ({shown})"
    return Checker(f"{rule} == {_fmt(truth)}", check)


_BIGGER = r"(?:bigger|larger|greater|higher|more)"
_SMALLER = r"(?:smaller|less|lower|fewer)"


def bigger_number_is(a: Decimal, b: Decimal, written: tuple[str, str]) -> Checker:
    """Which of two numbers the answer names as the bigger: a marked answer ("the answer is
    9.9"), a comparison ("9.9 is bigger than 9.11", "9.11 < 9.9"), else the one number of the
    two that the answer names. An answer naming both without a verdict (a restatement of
    the question) earns nothing.

    >>> bigger_number_is(Decimal("9.9"), Decimal("9.11"), ("9.9", "9.11"))("9.11 is smaller than 9.9").got
    '9.9'
    """
    truth = max(a, b)
    pair = {a: written[0], b: written[1]}
    num = r"(-?\d+(?:\.\d+)?)"
    comparisons = [  # (pattern, which group is the bigger one)
        (re.compile(num + r"\s*(?:is|are|'s)?\s*(?:the\s+)?(?:" + _BIGGER + r")\b(?:\s+than\s+" + num + ")?",
                    re.IGNORECASE), 1),
        (re.compile(num + r"\s*(?:is|are|'s)?\s*(?:the\s+)?(?:" + _SMALLER + r")\b(?:\s+than\s+" + num + ")",
                    re.IGNORECASE), 2),
        (re.compile(num + r"\s*>\s*" + num), 1),
        (re.compile(num + r"\s*<\s*" + num), 2),
    ]

    def check(answer: str) -> Verdict:
        marked = _marked_answer(answer)
        if marked is not None and marked[1] in pair:
            return Verdict(marked[1] == truth, marked[0])
        for pattern, group in comparisons:
            for m in pattern.finditer(answer):
                text = m.group(group)
                if text is None:
                    continue
                try:
                    value = Decimal(text)
                except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
                    continue
                if value in pair:
                    return Verdict(value == truth, text)
        named = {v for _, v in numbers(answer) if v in pair}
        if len(named) == 1:
            value = named.pop()
            return Verdict(value == truth, pair[value])
        return Verdict(False, "both numbers, no verdict" if named else "neither number")

    return Checker(f'the number called bigger ("answer is X", "X is bigger", "X > Y"), else the only one of '
                   f"{written[0]} and {written[1]} named == {_fmt(truth)}", check)


def letters_are(truth: str, word: str, question: str = "") -> Checker:
    """The letters `truth` as a word of the answer or spelled out letter by letter. Restating
    the key `word` earns nothing; where `truth` is itself a word of the question ("the" in
    "theater"), only a spelled-out answer counts, since the word could be an echo."""
    target = unicodedata.normalize("NFC", truth).casefold()
    echoes = {w.casefold() for w in re.findall(r"[^\W\d_]+", unicodedata.normalize("NFC", question))}
    spelled_only = target in echoes or len(target) == 1

    def check(answer: str) -> Verdict:
        items = letter_items(answer, exclude=word if word.casefold() != target else "", spelled_only=spelled_only)
        if len(target) == 1:
            # One letter: "a" and "I" are also words, so every single letter the answer names counts,
            # and all of them must be the truth ("It is a vowel: e" names a and e: no answer).
            letters = [i for i in items if len(i) == 1 and not (i == "i" and target != "i")]
            ok = bool(letters) and set(letters) == {target}
            return Verdict(ok, truth if ok else ("/".join(sorted(set(letters))) or "not found"))
        return Verdict(target in items, truth if target in items else "not found")
    rule = (f'the only single letter the answer names is "{truth}"' if len(target) == 1
            else f'answer spells "{truth}" letter by letter ("{truth}" is a word of the question)' if spelled_only
            else f'answer has "{truth}" as a word or spelled letter by letter (not counting "{word}" itself)')
    return Checker(rule, check)


def contains(expected: str, echo: str = "") -> Checker:
    """`expected` as a whole word (or number) of the answer: any case, thousands commas ignored.
    An answer that copies `echo` (the passage it was given) whole is an echo, not an answer."""
    def norm(s: str) -> str:
        s = unicodedata.normalize("NFC", s).casefold()
        return re.sub(r"(?<=\d),(?=\d{3})", "", s)

    target = norm(expected)
    pattern = re.compile(r"(?<![^\W_])" + re.escape(target) + r"(?![^\W_])") if target else None

    copied = norm(echo).strip()

    def check(answer: str) -> Verdict:
        if copied and copied in norm(answer):
            return Verdict(False, "repeats the passage")
        ok = pattern is not None and pattern.search(norm(answer)) is not None
        return Verdict(ok, expected if ok else "not found")
    rule = f'answer has "{expected}" as a word (any case, thousands commas ignored)'
    return Checker(rule + (", not by repeating the whole passage" if copied else ""), check)


# ---- cards ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str
    prompt: str
    checker: Checker
    max_tokens: int
    tool: bool = False  # the answer is a program: run it in the sandbox, check its output


@dataclass(frozen=True)
class Experiment:
    card: str
    question: str  # shown to the person
    truth: str  # the right answer
    truth_how: str  # how code computed it
    words: tuple[str, ...]  # key words whose tokens the card shows
    variants: tuple[Variant, ...]
    letter: str = ""  # the letter being counted (highlighted in the word)


@dataclass(frozen=True)
class InputField:
    key: str
    label: str
    default: str
    width: int = 14


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    blurb: str  # may name the typed values: "{letter}", "{word}"
    fields: tuple[InputField, ...]
    build: Callable[[dict[str, str]], Experiment] = field(compare=False)

    def blurb_for(self, values: dict[str, str] | None = None) -> str:
        """The blurb with the typed values in it (the defaults where a value is missing)."""
        merged = {f.key: f.default for f in self.fields}
        merged.update({k: v.strip() or "?" for k, v in (values or {}).items() if k in merged})
        return self.blurb.format_map(merged)

    def experiment(self, values: dict[str, str] | None = None) -> Experiment:
        merged = {f.key: f.default for f in self.fields}
        merged.update({k: v for k, v in (values or {}).items() if k in merged})
        return self.build(merged)


def _word(value: str, what: str = "word") -> str:
    w = unicodedata.normalize("NFC", value.strip())
    if not w:
        raise LabError(f"Type a {what}.")
    if len(w) > 60 or any(unicodedata.category(c)[0] == "C" for c in w):
        raise LabError(f"The {what} must be at most 60 printable characters.")
    return w


def _letter(value: str) -> str:
    v = unicodedata.normalize("NFC", value.strip())
    if len(v) != 1 or not v.isalpha():
        raise LabError("Type one letter.")
    return v


def _int(value: str, what: str, lo: int, hi: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise LabError(f"{what} must be a whole number.") from None
    if not lo <= n <= hi:
        raise LabError(f"{what} must be between {lo} and {hi}.")
    return n


def _decimal(value: str, what: str) -> Decimal:
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise LabError(f"{what} must be a decimal number like 9.11.") from None
    if not d.is_finite() or len(value.strip()) > 24:
        raise LabError(f"{what} must be a decimal number like 9.11.")
    return d


def count_in(word: str, letter: str) -> int:
    """How many times `letter` occurs in `word`, ignoring case, per character after NFC."""
    word, letter = unicodedata.normalize("NFC", word), unicodedata.normalize("NFC", letter)
    return sum(1 for c in word if c.lower() == letter.lower())


def _count_letter(v: dict[str, str]) -> Experiment:
    word, letter = _word(v["word"]), _letter(v["letter"])
    n = count_in(word, letter)
    prompt = f'How many times does the letter "{letter}" appear in the word "{word}"? Answer with a number.'
    return Experiment("count", prompt, str(n), f'sum(c.lower() == "{letter.lower()}" for c in "{word}") = {n}', (word,),
                      (Variant("answer", prompt, answer_number_is(Decimal(n), prompt), 40),), letter)


def _first_letters(v: dict[str, str]) -> Experiment:
    word = _word(v["word"])
    n = _int(v["n"], "N", 1, len(word))
    truth = word[:n]
    prompt = f'What are the first {n} letters of the word "{word}"? Answer with just those letters.'
    return Experiment("first", prompt, truth, f'"{word}"[:{n}] = "{truth}"', (word,),
                      (Variant("answer", prompt, letters_are(truth, word, prompt), 40),))


def _backwards(v: dict[str, str]) -> Experiment:
    word = _word(v["word"])
    truth = word[::-1]
    prompt = f'Spell the word "{word}" backwards. Answer with just the reversed word.'
    return Experiment("backwards", prompt, truth, f'"{word}"[::-1] = "{truth}"', (word,),
                      (Variant("answer", prompt, letters_are(truth, word, prompt), 48),))


def _dots(v: dict[str, str]) -> Experiment:
    n = _int(v["n"], "The number of dots", 1, 60)
    s = "." * n
    prompt = f'How many dots are in this string: "{s}"? Answer with a number.'
    return Experiment("dots", prompt, str(n), f'len("{s}") = {n}', (s,),
                      (Variant("answer", prompt, answer_number_is(Decimal(n), prompt), 40),))


def _compare(v: dict[str, str]) -> Experiment:
    a, b = _decimal(v["a"], "The first number"), _decimal(v["b"], "The second number")
    if a == b:
        raise LabError("The two numbers are equal: type two different numbers.")
    big = max(a, b)
    sa, sb = v["a"].strip(), v["b"].strip()
    prompt = f"Which number is bigger, {sa} or {sb}? Answer with just the bigger number."
    return Experiment("compare", prompt, str(big), f"max(Decimal('{sa}'), Decimal('{sb}')) = {big}", (sa, sb),
                      (Variant("answer", prompt, bigger_number_is(a, b, (sa, sb)), 40),))


def _arithmetic(v: dict[str, str]) -> Experiment:
    apples = _int(v["apples"], "Apples", 1, 99)
    oranges = _int(v["oranges"], "Oranges", 0, 99)
    price = _int(v["price"], "The orange price", 0, 999)
    total = _int(v["total"], "The total", 0, 99999)
    rest = total - oranges * price
    if rest < 0 or rest % apples:
        raise LabError("Those numbers give no whole-dollar apple price: pick a total so that "
                       "(total - oranges * price) divides evenly by apples.")
    each = rest // apples
    if each in (apples, oranges, price, total):
        raise LabError(f"The apple price ${each} is also a number in the question: an answer that only repeats "
                       "the question could not be told from a right one. Change the total (or the counts) so "
                       "the price is a new number.")
    problem = (f"Emily buys {apples} apples and {oranges} oranges. Each orange costs ${price}. "
               f"The total cost of all the fruit is ${total}. What is the cost of each apple?")
    first = problem + " Reply with only the number."
    working = problem + ' Work it out step by step first, then give the final answer on the last line as "Answer: <number>".'
    return Experiment("arithmetic", problem, str(each), f"({total} - {oranges} * {price}) / {apples} = {each}", (),
                      (Variant("answer first", first, answer_number_is(Decimal(each), problem, "first"), 24),
                       Variant("working first", working, answer_number_is(Decimal(each), problem, "last"), 200)))


def _tool(v: dict[str, str]) -> Experiment:
    word, letter = _word(v["word"]), _letter(v["letter"])
    n = count_in(word, letter)
    bare = f'How many times does the letter "{letter}" appear in the word "{word}"? Answer with a number.'
    tool = (f'Write a short Python program that prints how many times the letter "{letter}" appears in the word '
            f'"{word}". Reply with only the code in a ```python block.')
    return Experiment("tool", bare, str(n), f'sum(c.lower() == "{letter.lower()}" for c in "{word}") = {n}', (word,),
                      (Variant("in its head", bare, answer_number_is(Decimal(n), bare), 40),
                       Variant("with a Python tool", tool, first_number_is(Decimal(n), "the program's output"), 120,
                               tool=True)), letter)


MEMORY_PRESETS = {
    "everest": ("How tall is Mount Everest, in metres?", "8849",
                "Mount Everest is Earth's highest mountain above sea level. A survey by China and Nepal announced "
                "in 2020 measured its height as 8,849 metres (29,032 feet)."),
    "coriolanus": ("In Shakespeare's Coriolanus, what are the citizens resolved to do rather than famish?", "die",
                   "First Citizen: Before we proceed any further, hear me speak.\nAll: Speak, speak.\n"
                   "First Citizen: You are all resolved rather to die than to famish?\nAll: Resolved. resolved."),
    "kiribati": ("What is the capital of Kiribati?", "Tarawa",
                 "Kiribati is an island country in the central Pacific Ocean. Its capital is South Tarawa, on the "
                 "Tarawa atoll, where about half of the population lives."),
}


def _memory(v: dict[str, str]) -> Experiment:
    question = _word(v["question"], "question")
    expected = _word(v["expected"], "expected answer")
    passage = v["passage"].strip()
    if passage in MEMORY_PRESETS:
        passage = MEMORY_PRESETS[passage][2]
    if not passage:
        raise LabError("Type a passage (or a preset name: " + ", ".join(MEMORY_PRESETS) + ").")
    if not contains(expected)(passage).passed:
        raise LabError(f'The passage must contain the expected answer "{expected}".')
    if contains(expected)(question).passed:
        raise LabError(f'The question itself contains "{expected}": an answer that repeats the question would '
                       "pass. Ask so that the answer is not in the question.")
    bare = question + " Answer in one short sentence."
    given = f"Read this passage:\n\n{passage}\n\n{question} Answer in one short sentence."
    return Experiment("memory", question, expected, f'"{expected}" found in the passage', (),
                      (Variant("from memory", bare, contains(expected), 48),
                       Variant("passage in context", given, contains(expected, echo=passage), 48)))


_EVEREST = MEMORY_PRESETS["everest"]
CARDS: tuple[Card, ...] = (
    Card("count", "Count a letter", "Models see tokens, not letters: counting the {letter}'s in {word} is hard.",
         (InputField("word", "word", "strawberry", 18), InputField("letter", "letter", "r", 5)), _count_letter),
    Card("first", "First letters", "Spelling needs the letters inside a token, which the model never sees directly.",
         (InputField("word", "word", "strawberry", 18), InputField("n", "N", "3", 5)), _first_letters),
    Card("backwards", "Spell backwards", "Reversing a word needs every letter, one by one.",
         (InputField("word", "word", "strawberry", 18),), _backwards),
    Card("dots", "Count dots", "A run of dots becomes a few multi-dot tokens.",
         (InputField("n", "dots", "13", 5),), _dots),
    Card("compare", "9.9 vs 9.11", "Decimals split into tokens like versions or dates; the model often picks 9.11.",
         (InputField("a", "a", "9.9", 10), InputField("b", "b", "9.11", 10)), _compare),
    Card("arithmetic", "Tokens to think", "The answer first leaves one token of computation; working first spreads it "
         "over many tokens.",
         (InputField("apples", "apples", "3", 5), InputField("oranges", "oranges", "2", 5),
          InputField("price", "orange $", "2", 5), InputField("total", "total $", "19", 6)), _arithmetic),
    Card("tool", "Use a tool", "Counting in its head vs writing a program the lab runs in a sandbox.",
         (InputField("word", "word", "strawberry", 18), InputField("letter", "letter", "r", 5)), _tool),
    Card("memory", "Working memory", "Knowledge in the weights is a vague recollection; text in the context is "
         "working memory.",
         (InputField("question", "question", _EVEREST[0], 30), InputField("expected", "expected", _EVEREST[1], 8),
          InputField("passage", "passage (or preset)", "everest", 14)), _memory),
)
CARD_BY_KEY = {c.key: c for c in CARDS}


# ---- answers ------------------------------------------------------------------------------------

@dataclass
class Answer:
    """One sampled answer (and, for a tool variant, its program run)."""

    seed: int
    text: str = ""
    stop: str = ""  # "" while streaming; eos | length | stop text | cancelled | error
    seconds: float = 0.0
    program: str | None = None
    run: dict | None = None  # a SandboxResult as a dict
    cached: bool = False
    error: str = ""  # why sampling stopped, when stop == "error"

    @property
    def done(self) -> bool:
        return bool(self.stop)


def score(variant: Variant, answer: Answer) -> Verdict:
    """The variant's checker applied to what the answer shows (a tool answer: its program's output).
    An answer that ended in an error is not scored as an answer."""
    if answer.stop == "error":
        return Verdict(False, "error")
    if variant.tool:
        if answer.program is None:
            return Verdict(False, "no program")
        if answer.run is None:
            return Verdict(False, "not run")
        return variant.checker(answer.run.get("stdout", ""))
    return variant.checker(answer.text)


def pass_rate(variant: Variant, answers: Sequence[Answer]) -> tuple[int, int]:
    """(passed, scored) over the finished answers."""
    done = [a for a in answers if a.done and a.stop not in ("cancelled", "error")]
    return sum(score(variant, a).passed for a in done), len(done)


def make_prompt(backend, variant: Variant, role: str) -> Request:
    """The exact ids the model reads: the chat template for a chat model, the few-shot
    conversation (stopping at the next "Human:") for a base model."""
    if role == "chat" and backend.info.has_chat_template:
        return chat_request(backend, variant.prompt, None)
    return base_request(backend, variant.prompt, True)


def word_tokens(backend, prompt: Request, word: str) -> list[tuple[int, bytes, bool]]:
    """The tokens the model reads where `word` stands in the prompt (its last occurrence):
    (id, piece, whole) where `whole` is False for a piece that reaches outside the word."""
    data = prompt.text.encode("utf-8")
    target = word.encode("utf-8")
    start = data.rfind(target)
    if start < 0:
        return []
    end = start + len(target)
    out = []
    pieces = [(tid, backend.token_bytes(tid)) for tid in prompt.ids]
    # Special tokens (BOS) are not in the text: align from the end, where the text ends.
    total = sum(len(p) for _, p in pieces)
    pos = len(data) - total
    for tid, piece in pieces:
        a, b = pos, pos + len(piece)
        pos = b
        if b > start and a < end:
            out.append((tid, piece, a >= start and b <= end))
    return out


class AnswerCache(JsonCache):
    """Finished answers on disk, one JSON file per (model, prompt, settings, seed)."""

    @staticmethod
    def key(model: str, prompt: Request, settings: SamplingSettings, max_tokens: int, seed: int, tool: bool) -> str:
        blob = json.dumps([model, list(prompt.ids), prompt.stop_text, settings.temperature, settings.top_k,
                           settings.top_p, max_tokens, seed, tool, 1])
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Answer | None:
        data = super().get(key)
        try:
            return Answer(**{**data, "cached": True})
        except TypeError:  # missing, damaged or from another version: sample again
            return None

    def put(self, key: str, answer: Answer) -> None:
        super().put(key, {**asdict(answer), "cached": False})


def run_answers(backend, variant: Variant, prompt: Request, settings: SamplingSettings, seeds: Sequence[int],
                emit: Callable[[int, Answer], None], cancel: threading.Event, cache: AnswerCache | None = None,
                use_cache: bool = True, every: float = 0.05) -> None:
    """Sample one answer per seed, calling `emit(index, answer)` as text arrives (about every
    `every` seconds) and when it is done. Blocks: call from a worker thread."""
    model = model_identity(backend)
    for index, seed in enumerate(seeds):
        key = AnswerCache.key(model, prompt, settings, variant.max_tokens, seed, variant.tool)
        hit = cache.get(key) if (cache is not None and use_cache and not cancel.is_set()) else None
        if hit is not None:
            emit(index, hit)
            continue
        answer = Answer(seed)

        def take(update: SampleUpdate, answer=answer, index=index) -> None:
            answer.text += update.text
            if update.error:
                answer.error = update.error  # the tokens that arrived stay; the error is said apart
            answer.stop, answer.seconds = update.stop, update.seconds
            if not update.done:
                emit(index, dc_replace(answer))

        stream_seeds(backend, prompt.ids, settings, [seed], variant.max_tokens, cancel, take, top_n=1,
                     stop_text=prompt.stop_text, every=every)
        if answer.stop == "stop text":
            answer.text = answer.text.split(prompt.stop_text)[0]
        answer.text = answer.text.strip()
        if variant.tool and answer.stop not in ("cancelled", "error"):
            answer.program = extract_program(answer.text)
            if answer.program is not None:
                emit(index, dc_replace(answer, stop=""))  # shown as "running the program"
                from lab.sandbox import run_python

                answer.run = asdict(run_python(answer.program, cancel=cancel))
        emit(index, dc_replace(answer))
        if cache is not None and answer.stop not in ("cancelled", "error"):
            cache.put(key, answer)
