"""Where the lab keeps its files: caches, screenshots, shipped assets."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$DEEPDIVE_LAB_CACHE`, else `$XDG_CACHE_HOME/deepdive-lab`, else ~/.cache/deepdive-lab."""
    if env := os.environ.get("DEEPDIVE_LAB_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "deepdive-lab"


def screenshots_dir() -> Path:
    """`$DEEPDIVE_LAB_SCREENSHOTS`, else ~/Pictures/deepdive-lab when ~/Pictures exists, else the cache."""
    if env := os.environ.get("DEEPDIVE_LAB_SCREENSHOTS"):
        return Path(env).expanduser()
    pictures = Path.home() / "Pictures"
    return pictures / "deepdive-lab" if pictures.is_dir() else cache_dir() / "screenshots"


def assets_dir() -> Path:
    """The folder of shipped data (corpus, presets)."""
    try:
        import deepdive_lab_assets

        return Path(deepdive_lab_assets.__file__).parent
    except ImportError:  # running from a source tree without an install
        return Path(__file__).resolve().parent.parent / "assets"


def default_corpus() -> Path:
    return assets_dir() / "tinyshakespeare.txt"


def weights_stamp(path: str | os.PathLike | None) -> str:
    """Size and modification time of a weights file (for a folder: of each file in it, hashed), so a
    model file replaced or retrained at the same path reads as a different model; "" when there is
    no such path. Example: a checkpoint of 1,234 bytes -> "1234-1764300000123456789"."""
    if not path:
        return ""
    p = Path(path)
    try:
        if p.is_dir():
            import hashlib

            files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
            return hashlib.sha256(repr(files).encode()).hexdigest()[:16]
        st = p.stat()
    except OSError:
        return ""
    return f"{st.st_size}-{st.st_mtime_ns}"
