"""The code is one installed package, ``cadenza`` (bot/ -> cadenza, models/ -> cadenza.models):
nothing imports the folders by their own names, which would load a second copy of every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("bot", "models")  # the folders setuptools installs as cadenza and cadenza.models
SOURCES = ("bot", "models", "tests", "bench", "scripts")


def python_files() -> list[Path]:
    return sorted(p for d in SOURCES for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)


def module_paths() -> set[str]:
    """``bot.x`` / ``models.x`` spellings of every module in the two folders."""
    out = set()
    for folder in FOLDERS:
        for p in (ROOT / folder).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def folder_imports(path: Path) -> list[str]:
    """Imports (at any depth, also inside functions) and module-path strings naming bot/models."""
    tree = ast.parse(path.read_text(), str(path))
    names = module_paths()
    found = []
    for node in ast.walk(tree):
        mods: list[str] = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("models.vae"), extension names, fork-server preloads
            mods = [m for m in re.findall(r"\b[a-z_]+(?:\.[a-z_0-9]+)+\b", node.value)
                    if m in names]
        found += [f"{path}:{node.lineno}: {m}" for m in mods
                  if m.split(".")[0] in FOLDERS]
    return found


def test_nothing_imports_bot_or_models_by_folder_name() -> None:
    files = python_files()
    assert len(files) > 100  # the walk really saw the tree
    bad = [hit for f in files for hit in folder_imports(f)]
    assert bad == [], "import cadenza... / cadenza.models..., never bot. or models.:\n" + "\n".join(
        bad)


def test_the_check_catches_each_spelling(tmp_path: Path) -> None:
    bot, models = FOLDERS  # spelled through FOLDERS so this file passes its own check
    sample = tmp_path / "sample.py"
    sample.write_text(f"import {models}.vae\nfrom {bot} import app\n"
                      f"def f():\n    from {bot}.store import Store\n"
                      f"X = ('{models}.gan', '{bot}.log', 'cadenza.{models}.gan')\n")
    hits = [h.split(": ")[1] for h in folder_imports(sample)]
    assert sorted(hits) == sorted([f"{models}.vae", bot, f"{bot}.store", f"{models}.gan"])


def test_cadenza_resolves_to_this_checkout_and_the_folders_are_not_packages_here() -> None:
    import sys

    import cadenza
    import cadenza.models

    assert Path(cadenza.__file__).parent == ROOT / "bot"
    assert Path(cadenza.models.__file__).parent == ROOT / "models"
    # whatever the suite imported so far came in under cadenza's name only
    assert not {m for m in sys.modules if m.split(".")[0] in FOLDERS}
