"""BPE replay and training against code-computed truth (a naive trainer, tiktoken's encoder)."""

from collections import Counter

import pytest

from lab.bpe import (PRE_TOKENIZERS, encode_with_merges, replay, replay_text, split_chunks, split_in_turn,
                     train_bpe)
from lab.errors import CancelledError, LabError
from lab.paths import default_corpus
from lab.tokenizers import ENCODINGS, tiktoken_encoding


def naive_train(data: bytes, n_merges: int):
    """The textbook loop (minbpe's BasicTokenizer), ties broken by first occurrence."""
    ids = list(data)
    merges = []
    for k in range(n_merges):
        pairs = list(zip(ids, ids[1:]))
        if not pairs:
            break
        counts = Counter(pairs)
        best = max(counts.values())
        if best < 2 and merges:
            break
        pair = next(p for p in pairs if counts[p] == best)
        new = 256 + k
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
        merges.append(pair)
    return merges, ids


def test_trainer_equals_naive_reference():
    data = default_corpus().read_bytes()[:20000]
    merges, pieces = train_bpe(data, 256 + 60)
    ref, ref_ids = naive_train(data, 60)
    assert [m.pair for m in merges] == ref
    assert encode_with_merges(data, merges) == ref_ids
    assert merges[0].describe(pieces).startswith(f"{ref[0][0]} {ref[0][1]} → 256")


def test_overlapping_pairs_merge_left_to_right():
    merges, _ = train_bpe(b"aaaaa", 257)
    assert merges[0].pair == (97, 97) and merges[0].count == 4
    assert encode_with_merges(b"aaaaa", merges) == [256, 256, 97]


def test_regex_split_keeps_merges_inside_chunks():
    text = "the cat at the gate. " * 20
    merges, pieces = train_bpe(text.encode(), 300, split_pat=ENCODINGS["cl100k_base"].pat_str)
    chunks = split_chunks(text, ENCODINGS["cl100k_base"].pat_str)
    assert all(any(pieces[m.new_id] in c.encode() for c in chunks) for m in merges)
    assert (116, 32) not in [m.pair for m in merges]  # 't' + ' ' crosses a chunk boundary


def test_bad_requests_and_cancel():
    import threading

    with pytest.raises(LabError):
        train_bpe(b"abc", 200)
    with pytest.raises(LabError):
        train_bpe(b"", 300)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        train_bpe(b"abcabc", 300, cancel=cancel)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_replay_reaches_encoder_tokens(name):
    enc = tiktoken_encoding(name)
    text = "Tokenization: strawberry, 9.11 > 9.9? 你好 👩‍👩‍👧 antidisestablishmentarianism"
    ids = []
    for chunk in split_chunks(text, enc.pat_str):
        steps = replay(chunk.encode(), lambda a, b: enc.ranks.get(a + b))
        assert steps[0].parts == tuple(bytes([b]) for b in chunk.encode())
        assert all(s.rank >= 0 for s in steps[1:])
        ranks = [s.rank for s in steps[1:]]
        assert all(r is not None for r in ranks)
        ids += [enc.ranks[p] for p in steps[-1].parts]
    assert ids == enc.encode(text)


def test_replay_hand_example():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4}
    steps = replay(b"abc", lambda a, b: ranks.get(a + b))
    assert [s.parts for s in steps] == [(b"a", b"b", b"c"), (b"ab", b"c"), (b"abc",)]
    assert [s.rank for s in steps] == [-1, 3, 4]


def test_split_in_turn_hand_example():
    assert split_in_turn("ab12 c  d", PRE_TOKENIZERS["smollm"]) == ["ab", "1", "2", " c", " ", " d"]


TRICKY = "I love strawberry! 9.11 > 9.9? Hello   world\n\n  def f(x):\treturn x*2 — café 你好 👍🏽 it's"


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_selected_encodings_rules_replay_to_its_tokens(name):
    enc = tiktoken_encoding(name)
    rules = enc.merge_rules()
    ids = [rules.token_id(p) for steps in replay_text(TRICKY, rules) for p in steps[-1].parts]
    assert ids == enc.encode(TRICKY)


def test_smollm2_merge_list_replays_to_llama_cpps_tokens(smol):
    from lab.tokenizers import model_encoding

    rules = model_encoding(smol).merge_rules()
    for text in (TRICKY, "strawberry", "  leading spaces and 12345 digits\r\n"):
        steps = replay_text(text, rules)
        assert all(s.rank >= 0 for chunk in steps for s in chunk[1:])
        ids = [rules.token_id(p) for chunk in steps for p in chunk[-1].parts]
        assert ids == smol.tokenize(text, add_special=False)


def test_gemma_is_refused_with_the_reason(gemma):
    from lab.tokenizers import model_encoding

    with pytest.raises(LabError, match="SentencePiece-style.*cannot be replayed merge by merge"):
        model_encoding(gemma).merge_rules()
