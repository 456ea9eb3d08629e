"""BPE replay and training against code-computed truth (a naive trainer, tiktoken's encoder)."""

from collections import Counter

import pytest

from lab.bpe import encode_with_merges, replay, split_chunks, train_bpe
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
        steps = replay(chunk.encode(), enc.ranks)
        assert steps[0].parts == tuple(bytes([b]) for b in chunk.encode())
        assert all(s.rank >= 0 for s in steps[1:])
        ranks = [s.rank for s in steps[1:]]
        assert all(r is not None for r in ranks)
        ids += [enc.ranks[p] for p in steps[-1].parts]
    assert ids == enc.encode(text)


def test_replay_hand_example():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4}
    steps = replay(b"abc", ranks)
    assert [s.parts for s in steps] == [(b"a", b"b", b"c"), (b"ab", b"c"), (b"abc",)]
    assert [s.rank for s in steps] == [-1, 3, 4]
