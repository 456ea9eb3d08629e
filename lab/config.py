"""The lab's config file: TOML in the platform's config folder (platformdirs), e.g.
~/.config/deepdive-lab/config.toml on Linux; `$DEEPDIVE_LAB_CONFIG` names another file.

    base_model = "gemma-3-270m"
    chat_model = "smollm2-135m-instruct"
    theme = "projector-dark"          # or any Textual theme: textual-dark, nord, ...
    track = "~/talks/my-talk.toml"    # the track `deepdive-lab talk` opens
    device = "auto"                   # auto | cpu | cuda | mps | gpu
    backend = "auto"                  # auto | llama.cpp | transformers

    [keys]                            # binding id = key(s), as Textual's keymap takes them
    "basechat.generate" = "ctrl+enter"

Command-line flags override it. A bad value gets a message naming the key and the file;
a missing file is an empty config. Headless: no UI import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEVICES = ("auto", "cpu", "cuda", "mps", "gpu")
BACKENDS = ("auto", "llama.cpp", "transformers")


def config_path() -> Path:
    if env := os.environ.get("DEEPDIVE_LAB_CONFIG"):
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("deepdive-lab", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Config:
    base_model: str = ""
    chat_model: str = ""
    theme: str = ""
    track: str = ""
    device: str = ""
    backend: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    remotes: dict[str, dict] = field(default_factory=dict)  # [remotes.NAME] tables (lab.remotes reads them)
    path: str = ""


def load_config(path: Path | None = None) -> Config:
    """Read the config file; raise `LabError` naming the file (and the key) when it is wrong."""
    p = Path(path) if path else config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=str(p))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"Cannot read the config file {p}: {exc}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"The config file {p} is not valid TOML: {exc}.") from None
    known = {"base_model", "chat_model", "theme", "track", "device", "backend", "keys", "remotes"}
    for key in data:
        if key not in known:
            raise LabError(f"{p}: unknown key {key!r}; the config takes {', '.join(sorted(known))}.")
    values = {}
    for key in ("base_model", "chat_model", "theme", "track", "device", "backend"):
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                raise LabError(f"{p}: {key} must be a non-empty string, not {data[key]!r}.")
            values[key] = data[key].strip()
    if values.get("device", "auto") not in DEVICES:
        raise LabError(f"{p}: device = {values['device']!r}; use one of {', '.join(DEVICES)}.")
    if values.get("backend", "auto") not in BACKENDS:
        raise LabError(f"{p}: backend = {values['backend']!r}; use one of {', '.join(BACKENDS)}.")
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise LabError(f'{p}: [keys] maps binding ids to keys, e.g. "basechat.generate" = "ctrl+enter".')
    remotes = data.get("remotes", {})
    if not isinstance(remotes, dict) or not all(isinstance(v, dict) for v in remotes.values()):
        raise LabError(f"{p}: [remotes.NAME] must be tables.")
    if "track" in values:
        values["track"] = str(Path(values["track"]).expanduser())
    return Config(**values, keys=dict(keys), remotes=dict(remotes), path=str(p))
