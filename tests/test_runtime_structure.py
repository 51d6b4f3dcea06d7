"""The runtime's modules form no import cycle and import nothing inside functions.

Imports under ``TYPE_CHECKING`` count: a cycle there is still two modules that cannot be
read one after the other. The lower modules see the instance through Protocols.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "src" / "pyrivet" / "_runtime"
SRC = RUNTIME.parents[1]

#: Imports a function may make: optional dependencies only (none in the runtime today).
OPTIONAL: set[str] = set()


def _runtime_imports(path: Path) -> set[str]:
    """The sibling modules of ``_runtime`` that ``path`` imports (anywhere in the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is not None:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module is not None and node.module.startswith("pyrivet._runtime."):
                found.add(node.module.split(".")[2])
    return {name for name in found if (RUNTIME / f"{name}.py").exists()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_runtime_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: _runtime_imports(p) for p in RUNTIME.glob("*.py")}
    assert _find_cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def _imports_in_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    names = [a.name for a in inner.names]
                    module = getattr(inner, "module", None) or ""
                    if not OPTIONAL.intersection([module, *names]):
                        found.append(f"{path.name}:{inner.lineno}")
    return found


def test_the_runtime_imports_nothing_inside_a_function() -> None:
    assert [hit for p in sorted(RUNTIME.glob("*.py")) for hit in _imports_in_functions(p)] == []


def test_no_status_is_compared_as_a_string() -> None:
    pattern = re.compile(r"status\.value\s*(==|!=|not in|in)\b|status\.value\s+in\b")
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
