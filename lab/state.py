"""Saved lab states: each screen's text, prompt, settings, seeds and results, in one JSON file.

    {"format": "deepdive-lab-state", "version": 1, "mode": "failures",
     "screens": {"basechat": {...}, "failures": {...}, ...}}

`read_state` checks the whole file before anything is applied, so a damaged or newer file
gets a clear message and nothing is loaded half-way. Headless: no UI import.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lab.errors import LabError

FORMAT = "deepdive-lab-state"
VERSION = 1
SCREENS = ("tokens", "next", "basechat", "failures", "training")


def write_state(path: Path, mode: str, screens: dict[str, dict]) -> Path:
    """Write atomically (a temporary file, then rename); raise `LabError` when it cannot."""
    path = Path(path).expanduser()
    data = {"format": FORMAT, "version": VERSION, "mode": mode, "screens": screens}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise LabError(f"Could not save the lab's state to {path}: {exc.strerror or exc}.") from None
    return path


def read_state(path: Path) -> dict:
    """The saved state, checked: {"mode": str, "screens": {name: dict}}."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabError(f"Cannot open {path}: {exc.strerror or exc}.") from None
    except (ValueError, UnicodeDecodeError):
        raise LabError(f"{path} is damaged (not JSON): nothing was loaded.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LabError(f"{path} is not a deepdive-lab state file: nothing was loaded.")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise LabError(f"{path} was saved by a newer deepdive-lab (state version {version}; this one reads "
                       f"{VERSION}): update the lab to open it. Nothing was loaded.")
    screens = data.get("screens")
    if not isinstance(screens, dict) or not all(k in SCREENS and isinstance(v, dict) for k, v in screens.items()):
        raise LabError(f"{path} is damaged (its screens are not as saved): nothing was loaded.")
    mode = data.get("mode")
    if mode not in SCREENS:
        mode = next(iter(screens), "tokens")
    return {"mode": mode, "screens": screens}
