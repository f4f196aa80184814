"""No module of stylecore or ray_jobs imports, directly or through others, a module that imports it back.

Imports inside functions count: they hide a circle from Python's start-up but not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("stylecore", "ray_jobs")
ROOT = Path(__file__).resolve().parents[2]


def module_imports() -> dict[str, set[str]]:
    """Every module of :data:`PACKAGES` and the modules of those packages it imports anywhere in its file."""
    modules = {f"{package}.{path.stem}": path for package in PACKAGES for path in (ROOT / package).glob("*.py")
               if path.stem != "__init__"}
    imports = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        imports[name] = found & modules.keys() - {name}
    return imports


def circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Import paths that lead from a module back to itself, one per module on a circle."""
    found = []
    for start in imports:
        stack = [[start]]
        while stack:
            path = stack.pop()
            for imported in imports[path[-1]]:
                if imported == start:
                    found.append([*path, start])
                elif imported not in path:
                    stack.append([*path, imported])
    return found


def test_no_import_circles():
    imports = module_imports()
    assert "ray_jobs.manifest_builder" in imports["ray_jobs.manifest"]  # python -m ray_jobs.manifest build
    assert circles(imports) == []


def test_a_circle_is_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"], ["b", "c", "a", "b"],
                                                                         ["c", "a", "b", "c"]]
