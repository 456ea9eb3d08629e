"""`deepdive-lab doctor`: what this machine offers the lab, as plain lines of text."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def sandbox_line() -> str:
    """How the tool card's programs are isolated here (strong: namespaces; weak: the audit hook only)."""
    from lab.sandbox import describe

    return describe()


LLAMA_CPU_BUILD = ("no (CPU build; for a GPU reinstall with CMAKE_ARGS=\"-DGGML_CUDA=on\" or \"-DGGML_METAL=on\": "
                   "see the README)")


def gpu_lines() -> list[str]:
    """torch, its devices, and each GPU: name, memory, bf16 support (CUDA), or that there is none."""
    try:
        import torch
    except Exception as exc:  # torch missing or broken: report, do not fail
        return [f"torch         unavailable ({exc.__class__.__name__}: {exc})"]
    lines = [f"torch         {torch.__version__} (CUDA build: {torch.version.cuda or 'no'})"]
    try:
        cuda = torch.cuda.is_available()
        mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        devices = (["cuda"] if cuda else []) + (["mps"] if mps else []) + ["cpu"]
        lines.append(f"devices       {', '.join(devices)} (CUDA: {'yes' if cuda else 'no'}, MPS: {'yes' if mps else 'no'})")
        if cuda:
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                bf16 = "yes" if p.major >= 8 else "no (float16 is used)"
                lines.append(f"GPU {i}         {p.name}, {human_size(p.total_memory)}, compute {p.major}.{p.minor}, "
                             f"bf16: {bf16}")
        if mps:
            lines.append("GPU           Apple GPU (MPS), memory shared with the system, float16 (no bf16 in use)")
        if not cuda and not mps:
            lines.append("GPU           no GPU: torch sees neither CUDA nor MPS; models run on the CPU")
    except Exception as exc:  # a driver that answers badly: say so, do not fail
        lines.append(f"GPU           could not be queried ({exc.__class__.__name__}: {str(exc)[:120]})")
    return lines


def report(assemble: bool = True) -> list[str]:
    """Lines describing Python, libraries, devices and every model found."""
    from lab import catalogue
    from lab.backends.llamacpp import gpu_offload_supported, llama_cpp_version

    lines = [
        f"Python        {sys.version.split()[0]} ({platform.system()} {platform.machine()})",
        f"deepdive-lab  {_version('deepdive-lab')}",
        f"textual       {_version('textual')}",
        f"transformers  {_version('transformers')}",
        f"tiktoken      {_version('tiktoken')}",
        f"llama.cpp     llama-cpp-python {llama_cpp_version()}, GPU offload: "
        f"{'yes' if gpu_offload_supported() else LLAMA_CPU_BUILD}",
        f"sandbox       {sandbox_line()}",
    ]
    lines.extend(gpu_lines())
    from lab.config import config_path

    where = config_path()
    lines.append(f"config        {where} ({'found' if where.exists() else 'none: defaults in use'})")
    lines.append("")
    lines.append("models")
    if assemble:
        try:
            catalogue.gemma_path(assemble=True)
        except Exception as exc:
            lines.append(f"  (could not assemble gemma-3-270m: {exc})")
    entries = catalogue.discover()
    if not entries:
        lines.append("  none found")
    for e in entries:
        role = f" [{e.role} default]" if e.role else ""
        where = e.path or "(not assembled yet)"
        lines.append(f"  {e.name:<28} {e.kind:<9} {human_size(e.size_bytes):>9}  {e.source}{role}")
        lines.append(f"  {'':<28} {where}")
    lines.append("")
    lines.append("remotes (OpenAI-compatible servers; `deepdive-lab models` says what each can do)")
    lines.extend(remote_lines())
    lines.append("")
    lines.append("encodings")
    from lab.errors import LabError
    from lab.tokenizers import ENCODINGS, encoding_file

    for spec in ENCODINGS.values():
        try:
            _, where = encoding_file(spec, allow_download=False)
            lines.append(f"  {spec.label:<28} available ({where})")
        except LabError as exc:
            lines.append(f"  {spec.label:<28} unavailable: {exc.message}")
    return lines


def remote_lines(timeout: float = 3.0) -> list[str]:
    """One line per remote: does it answer, and with which models. Checked in parallel, each
    within `timeout` seconds; keys are never shown (errors come redacted)."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from lab import remotes
    from lab.errors import LabError

    try:
        table = remotes.all_remotes()
    except LabError as exc:
        return [f"  {exc}"]

    def check(cfg) -> str:
        from lab.backends.http import Http

        cfg = replace(cfg, connect_timeout=min(cfg.connect_timeout, timeout), read_timeout=timeout, retries=1)
        if cfg.key_env and not cfg.api_key():
            return f"not checked: {cfg.key_status()}"
        http = Http(cfg)
        try:
            listing = http.request("GET", f"{http.base}/models", None, "model list (/models)")
        except LabError as exc:
            return f"does not answer: {exc}"
        finally:
            http.close()
        names = [str(m.get("id")) for m in listing.get("data", []) if isinstance(m, dict)]
        serves = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        wanted = "" if not cfg.model or cfg.model in names or not names else f"; {cfg.model} is not listed"
        return f"answers: {serves or 'no models listed'}{wanted}"

    configs = list(table.values())
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(configs)))) as pool:
        results = list(pool.map(check, configs))
    return [f"  {cfg.name:<28} {cfg.host:<24} {result}" for cfg, result in zip(configs, results)]
