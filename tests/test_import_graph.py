"""No import cycles: every cadenza module imports on its own, and the graph of its imports —
every import statement, also inside functions and under TYPE_CHECKING — has no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the installed names of the two folders (pyproject.toml's package-dir)
PACKAGES = {"cadenza": ROOT / "bot", "cadenza.models": ROOT / "models"}


def modules() -> dict[str, Path]:
    """Every module's dotted name -> its file."""
    found: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        for p in folder.rglob("*.py"):
            parts = p.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            dotted = ".".join((name, *parts))
            found.setdefault(dotted, p)  # cadenza.models is its own folder, not bot/models
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The cadenza modules ``path`` imports anywhere in its text."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known}
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path a -> ... -> a, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child):], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges[child]))))
    return None


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    assert len(edges) > 100 and "cadenza.discord.client" in edges and "cadenza.models.rnn" in edges
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("from cadenza.b import x\n")
    b.write_text("def f():\n    import cadenza.c\n")
    c.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from cadenza import a\n")
    known = {"cadenza.a", "cadenza.b", "cadenza.c"}
    edges = {n: imports_of(p, n, known) for n, p in zip(sorted(known), (a, b, c), strict=True)}
    assert edges == {"cadenza.a": {"cadenza.b"}, "cadenza.b": {"cadenza.c"},
                     "cadenza.c": {"cadenza.a"}}
    assert find_cycle(edges) == ["cadenza.a", "cadenza.b", "cadenza.c", "cadenza.a"]
    assert find_cycle({"cadenza.a": {"cadenza.b"}, "cadenza.b": set()}) is None


ISOLATED = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cadenza" or m.startswith("cadenza.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own() -> None:
    # One interpreter, cadenza's modules forgotten before each import (torch and discord stay
    # loaded, so this takes seconds): a module that only works when another was imported
    # first fails here.
    names = sorted(n for n in modules() if not n.endswith("__main__"))
    res = subprocess.run([sys.executable, "-c", ISOLATED, *names], capture_output=True,
                         text=True, cwd=ROOT / "tests", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]


def test_music_and_the_core_import_neither_torch_nor_discord() -> None:
    """Only cadenza.models imports torch and only cadenza.discord imports discord: the music
    representation loads without either (the CLI's light commands, the render children)."""
    music = sorted(n for n in modules() if n.startswith("cadenza.music"))
    code = ("import importlib, sys\n"
            f"for name in {music!r}: importlib.import_module(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'discord'}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT / "tests", timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(music) >= 10 and res.stdout.strip() == "[]"
