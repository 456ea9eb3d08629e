"""A folder of JSON files, one per key (a sha256 hex), written atomically.

The answer cache of the failure demos and the sample cache of Base vs chat both sit on it: a
missing or damaged file is a miss, a folder that cannot be written only costs the replay.
Headless: no UI import.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path


def write_json(path: Path, value) -> None:
    """Write `value` as JSON to `path` atomically (a temporary file beside it, then a rename),
    creating the folder; raises OSError when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


class JsonCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str):
        """The stored value, or None when it is missing or damaged."""
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value) -> None:
        try:
            write_json(self.path(key), value)
        except OSError:
            pass  # a read-only cache only costs the replay

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
