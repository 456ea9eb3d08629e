"""Byte-pair encoding you can watch: replay an encoder's merges, and train a small BPE.

Replay follows the byte-level BPE algorithm of tiktoken and of llama.cpp's GPT-2-style
tokenizer: the text is split into chunks (a regex, or several applied in turn); a chunk
starts as its bytes; at each step the adjacent pair with the lowest merge rank is merged
(the leftmost on a tie); it stops when no adjacent pair can merge. The final parts are the
encoder's tokens for that chunk. An encoding's `MergeRules` say how it splits and ranks:

    tiktoken: a pair's rank is the rank of its concatenation in the vocabulary;
    a merge list (GPT-2, SmolLM2): a pair's rank is its line in `tokenizer.ggml.merges`.

    replay(b"hello", rules.pair_rank) -> [Step(parts=(b"h", b"e", ...)), Step(merged at i, rank), ...]

The trainer is the "basic" BPE of the talk (minbpe): count adjacent pairs of ids, mint a new
id for the most frequent, replace, repeat. Ids 0-255 are the bytes, so the first merge on
English text is often (116, 32) = ('t', ' ') -> 256 when trained without a regex split.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.errors import CancelledError, LabError

PairRank = Callable[[bytes, bytes], "int | None"]


@dataclass(frozen=True)
class Step:
    """One state of a replay: the parts so far, and how they were reached."""

    parts: tuple[bytes, ...]
    merged_at: int = -1  # index in `parts` of the token the last merge produced (-1: the initial bytes)
    pair: tuple[bytes, bytes] | None = None  # the two parts that merged
    rank: int = -1  # the merge's rank (tiktoken: the merged token's rank, which is its id)


def replay(chunk: bytes, pair_rank: PairRank) -> list[Step]:
    """Every state from the raw bytes of `chunk` to its final tokens.

    `pair_rank(a, b)`: the rank of merging parts a and b (lower merges first), None if never.
    Example: with tiktoken ranks {b"ab": 3, b"abc": 4} (and the bytes),
    b"abc" -> [a b c] -> [ab c] -> [abc].
    """
    parts = [bytes([b]) for b in chunk]
    steps = [Step(tuple(parts))]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            r = pair_rank(parts[i], parts[i + 1])
            if r is not None and (best_rank is None or r < best_rank):
                best_rank, best_i = r, i
        if best_rank is None:
            break
        pair = (parts[best_i], parts[best_i + 1])
        parts[best_i:best_i + 2] = [pair[0] + pair[1]]
        steps.append(Step(tuple(parts), best_i, pair, best_rank))
    return steps


def split_chunks(text: str, pat_str: str) -> list[str]:
    """Split text the way an encoding's regex does before BPE runs."""
    import regex

    return [m.group(0) for m in regex.finditer(pat_str, text)]


def split_in_turn(text: str, patterns: Sequence[str]) -> list[str]:
    """llama.cpp's pre-tokenization: each regex in turn splits every piece into its matches
    and the text between them. Example: [r"\\p{N}", GPT-2's] on "ab12 c" -> ["ab", "1", "2", " c"]."""
    import regex

    pieces = [text] if text else []
    for pat in patterns:
        compiled = regex.compile(pat)
        out: list[str] = []
        for piece in pieces:
            pos = 0
            for m in compiled.finditer(piece):
                if m.start() > pos:
                    out.append(piece[pos:m.start()])
                if m.end() > m.start():
                    out.append(m.group(0))
                pos = m.end()
            if pos < len(piece):
                out.append(piece[pos:])
        pieces = out
    return pieces


@dataclass(frozen=True)
class MergeRules:
    """What replaying an encoding needs: how it splits text into chunks, which adjacent pair
    merges first, and the id of each final part (None: not a token of the vocabulary)."""

    name: str
    split: Callable[[str], list[str]]
    pair_rank: PairRank
    token_id: Callable[[bytes], "int | None"]
    rank_name: str  # what a rank is, for the screen: "rank" or "merge #"


def tiktoken_rules(name: str, ranks: dict[bytes, int], pat_str: str) -> MergeRules:
    """tiktoken encodings: the rank of a pair is the rank (= id) of its concatenation."""
    return MergeRules(name, lambda text: split_chunks(text, pat_str), lambda a, b: ranks.get(a + b), ranks.get,
                      "rank")


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (a space is "Ġ", 0x20 -> U+0120),
    in which byte-level BPE vocabularies and merge lists are written."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    out = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + n)
            n += 1
    return out


def merge_list_rules(name: str, tokens: Sequence[str], merges: Sequence[str], patterns: Sequence[str]) -> MergeRules:
    """A byte-level BPE given as a vocabulary and a merge list ("Ġ t" per line, rank = line),
    with its pre-tokenizer as regexes applied in turn (see `split_in_turn`)."""
    table = byte_to_unicode()

    def written(piece: bytes) -> str:
        return "".join(table[b] for b in piece)

    merge_rank: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(merges):
        a, sep, b = line.partition(" ")
        if sep and (a, b) not in merge_rank:
            merge_rank[(a, b)] = rank
    vocab = {tok: i for i, tok in enumerate(tokens)}
    pats = tuple(patterns)
    return MergeRules(name, lambda text: split_in_turn(text, pats),
                      lambda a, b: merge_rank.get((written(a), written(b))),
                      lambda piece: vocab.get(written(piece)), "merge #")


# Pre-tokenizers of byte-level BPE vocabularies, by the GGUF's `tokenizer.ggml.pre`, as
# llama.cpp (llama-vocab.cpp) defines them. Others are refused rather than guessed.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""
PRE_TOKENIZERS: dict[str, tuple[str, ...]] = {
    **{pre: (GPT2_PATTERN,) for pre in ("gpt-2", "gpt2", "mpt", "olmo", "jais")},
    **{pre: (r"\p{N}", GPT2_PATTERN) for pre in ("smollm", "starcoder", "refact", "command-r", "codeshell")},
}


def replay_text(text: str, rules: MergeRules) -> list[list[Step]]:
    """The replay of every chunk of `text` (surrogates seen as U+FFFD, as the encoders see them)."""
    from lab.tokentext import encodable

    return [replay(chunk.encode("utf-8"), rules.pair_rank) for chunk in rules.split(encodable(text))]


# ---- training -------------------------------------------------------------------------

@dataclass(frozen=True)
class Merge:
    pair: tuple[int, int]
    new_id: int
    count: int  # how often the pair occurred when it was chosen
    token: bytes  # the bytes the new id stands for

    def describe(self, pieces: dict[int, bytes]) -> str:
        """e.g. "116 32 → 256 ('t', ' ')"."""
        a, b = (pieces[i].decode("utf-8", "replace") for i in self.pair)
        return f"{self.pair[0]} {self.pair[1]} → {self.new_id} ({a!r}, {b!r})"


@dataclass(frozen=True)
class TrainProgress:
    done: int  # merges done
    total: int  # merges asked for
    last: Merge | None


def _merge_positions(match):
    """Left-to-right, non-overlapping positions among consecutive matches.

    Example: matches at [0, 1, 2, 5] (as in "aaa" with pair (a, a)) -> [0, 2, 5].
    """
    import numpy as np

    pos = np.flatnonzero(match)
    if pos.size == 0:
        return pos
    run_start = np.empty(pos.size, dtype=bool)
    run_start[0] = True
    run_start[1:] = np.diff(pos) != 1
    run_id = np.cumsum(run_start) - 1
    first = pos[run_start][run_id]
    return pos[(pos - first) % 2 == 0]


def train_bpe(data: bytes, vocab_size: int, split_pat: str | None = None,
              progress: Callable[[TrainProgress], None] | None = None,
              cancel: threading.Event | None = None, return_ids: bool = False):
    """Train a byte-level BPE with `vocab_size - 256` merges on `data`.

    `split_pat` (a tiktoken-style regex) keeps merges inside chunks, as GPT tokenizers do;
    None trains on the raw byte stream (the talk's first example). Ties go to the pair seen
    first. Returns the merges in order and the bytes of every id (and, with `return_ids`,
    the training data encoded with them).
    """
    import numpy as np

    if vocab_size < 257:
        raise LabError("the vocabulary must be larger than 256 (the bytes) to learn any merge.")
    if not data:
        raise LabError("there is no text to train on.")
    ids = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    # starts[i]: element i begins a chunk, so no pair (i-1, i) may merge.
    starts = np.zeros(ids.size, dtype=bool)
    if split_pat is not None:
        text = data.decode("utf-8", errors="surrogateescape")
        offset = 0
        for chunk in split_chunks(text, split_pat):
            starts[offset] = True
            offset += len(chunk.encode("utf-8", errors="surrogateescape"))
    else:
        starts[0] = True
    pieces = {i: bytes([i]) for i in range(256)}
    merges: list[Merge] = []
    n_merges = vocab_size - 256
    for k in range(n_merges):
        if cancel is not None and cancel.is_set():
            raise CancelledError("training was cancelled.")
        if ids.size < 2:
            break
        valid = ~starts[1:]
        codes = (ids[:-1] << 32 | ids[1:])[valid]
        if codes.size == 0:
            break
        uniq, first_idx, counts = np.unique(codes, return_index=True, return_counts=True)
        best = int(counts.max())
        if best < 2 and merges:
            break
        tied = np.flatnonzero(counts == best)
        choice = tied[np.argmin(first_idx[tied])]  # the pair seen first among the most frequent
        code = int(uniq[choice])
        a, b = code >> 32, code & 0xFFFFFFFF
        new_id = 256 + k
        match = (ids[:-1] == a) & (ids[1:] == b) & valid
        pos = _merge_positions(match)
        ids[pos] = new_id
        keep = np.ones(ids.size, dtype=bool)
        keep[pos + 1] = False
        ids, starts = ids[keep], starts[keep]
        pieces[new_id] = pieces[a] + pieces[b]
        merge = Merge((a, b), new_id, best, pieces[new_id])
        merges.append(merge)
        if progress is not None:
            progress(TrainProgress(k + 1, n_merges, merge))
    if return_ids:
        return merges, pieces, ids.tolist()
    return merges, pieces


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Every occurrence of `pair` in `ids`, left to right, replaced by `new_id`.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def encode_with_merges(data: bytes, merges: list[Merge]) -> list[int]:
    """Apply trained merges in order (the reference encoder for a trained BPE)."""
    ids = list(data)
    for m in merges:
        ids = merge(ids, m.pair, m.new_id)
    return ids
