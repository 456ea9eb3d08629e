"""Record the real default models once, for the snapshot tests' replay backend.

Runs every flow of `tests/test_snapshots.py::MODEL_FLOWS` in the app on the real models
(llama.cpp, CPU) and writes what the screens asked of each model to
`tests/data/replay/{chat,base}.json` (see `lab/backends/replay.py` for the layout): the
tokenizations, the token pieces, and the logits of every state visited, as the top-K values
plus a floor. While recording, the app is handed those same truncated logits, so a replay
takes exactly the path the recording took (the same samples, the same states).

    python scripts/record_replay.py [--top-k 64]

Run it again after a change to what those screens ask of a model; the lead then regenerates
the SVGs with `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.backends.replay import expand, truncate  # noqa: E402


class Recorder:
    """Wraps a real backend's primitives in place and keeps what they returned."""

    def __init__(self, backend, top_k: int) -> None:
        self.backend = backend
        self.tokenized: dict[tuple[str, bool, bool], list[int]] = {}
        self.states: dict[tuple[int, tuple[int, ...]], tuple] = {}
        self.positions: dict[tuple[int, ...], list[tuple]] = {}
        self.special: dict[int, bool] = {}
        vocab = backend.info.vocab_size
        tokenize, last, positions, is_special = (backend.tokenize, backend._last_logits, backend._position_logits,
                                                 backend._is_special)

        def rec_tokenize(text, add_special=True, parse_special=False):
            ids = tokenize(text, add_special, parse_special)
            self.tokenized[(text, bool(add_special), bool(parse_special))] = list(ids)
            return ids

        def rec_last(ids, prompt_len):
            key = (int(prompt_len), tuple(int(i) for i in ids))
            if key not in self.states:
                self.states[key] = truncate(last(ids, prompt_len), top_k)
            return expand(vocab, *self.states[key])

        def rec_positions(ids):
            key = tuple(int(i) for i in ids)
            if key not in self.positions:
                self.positions[key] = [truncate(row, top_k) for row in positions(ids)]
            return __import__("numpy").stack([expand(vocab, *row) for row in self.positions[key]])

        def rec_special(token_id):
            self.special[int(token_id)] = bool(is_special(token_id))
            return self.special[int(token_id)]

        backend.tokenize, backend._last_logits = rec_tokenize, rec_last
        backend._position_logits, backend._is_special = rec_positions, rec_special

    def data(self) -> dict:
        b = self.backend
        return {
            "info": asdict(b.info),
            "capabilities": asdict(b.capabilities),
            "eos_ids": sorted(b.eos_ids),
            "chat_template": b._chat_template(),
            "special_tokens": b._special_tokens(),
            "special": {str(k): v for k, v in sorted(self.special.items())},
            "pieces": {str(k): v.hex() for k, v in sorted(b._piece_cache.items())},
            "tokenize": [[t, a, p, ids] for (t, a, p), ids in self.tokenized.items()],
            "states": [[n, list(ids), *state] for (n, ids), state in self.states.items()],
            "positions": [[list(ids), [list(r) for r in rows]] for ids, rows in self.positions.items()],
        }


async def record(top_k: int) -> dict[str, dict]:
    from lab.session import Session, Settings
    from tests.helpers import make_test_app  # fresh folders for every cache: nothing answered from disk
    from tests.test_snapshots import MODEL_FLOWS

    session = Session(Settings(device="cpu", backend="llama.cpp"))
    recorders = {role: Recorder(session.load(role), top_k) for role in ("chat", "base")}
    session.close = lambda: None  # the app closes its session on exit; the flows share this one
    for name, (run_before, size) in MODEL_FLOWS.items():
        app = make_test_app(session=session)
        async with app.run_test(size=size) as pilot:
            await run_before(pilot)
        print(f"recorded {name}", file=sys.stderr)
    return {role: r.data() for role, r in recorders.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top-k", type=int, default=64)
    args = ap.parse_args()
    out = ROOT / "tests" / "data" / "replay"
    out.mkdir(parents=True, exist_ok=True)
    for role, data in asyncio.run(record(args.top_k)).items():
        path = out / f"{role}.json"
        path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        print(f"{path}: {len(data['states'])} states, {len(data['pieces'])} pieces, "
              f"{path.stat().st_size // 1024} KiB", file=sys.stderr)


if __name__ == "__main__":
    main()
