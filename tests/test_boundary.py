"""The engine never imports the UI, and imports heavy libraries only when a backend needs them."""

import subprocess
import sys

MODULES = ["lab", "lab.types", "lab.errors", "lab.sampling", "lab.catalogue", "lab.chat", "lab.gguf_file",
           "lab.tokenizers", "lab.doctor", "lab.cli", "lab.backends", "lab.backends.base", "lab.backends.llamacpp",
           "lab.backends.hf", "lab.devices", "lab.paths"]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_imports_no_textual_or_rich():
    loaded = _loaded_after("\n".join(f"import {m}" for m in MODULES))
    assert "textual" not in loaded
    assert "rich" not in loaded


def test_engine_import_is_lazy_about_torch_and_llama_cpp():
    loaded = _loaded_after("\n".join(f"import {m}" for m in MODULES))
    for heavy in ("torch", "transformers", "llama_cpp"):
        assert heavy not in loaded, heavy
