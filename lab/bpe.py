"""Byte-pair encoding you can watch: replay an encoder's merges, and train a small BPE.

Replay follows tiktoken's algorithm: a chunk starts as its bytes; at each step the adjacent
pair whose concatenation has the lowest rank in the vocabulary is merged; it stops when no
adjacent pair is in the vocabulary. The result equals the encoder's tokens for that chunk.

    replay(b"hello", ranks) -> [Step(parts=[b"h", b"e", ...]), Step(merged at i, rank), ...]

The trainer is the "basic" BPE of the talk (minbpe): count adjacent pairs of ids, mint a new
id for the most frequent, replace, repeat. Ids 0-255 are the bytes, so the first merge on
English text is often (116, 32) = ('t', ' ') -> 256 when trained without a regex split.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from lab.errors import CancelledError, LabError


@dataclass(frozen=True)
class Step:
    """One state of a replay: the parts so far, and how they were reached."""

    parts: tuple[bytes, ...]
    merged_at: int = -1  # index in `parts` of the token the last merge produced (-1: the initial bytes)
    pair: tuple[bytes, bytes] | None = None  # the two parts that merged
    rank: int = -1  # the merged token's rank (= its id in tiktoken encodings)


def replay(chunk: bytes, ranks: dict[bytes, int]) -> list[Step]:
    """Every state from the raw bytes of `chunk` to its final tokens.

    Example: with ranks {b"ab": 0, b"abc": 1} (bytes too), b"abc" -> [a b c] -> [ab c] -> [abc].
    """
    parts = [bytes([b]) for b in chunk]
    steps = [Step(tuple(parts))]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
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


def encode_with_merges(data: bytes, merges: list[Merge]) -> list[int]:
    """Apply trained merges in order (the reference encoder for a trained BPE)."""
    ids = list(data)
    for m in merges:
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == m.pair:
                out.append(m.new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids
