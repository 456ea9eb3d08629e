"""Talk tracks: a talk as an ordered list of steps, each putting one screen in a known state.

A track is a TOML file:

    title = "Deep Dive into LLMs like ChatGPT"

    [[step]]
    screen = "tokens"                 # tokens | next | basechat | failures | training | post
    caption = "Text is bytes"         # one line, shown on screen
    notes = "Say: ..."                # presenter notes
    text = "Hello world!"             # the screen's own fields (see FIELDS)
    keys = ["ctrl+b"]                 # keys "pressed" once the state is set

`load_track` never gives up on a whole talk because of one bad step: a step with a problem
keeps its place with `error` set (naming the step and the field), and the rest still runs.
Headless: no UI import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# screen -> field -> (type, allowed values or None)
FIELDS: dict[str, dict[str, tuple[type, tuple | None]]] = {
    "tokens": {"text": (str, None), "preset": (str, None),
               "encoding": (str, ("cl100k_base", "o200k_base", "r50k_base", "chat", "base")),
               "view": (str, ("tokens", "compare", "replay", "train", "chat"))},
    "next": {"prompt": (str, None), "role": (str, ("chat", "base")), "temperature": (float, None),
             "top_k": (int, None), "top_p": (float, None), "seed": (int, None),
             "view": (str, ("bars", "surprisal", "lens"))},
    "basechat": {"prompt": (str, None), "preset": (str, None), "few_shot": (bool, None), "system": (str, None),
                 "samples": (int, None), "seed": (int, None), "temperature": (float, None), "top_p": (float, None),
                 "max_tokens": (int, None), "run": (bool, None)},
    "failures": {"card": (str, None), "values": (dict, None), "role": (str, ("chat", "base")),
                 "samples": (int, None), "seed": (int, None), "temperature": (float, None), "run": (bool, None)},
    "training": {"preset": (str, None)},
    "post": {"view": (str, ("dataset", "run", "experiment", "rl", "rlhf")), "conversation": (int, None),
             "task": (str, ("identity", "apples", "letters", "arithmetic"))},
}
COMMON = {"screen", "caption", "notes", "keys", "model"}
NAMED_KEYS = {"enter", "escape", "tab", "space", "backspace", "delete", "up", "down", "left", "right", "home", "end",
              "pageup", "pagedown", "insert"}
TALK_KEYS = {"escape", "space", "left", "right", "home", "pageup", "pagedown", "f9"}  # talk mode's own keys
_KEY = re.compile(r"^(?:(?:ctrl|shift|alt)\+)*(?:[a-z0-9]|f(?:[1-9]|1[0-9]|2[0-4])|" + "|".join(NAMED_KEYS) + ")$")


@dataclass(frozen=True)
class Step:
    """One step of a talk: a screen and the state to put it in (`fields`), or an `error`."""

    index: int  # 1-based, as the presenter counts
    screen: str
    caption: str = ""
    notes: str = ""
    fields: dict = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    model: str = ""
    error: str = ""

    @property
    def name(self) -> str:
        return f"step {self.index} ({self.screen or '?'})"


@dataclass(frozen=True)
class Track:
    title: str
    steps: tuple[Step, ...]
    path: str = ""

    @property
    def problems(self) -> list[str]:
        return [s.error for s in self.steps if s.error]


def default_track_path() -> Path:
    from lab.paths import assets_dir

    return assets_dir() / "talks" / "deep-dive.toml"


def load_track(path: str | Path | None = None, model_exists=None) -> Track:
    """Read a track. A file that is missing or not TOML raises `LabError`; a bad step is kept
    with its `error` set. `model_exists(name) -> bool` checks model names (default: the catalogue)."""
    p = Path(path) if path else default_track_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabError(f"Cannot read the talk track {p}: {exc.strerror or exc}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LabError(f"The talk track {p} is not valid TOML: {exc}.") from None
    return parse_track(data, str(p), model_exists)


def parse_track(data: dict, path: str = "", model_exists=None) -> Track:
    raw = data.get("step", [])
    if not isinstance(raw, list) or not raw:
        raise LabError(f"The talk track {path or ''} has no [[step]] entries.".replace("  ", " "))
    steps = tuple(_step(i + 1, s, model_exists) for i, s in enumerate(raw))
    return Track(str(data.get("title", Path(path).stem if path else "talk")), steps, path)


def _step(index: int, raw, model_exists) -> Step:
    if not isinstance(raw, dict):
        return Step(index, "", error=f"step {index}: not a table of fields.")
    screen = raw.get("screen", "")
    base = dict(index=index, screen=str(screen), caption=str(raw.get("caption", "")), notes=str(raw.get("notes", "")))
    name = f"step {index} ({screen or '?'})"
    if screen not in FIELDS:
        return Step(**base, error=f"{name}: unknown screen {screen!r}; use one of {', '.join(FIELDS)}.")
    try:
        fields = {k: _value(name, screen, k, v) for k, v in raw.items() if k not in COMMON}
        keys = raw.get("keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise LabError(f"{name}: keys must be a list of key names, like [\"ctrl+g\", \"s\"].")
        for k in keys:
            if not _KEY.match(k):
                raise LabError(f"{name}: {k!r} is not a key name (e.g. \"s\", \"ctrl+g\", \"enter\").")
            if k in TALK_KEYS:
                raise LabError(f"{name}: {k!r} is a talk-mode key (it would step or leave the talk); "
                               "a step cannot press it.")
        model = str(raw.get("model", ""))
        if model:
            exists = model_exists or _catalogue_has
            if not exists(model):
                raise LabError(f"{name}: the model {model!r} is not in the catalogue (deepdive-lab models lists them).")
        _check_meaning(name, screen, fields)
    except LabError as exc:
        return Step(**base, error=str(exc))
    return Step(**base, fields=fields, keys=tuple(keys), model=model)


def _value(name: str, screen: str, key: str, value):
    spec = FIELDS[screen].get(key)
    if spec is None:
        raise LabError(f"{name}: unknown field {key!r}; a {screen} step takes "
                       f"{', '.join(sorted(FIELDS[screen]))} (and caption, notes, keys, model).")
    kind, allowed = spec
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LabError(f"{name}: {key} must be {kind.__name__}, not {type(value).__name__} {value!r}.")
    if allowed is not None and value not in allowed:
        raise LabError(f"{name}: {key} = {value!r}; use one of {', '.join(map(str, allowed))}.")
    return value


def _check_meaning(name: str, screen: str, fields: dict) -> None:
    """Values that name things (presets, cards) must name things that exist."""
    if screen == "basechat" and "preset" in fields:
        from lab.prompts import PRESETS

        if fields["preset"] not in PRESETS:
            raise LabError(f"{name}: unknown preset {fields['preset']!r}; use one of {', '.join(PRESETS)}.")
    if screen == "failures":
        from lab.failures import CARD_BY_KEY

        card = CARD_BY_KEY.get(fields.get("card", "count"))
        if card is None:
            raise LabError(f"{name}: unknown card {fields['card']!r}; use one of {', '.join(CARD_BY_KEY)}.")
        values = {str(k): str(v) for k, v in fields.get("values", {}).items()}
        unknown = set(values) - {f.key for f in card.fields}
        if unknown:
            raise LabError(f"{name}: the {card.key} card has no field {sorted(unknown)[0]!r}; it takes "
                           f"{', '.join(f.key for f in card.fields)}.")
        try:
            card.experiment(values)
        except LabError as exc:
            raise LabError(f"{name}: {exc}") from None
    if screen == "post" and ("conversation" in fields or "task" in fields):
        from lab.sft_data import conversation_index, default_set

        try:
            conversation_index(default_set(), fields.get("task", ""), fields.get("conversation", 1))
        except LabError as exc:
            raise LabError(f"{name}: {exc}") from None
    if screen == "tokens" and "preset" in fields:
        from lab.paths import assets_dir
        import json

        presets = json.loads((assets_dir() / "token_presets.json").read_text(encoding="utf-8"))
        if fields["preset"] not in presets:
            raise LabError(f"{name}: unknown preset {fields['preset']!r}; use one of {', '.join(presets)}.")


def _catalogue_has(name: str) -> bool:
    """Whether the catalogue can open `name`, without loading or assembling anything."""
    import os

    from lab import catalogue, remotes
    from lab.paths import cache_dir

    low = catalogue.ALIASES.get(name.lower(), name.lower())
    if low in (catalogue.CHAT_DEFAULT, catalogue.BASE_DEFAULT):
        return any(e.name == low for e in catalogue.builtin_entries())
    if low == "tiny":
        return (cache_dir() / "tiny" / "ckpt.pt").exists()
    if remotes.find(name) is not None or os.path.exists(os.path.expanduser(name)):
        return True
    return any(e.name == low for e in catalogue.discover(include_builtin=False))
