"""A backend that replays what a real model produced, recorded once into a JSON file.

Model numerics differ between CPUs, so a picture of a screen that shows a real model's
numbers cannot be compared across machines. `ReplayBackend` answers the primitives
(`tokenize`, `token_bytes`, `_last_logits`, `_position_logits`, the chat template, the
special and end-of-generation ids) from a recording made by `scripts/record_replay.py`
with a real model, so everything built on them (distributions, seeded streams, the chat
rendering) runs the engine's own code on the real model's numbers, the same everywhere.

Logits are kept as the recorded state's top `k` values plus one floor value for every other
token, chosen so the top tokens keep their real probabilities (the floor carries the rest of
the probability mass). The recording run itself hands the app these same truncated logits,
so a replay follows the recording exactly. A state, text or token that was not recorded is
a `LabError` saying so, never an invented value.

File layout (JSON): info (ModelInfo fields), capabilities, eos_ids, chat_template,
special_tokens, special (id -> bool), pieces (id -> hex bytes), tokenize ([text, add_special,
parse_special, ids]), states ([prompt_len, ids, top_ids, top_logits, floor]), positions
([ids, [[top_ids, top_logits, floor], ...]]).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lab.backends.base import Backend
from lab.errors import LabError
from lab.types import Capabilities, ModelInfo


def truncate(logits: np.ndarray, k: int) -> tuple[list[int], list[float], float]:
    """(top ids, their logits, floor): the floor spreads the real remaining probability mass
    over every other token, so the top-k probabilities are unchanged.

    Example: logits [2, 1, 0, 0] with k=1 -> ([0], [2.0], log((e+2)/3)) ~ 0.551."""
    x = np.asarray(logits, dtype=np.float64)
    top = np.argsort(-x, kind="stable")[:k]
    rest = np.delete(x, top)
    m = rest.max()
    floor = float(m + np.log(np.exp(rest - m).sum() / rest.size)) if rest.size else float(x.min())
    return [int(i) for i in top], [float(np.float32(x[i])) for i in top], float(np.float32(floor))


def expand(vocab_size: int, top_ids: Sequence[int], top_logits: Sequence[float], floor: float) -> np.ndarray:
    """The full logits vector of a truncated state."""
    out = np.full(vocab_size, floor, dtype=np.float32)
    out[list(top_ids)] = np.asarray(top_logits, dtype=np.float32)
    return out


class ReplayBackend(Backend):
    """A recorded model: see the module docstring."""

    def __init__(self, data: dict, source: str = "") -> None:
        super().__init__()
        self.info = ModelInfo(**data["info"])
        self.capabilities = Capabilities(**data["capabilities"])
        self._source = source
        self._eos = frozenset(data["eos_ids"])
        self._template = data.get("chat_template")
        self._specials = dict(data.get("special_tokens", {}))
        self._special = {int(k): bool(v) for k, v in data.get("special", {}).items()}
        self._pieces = {int(k): bytes.fromhex(v) for k, v in data["pieces"].items()}
        self._tokenized = {(t, bool(a), bool(p)): list(ids) for t, a, p, ids in data["tokenize"]}
        self._states = {(int(n), tuple(ids)): (top, vals, floor) for n, ids, top, vals, floor in data["states"]}
        self._positions = {tuple(ids): rows for ids, rows in data.get("positions", [])}

    @classmethod
    def load(cls, path: str | Path) -> "ReplayBackend":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data, str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LabError(f"{path} is not a replay recording ({exc.__class__.__name__}: {exc}).") from exc

    def recorded(self) -> tuple[list[tuple[str, bool, bool]], list[int], list[tuple[int, tuple[int, ...]]]]:
        """What the recording holds: (tokenize arguments, token ids with pieces, (prompt_len, ids) states)."""
        return list(self._tokenized), sorted(self._pieces), list(self._states)

    def _missing(self, what: str) -> LabError:
        return LabError(f"{what} was not recorded in {Path(self._source).name or 'this replay'}; "
                        "run scripts/record_replay.py again.")

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        ids = self._tokenized.get((text, bool(add_special), bool(parse_special)))
        if ids is None:
            raise self._missing(f"the tokenization of {text[:40]!r}")
        return list(ids)

    def _token_bytes(self, token_id: int) -> bytes:
        piece = self._pieces.get(token_id)
        if piece is None:
            raise self._missing(f"token {token_id}")
        return piece

    @property
    def eos_ids(self) -> frozenset[int]:
        return self._eos

    def _chat_template(self) -> str | None:
        return self._template

    def _special_tokens(self) -> dict[str, str]:
        return self._specials

    def _is_special(self, token_id: int) -> bool:
        return self._special.get(token_id, False)

    def _template_source(self) -> str:
        return "GGUF metadata (tokenizer.chat_template)"

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        state = self._states.get((prompt_len, tuple(ids)))
        if state is None:
            raise self._missing(f"the state after {len(ids)} tokens")
        return expand(self.info.vocab_size, *state)

    def _position_logits(self, ids: Sequence[int]) -> np.ndarray:
        rows = self._positions.get(tuple(ids))
        if rows is None:
            raise self._missing(f"the per-position logits of {len(ids)} tokens")
        return np.stack([expand(self.info.vocab_size, *row) for row in rows])
