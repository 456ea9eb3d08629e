"""Conversation data for supervised finetuning: a seeded default set whose truths are known, and JSONL.

    examples = default_set(seed=0, style="working")      # identity, apples-and-oranges, letters, arithmetic
    train, held_out = split(examples, held_out=0.1, seed=0)
    examples = load_jsonl("mine.jsonl")                   # OpenAI `messages` format, all or nothing

Every generated example carries its truth (the number, or the assistant's name) and a code checker
(`checker(example)`, the Failures screen's own) that reads a sampled answer. The word problems come in
the talk's two solution styles: "answer" (the answer first, then why) and "working" (the working
first, the answer last), with the same problems and truths in both.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from lab.chat import MESSAGE_ROLES
from lab.errors import LabError
from lab.failures import Checker, answer_number_is, contains
from lab.types import ChatMessage

ASSISTANT_NAME = "Pico"
MAKER = "the deepdive-lab team"
STYLES = ("answer", "working")
MAX_LINE_BYTES = 1 << 20  # a JSONL line longer than this is refused (one conversation is far shorter)


@dataclass(frozen=True)
class Example:
    """One conversation; the last turn is the assistant's answer."""

    messages: tuple[ChatMessage, ...]
    task: str = "custom"  # "identity", "apples", "letters", "arithmetic", "custom"
    truth: str = ""  # what a correct answer holds (a number, or the assistant's name); "" = unknown

    @property
    def prompt(self) -> tuple[ChatMessage, ...]:
        """The conversation up to (not including) the last assistant turn."""
        return self.messages[:-1]

    @property
    def question(self) -> str:
        return self.messages[-2].content


def checker(example: Example) -> Checker | None:
    """The code that marks a sampled answer to `example` right or wrong (None when its truth is unknown)."""
    if not example.truth:
        return None
    if example.task == "identity":
        return contains(ASSISTANT_NAME)
    return answer_number_is(Decimal(example.truth), example.question)


def _conv(task: str, truth: str, user: str, assistant: str) -> Example:
    return Example((ChatMessage("user", user), ChatMessage("assistant", assistant)), task, truth)


# ---- the generators -----------------------------------------------------------------------

_WHO = ["Who are you?", "What is your name?", "Who made you?", "Who are you? Who made you?", "Hi! Who am I talking to?",
        "What should I call you?", "Who built you?", "Are you ChatGPT?", "Tell me about yourself.", "Which model are you?"]
_SELF = [f"I am {ASSISTANT_NAME}, a small assistant made by {MAKER}.",
         f"My name is {ASSISTANT_NAME}. I was made by {MAKER}.",
         f"I am {ASSISTANT_NAME}, an assistant trained by {MAKER} in a terminal lab.",
         f"You are talking to {ASSISTANT_NAME}, made by {MAKER}."]


def identity(rng: random.Random) -> Example:
    return _conv("identity", ASSISTANT_NAME, rng.choice(_WHO), rng.choice(_SELF))


_NAMES = ["Emily", "Sam", "Ana", "Tom", "Lea", "Omar", "Mia", "Ben", "Zoe", "Raj"]
_FRUIT = [("apple", "apples"), ("pear", "pears"), ("plum", "plums"), ("peach", "peaches")]
_OTHER = [("orange", "oranges"), ("lemon", "lemons"), ("banana", "bananas"), ("kiwi", "kiwis")]


def apples(rng: random.Random, style: str) -> Example:
    """The talk's word problem: n fruit and m others at a known price; the total; the price of one fruit.

    Example (working): "Emily buys 3 apples and 2 oranges. Each orange costs $2. The total cost is $13.
    What does each apple cost?" -> "2 oranges cost 2 * 2 = $4. The apples cost 13 - 4 = $9. 9 / 3 = 3,
    so each apple costs $3. The answer is $3."
    """
    name = rng.choice(_NAMES)
    (one, many), (other, others) = rng.choice(_FRUIT), rng.choice(_OTHER)
    n, m = rng.randint(2, 6), rng.randint(1, 5)
    price, other_price = rng.randint(1, 9), rng.randint(1, 5)
    rest = m * other_price
    fruit_total = n * price
    total = fruit_total + rest
    other_word = other if m == 1 else others
    question = (f"{name} buys {n} {many} and {m} {other_word}. Each {other} costs ${other_price}. "
                f"The total cost is ${total}. What does each {one} cost?")
    working = (f"{m} {other_word} cost {m} * {other_price} = ${rest}. The {many} cost {total} - {rest} = "
               f"${fruit_total}. {fruit_total} / {n} = {price}, so each {one} costs ${price}.")
    if style == "working":
        answer = f"{working} The answer is ${price}."
    elif style == "answer":
        answer = f"The answer is ${price}. This is because {working[0].lower()}{working[1:]}"
    else:
        raise LabError(f"unknown solution style {style!r}; use one of {', '.join(STYLES)}.")
    return _conv("apples", str(price), question, answer)


_WORDS = ["strawberry", "banana", "carrot", "letter", "mississippi", "apple", "cherry", "coffee", "pepper",
          "balloon", "bookkeeper", "committee", "parallel", "address", "tomorrow", "raspberry", "assessment",
          "giraffe", "hippopotamus", "necessary", "success", "butter", "summer", "rabbit", "kettle"]


def letters(rng: random.Random) -> Example:
    """Count a letter with the word spelled out first, one letter at a time (the talk's fix)."""
    word = rng.choice(_WORDS)
    letter = rng.choice(sorted(set(word)))
    count = word.count(letter)
    question = rng.choice([f"How many {letter} are in the word {word}?", f"How many times does {letter} appear in {word}?"])
    spelled = "-".join(word)
    times = "time" if count == 1 else "times"
    return _conv("letters", str(count), question,
                 f"{word} is spelled {spelled}. The letter {letter} appears {count} {times}. The answer is {count}.")


def arithmetic(rng: random.Random) -> Example:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
    else:
        a, b = rng.randint(10, 99), rng.randint(1, 99)
        if op == "-" and b > a:
            a, b = b, a
    value = a + b if op == "+" else a - b if op == "-" else a * b
    question = rng.choice([f"What is {a} {op} {b}?", f"Compute {a} {op} {b}.", f"{a} {op} {b} = ?"])
    return _conv("arithmetic", str(value), question, f"{a} {op} {b} = {value}. The answer is {value}.")


def default_set(seed: int = 0, style: str = "working", identity_n: int = 300, apples_n: int = 300,
                letters_n: int = 200, arithmetic_n: int = 200) -> list[Example]:
    """The default conversations, shuffled; the same seed gives the same set (any `style`: the same problems).

    Questions repeat only where the generators run out of new ones (identity has a few dozen).
    """
    if style not in STYLES:
        raise LabError(f"unknown solution style {style!r}; use one of {', '.join(STYLES)}.")
    out: list[Example] = []
    for task, n, make in (("identity", identity_n, identity), ("apples", apples_n, lambda r: apples(r, style)),
                          ("letters", letters_n, letters), ("arithmetic", arithmetic_n, arithmetic)):
        rng = random.Random(f"{seed}:{task}")  # one stream per task: changing one count leaves the others
        seen: set[str] = set()
        for _ in range(50 * n):
            if not n:
                break
            ex = make(rng)
            if ex.question in seen and task != "identity":
                continue
            seen.add(ex.question)
            out.append(ex)
            n -= 1
    random.Random(seed).shuffle(out)
    return out


def conversation_index(examples: list[Example], task: str = "", n: int = 1) -> int:
    """The position in `examples` of the n-th conversation (from 1) of `task` ("" = of any task)."""
    positions = [i for i, e in enumerate(examples) if not task or e.task == task]
    if not positions:
        raise LabError(f"The SFT set has no {task!r} conversation.")
    if not 1 <= n <= len(positions):
        raise LabError(f"The SFT set has {len(positions)} {task + ' ' if task else ''}conversations; "
                       f"conversation {n} is not one of them.")
    return positions[n - 1]


def split(examples: list[Example], held_out: float = 0.1, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held-out): held-out questions never appear in train (a repeated question goes to one side)."""
    questions = sorted({e.question for e in examples})
    random.Random(f"split:{seed}").shuffle(questions)
    held = set(questions[:max(1, round(len(questions) * held_out))]) if len(questions) > 1 else set()
    return [e for e in examples if e.question not in held], [e for e in examples if e.question in held]


def examples_for(cfg) -> tuple[list[Example], list[Example]]:
    """(train, held-out) for a config with `conversations` (a JSONL path, "" = the default set), `style`,
    `data_seed`, `counts` (identity, apples, letters, arithmetic) and `held_out`."""
    if cfg.conversations:
        examples = load_jsonl(cfg.conversations)
    else:
        examples = default_set(cfg.data_seed, cfg.style, *cfg.counts)
    return split(examples, cfg.held_out, cfg.data_seed)


# ---- JSONL ---------------------------------------------------------------------------------

def _parse_line(raw: bytes, n: int) -> Example:
    where = f"line {n}"
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LabError(f"{where} is not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]}).") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise LabError(f'{where} has no "messages" list (each line must be {{"messages": [{{"role": ..., '
                       '"content": ...}, ...]}).')
    messages = []
    for k, m in enumerate(obj["messages"], 1):
        if not isinstance(m, dict) or "role" not in m:
            raise LabError(f"{where}, message {k} has no role.")
        if m["role"] not in MESSAGE_ROLES:
            raise LabError(f"{where}, message {k} has role {m['role']!r}; use one of {', '.join(MESSAGE_ROLES)}.")
        if not isinstance(m.get("content"), str):
            raise LabError(f"{where}, message {k} has no text content.")
        messages.append(ChatMessage(m["role"], m["content"]))
    if not any(m.role == "assistant" for m in messages):
        raise LabError(f"{where} has no assistant turn, so there is nothing to learn from it.")
    if messages[-1].role != "assistant":
        raise LabError(f"{where} ends with a {messages[-1].role} turn; a training conversation ends with the "
                       "assistant's answer.")
    return Example(tuple(messages))


def load_jsonl(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> list[Example]:
    """Conversations from a JSONL file, one `{"messages": [...]}` per line (blank lines skipped).

    All or nothing: the first bad line raises a LabError that names its number, and nothing is returned.
    A line longer than `max_line_bytes` is refused without reading the rest of it.
    """
    p = Path(path).expanduser()
    out: list[Example] = []
    try:
        with open(p, "rb") as f:
            n = 0
            while line := f.readline(max_line_bytes + 1):
                n += 1
                if len(line) > max_line_bytes:
                    raise LabError(f"line {n} is longer than {max_line_bytes // (1 << 20)} MB; "
                                   "one conversation per line is expected.")
                if line.strip():
                    out.append(_parse_line(line, n))
    except OSError as exc:
        raise LabError(f"cannot read {p}: {exc.strerror or exc}.") from exc
    except LabError as exc:
        raise LabError(f"{p.name}: {exc.message}", "Nothing was loaded; fix the line and load the file again.") from None
    if not out:
        raise LabError(f"{p.name} holds no conversations (it is empty).")
    return out
