"""The engine never imports the UI, and imports heavy libraries only when a backend needs them.

Two checks: every module under `lab/` (found by walking the package, not listed by hand) is
imported in a fresh interpreter and Textual/rich must not be loaded; and the source of every
engine module is read for import statements anywhere (inside functions too), none of which
may name textual, rich or the app's packages.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import lab

UI_PACKAGES = ("textual", "rich", "screens", "deepdive_lab")
HEAVY = ("torch", "transformers", "llama_cpp")
TORCH_BY_DESIGN = {"lab.gpt", "lab.reward_model"}  # nn.Modules (the tiny GPT, its reward head): imported only where a run needs them


def engine_modules() -> list[str]:
    names = ["lab"]
    for info in pkgutil.walk_packages(lab.__path__, prefix="lab."):
        names.append(info.name)
    return names


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_walk_finds_every_engine_module():
    files = {p.relative_to(Path(lab.__file__).parent.parent).with_suffix("").as_posix().replace("/", ".")
             for p in Path(lab.__file__).parent.rglob("*.py")}
    files = {f.removesuffix(".__init__") for f in files}
    assert files == set(engine_modules())
    assert len(files) > 20


def test_engine_imports_no_ui_and_no_heavy_library_at_import():
    loaded = _loaded_after("\n".join(f"import {m}" for m in engine_modules() if m not in TORCH_BY_DESIGN))
    for name in UI_PACKAGES + HEAVY:
        assert name not in loaded, name
    loaded = _loaded_after("\n".join(f"import {m}" for m in engine_modules()))
    assert not [name for name in UI_PACKAGES if name in loaded]


def _imported_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def test_no_engine_module_imports_the_ui_even_inside_a_function():
    offenders = []
    for path in Path(lab.__file__).parent.rglob("*.py"):
        for line, name in _imported_names(path):
            if name.split(".")[0] in UI_PACKAGES:
                offenders.append(f"{path.name}:{line} imports {name}")
    assert not offenders


def test_the_check_catches_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from textual.app import App\n    import importlib\n"
                      "    importlib.import_module('screens.app')\n")
    assert [n for _, n in _imported_names(sample)] == ["textual.app", "importlib", "screens.app"]
