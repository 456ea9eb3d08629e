"""Pick a torch device: CUDA, then MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

from lab.errors import LabError

DEVICES = ("auto", "cuda", "mps", "cpu", "gpu")


def pick_torch_device(preference: str = "auto") -> str:
    """"auto" -> the best available; an explicit device that is missing is an error, not a silent fallback."""
    import torch

    pref = (preference or "auto").lower()
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if pref in ("auto", "gpu"):
        if cuda:
            return "cuda"
        if mps:
            return "mps"
        if pref == "gpu":
            raise LabError("no GPU is available to torch (neither CUDA nor MPS).", "Use --device cpu.")
        return "cpu"
    if pref.startswith("cuda") and not cuda:
        raise LabError("CUDA was asked for, but torch sees no CUDA device.", "Use --device auto or cpu.")
    if pref == "mps" and not mps:
        raise LabError("MPS was asked for, but torch sees no Apple GPU.", "Use --device auto or cpu.")
    if pref not in ("cpu", "mps") and not pref.startswith("cuda"):
        raise LabError(f"unknown device {preference!r}; use one of {', '.join(DEVICES)}.")
    return pref
