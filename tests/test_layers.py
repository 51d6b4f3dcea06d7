"""The package's import structure is the one DESIGN.md draws.

Three rules, each checked over every module of ``src/pyrivet`` from its source (nothing
is imported):

- **Layers.** A module imports only packages of a lower layer of DESIGN.md's table, or
  modules of its own package; nothing imports the facade ``pyrivet``. Imports under
  ``TYPE_CHECKING`` and inside functions obey the same table.
- **No cycles.** The graph of every import (at module level, inside a function, or
  under ``TYPE_CHECKING``) has no cycle: two modules that name each other cannot be
  read one after the other. A lower module sees a higher one through a Protocol.
- **Imports at the top.** A module imports at module level; only an optional dependency
  (one that may be missing at run time) is imported inside a function.

Each rule has a test that feeds its checker a small synthetic violation, so a checker
that silently passes everything fails here.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "pyrivet"
FACADE = "pyrivet"


@dataclass(frozen=True)
class Unit:
    """A package of the layer table: what a module belongs to."""

    name: str
    layer: float


CLIENT_LAYER = 3.5  # L3': beside L3, not above it

# Module prefix -> its unit. The longest matching prefix wins: `storage._base` is L1,
# the rest of `storage` (the drivers) L2. `__main__` is part of the facade.
UNITS: dict[str, Unit] = {
    "pyrivet.errors": Unit("errors", 0),
    "pyrivet.types": Unit("types", 0),
    "pyrivet._version": Unit("_version", 0),
    "pyrivet._util": Unit("_util", 0),
    "pyrivet._codec": Unit("_codec", 1),
    "pyrivet._protocol": Unit("_protocol", 1),
    "pyrivet.storage._base": Unit("storage._base", 1),
    "pyrivet.actor": Unit("actor", 2),
    "pyrivet.workflow": Unit("workflow", 2),
    "pyrivet.storage": Unit("storage", 2),
    "pyrivet._runtime": Unit("_runtime", 3),
    "pyrivet.client": Unit("client", CLIENT_LAYER),
    "pyrivet.server": Unit("server", 4),
    "pyrivet.inspector": Unit("inspector", 4),
    "pyrivet.engine": Unit("engine", 4),
    "pyrivet.testing": Unit("testing", 5),
    "pyrivet.cli": Unit("cli", 5),
    "pyrivet.__main__": Unit(FACADE, 5),
    FACADE: Unit(FACADE, 5),
}

# Inside one layer a module imports only modules of its own package, except along these
# (importer, imported) pairs, which fix an order inside the layer: wire messages are
# made of values encoded by the codecs, so `_protocol` builds on `_codec` (never back).
WITHIN_LAYER: frozenset[tuple[str, str]] = frozenset({("_protocol", "_codec")})

# Imported inside a function on purpose: each may be missing at run time, and the
# module that imports it still has to import without it. Name -> why it is optional.
OPTIONAL_IMPORTS: dict[str, str] = {
    "fcntl": "POSIX only",
    "uvloop": "the `server` extra; not on Windows",
    "pyrivet.client._http": "needs aiohttp and websockets, the `client` extra",
    "pyrivet.server.serve": "needs uvicorn, the `server` extra",
    "pyrivet.engine.serve": "needs websockets, the `server` extra",
}


def unit_of(module: str) -> Unit | None:
    """The unit of the longest prefix of ``module`` in `UNITS`, or None."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        unit = UNITS.get(".".join(parts[:end]))
        if unit is not None:
            return unit
    return None


def may_import(importer: Unit, imported: Unit) -> bool:
    """Whether the table lets a module of ``importer`` import one of ``imported``."""
    if imported.name == FACADE:
        return importer.name == FACADE
    if importer.name in (imported.name, FACADE) or (importer.name, imported.name) in WITHIN_LAYER:
        return True
    if importer.layer == CLIENT_LAYER:
        return imported.layer <= 1
    if imported.layer == CLIENT_LAYER:
        return importer.layer >= 5
    return imported.layer < importer.layer


@dataclass(frozen=True)
class Import:
    """One module named by an import statement."""

    line: int
    target: str
    in_function: bool = False
    type_only: bool = False


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _ImportCollector(ast.NodeVisitor):
    """Collects the imports of one module with where they sit (function, TYPE_CHECKING)."""

    def __init__(self, module: str, is_package: bool, modules: frozenset[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.found: list[Import] = []
        self._depth = 0  # nesting of def / lambda / class bodies
        self._type_only = False

    def _add(self, line: int, target: str) -> None:
        self.found.append(Import(line, target, self._depth > 0, self._type_only))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node.lineno, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from a import b` imports the module a.b when there is one, else a name of a.
        submodules = [f"{source}.{a.name}" for a in node.names]
        named = [m for m in submodules if m in self.modules]
        for target in named:
            self._add(node.lineno, target)
        if len(named) < len(submodules):
            self._add(node.lineno, source)

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _nested

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            outer, self._type_only = self._type_only, True
            for child in node.body:
                self.visit(child)
            self._type_only = outer
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)


def imports_of(
    source: str, module: str, *, is_package: bool = False, modules: Iterable[str] = ()
) -> list[Import]:
    """Every import in ``source`` (the text of ``module``), resolved to absolute names.

    ``modules`` are the modules that exist, to tell ``from pkg import submodule`` from
    ``from pkg import name``.
    """
    collector = _ImportCollector(module, is_package, frozenset(modules))
    collector.visit(ast.parse(source))
    return collector.found


def layer_violations(module: str, imports: Iterable[Import]) -> list[str]:
    """The imports of ``module`` that go against the layer table, described."""
    importer = unit_of(module)
    assert importer is not None, f"{module} has no layer"
    violations = []
    for imp in imports:
        if imp.target != FACADE and not imp.target.startswith(FACADE + "."):
            top = imp.target.partition(".")[0]
            if importer.layer == 0 and top not in sys.stdlib_module_names | {"__future__"}:
                violations.append(f"line {imp.line}: L0 imports non-stdlib {imp.target}")
            continue
        imported = unit_of(imp.target)
        assert imported is not None, f"{imp.target} has no layer"
        if not may_import(importer, imported):
            violations.append(
                f"line {imp.line}: {importer.name} (L{importer.layer:g}) imports "
                f"{imp.target} ({imported.name}, L{imported.layer:g})"
            )
    return violations


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of ``graph`` that has one.

    A cycle is a list of modules that starts and ends with the same one, each importing
    the next: the shortest cycle through the component's first module (by name).
    """
    cycles = []
    for component in _components(graph):
        start = min(component)
        path = _shortest_path(graph, start, start, component)
        if path is not None:
            cycles.append(path)
    return sorted(cycles)


def edges_on_cycles(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """The edges that lie on some cycle: those inside one strongly connected component."""
    where = {node: i for i, comp in enumerate(_components(graph)) for node in comp}
    return {
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a in where and where[a] == where.get(b)
    }


def _components(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components (only those with a cycle in them)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _shortest_path(
    graph: Mapping[str, Iterable[str]], start: str, goal: str, within: set[str]
) -> list[str] | None:
    """Breadth-first: the shortest path of at least one edge from ``start`` to ``goal``."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt not in within or nxt in previous:
                    continue
                previous[nxt] = node
                if nxt == goal:
                    path = [goal]
                    while len(path) == 1 or path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(nxt)
        frontier = following
    return None


def function_level_imports(imports: Iterable[Import]) -> list[Import]:
    """The imports made inside a function (or class) that are not optional dependencies."""
    return [imp for imp in imports if imp.in_function and imp.target not in OPTIONAL_IMPORTS]


# -- the package as it is ----------------------------------------------------------------

SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = frozenset(module_name(p) for p in SOURCES)
IMPORTS: dict[str, list[Import]] = {
    module_name(p): imports_of(
        p.read_text(), module_name(p), is_package=p.name == "__init__.py", modules=MODULES
    )
    for p in SOURCES
}


def import_graph(imports: Mapping[str, Iterable[Import]]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (for types only, too)."""
    return {
        module: {i.target for i in imps if i.target in imports} for module, imps in imports.items()
    }


def test_every_module_has_a_layer() -> None:
    unmapped = sorted(m for m in MODULES if unit_of(m) is None)
    assert unmapped == [], f"add these modules to DESIGN.md's layer table and UNITS: {unmapped}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    assert layer_violations(module, IMPORTS[module]) == []


def test_no_import_cycles() -> None:
    assert find_cycles(import_graph(IMPORTS)) == []


def test_imports_are_at_module_level() -> None:
    offenders = sorted(
        f"{module} line {imp.line}: imports {imp.target} inside a function"
        for module, imps in IMPORTS.items()
        for imp in function_level_imports(imps)
    )
    assert offenders == [], "import at module level (or list a real optional dependency)"


# -- the checkers catch what they are meant to catch -------------------------------------


def test_layer_checker_catches_upward_and_sideways_imports() -> None:
    def check(module: str, source: str, *, is_package: bool = False) -> list[str]:
        return layer_violations(module, imports_of(source, module, is_package=is_package))

    assert check("pyrivet._codec.cbor", "from .._protocol import errors") == [
        "line 1: _codec (L1) imports pyrivet._protocol (_protocol, L1)"
    ]
    assert check("pyrivet.actor._x", "if TYPE_CHECKING:\n    from .._runtime import a") == [
        "line 2: actor (L2) imports pyrivet._runtime (_runtime, L3)"
    ]
    assert check("pyrivet.client._x", "def f():\n    from ..storage import x") != []
    assert check("pyrivet.server.app", "from ..client import Client") != []
    assert check("pyrivet.cli.serve_command", "from ..testing import run_actors") != []
    assert check("pyrivet.server.app", "from pyrivet import Registry") != []
    assert check("pyrivet._util.clock", "import msgspec") != []
    assert check("pyrivet.actor._definition", "from ..workflow import x") != []
    assert check("pyrivet.storage._base", "from ._sqlite import SQLiteDriver") != []
    # What the table allows.
    assert check("pyrivet._protocol.messages", "from . import mapped\nimport msgspec") == []
    assert check("pyrivet._protocol.mapped", "from .._codec import cbor") == []
    assert check("pyrivet.storage._sqlite", "from ._base import ActorStore") == []
    assert check("pyrivet.testing._x", "from ..client import Client") == []
    assert check("pyrivet", "from .cli import main", is_package=True) == []
    assert check("pyrivet.__main__", "from pyrivet.cli import main") == []


def test_import_resolution() -> None:
    modules = {"pyrivet.a", "pyrivet.a.b", "pyrivet.a.c"}
    found = imports_of(
        "from . import b, name\nfrom .c import x\nimport json",
        "pyrivet.a",
        is_package=True,
        modules=modules,
    )
    assert [i.target for i in found] == ["pyrivet.a.b", "pyrivet.a", "pyrivet.a.c", "json"]
    found = imports_of("from ..a import c", "pyrivet.a.b", modules=modules)
    assert [i.target for i in found] == ["pyrivet.a.c"]


def test_cycle_checker_reports_each_cycle_as_its_modules() -> None:
    graph = {
        "a": {"b"},
        "b": {"c", "d"},
        "c": {"a"},
        "d": set(),
        "e": {"e"},
        "f": {"g"},
        "g": {"f", "a"},
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]
    assert edges_on_cycles(graph) == {
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("e", "e"),
        ("f", "g"),
        ("g", "f"),
    }
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_cycle_checker_sees_function_level_and_type_only_imports() -> None:
    modules = {"pyrivet.p.x", "pyrivet.p.y"}

    def graph(x_source: str, y_source: str) -> dict[str, set[str]]:
        return import_graph(
            {
                "pyrivet.p.x": imports_of(x_source, "pyrivet.p.x", modules=modules),
                "pyrivet.p.y": imports_of(y_source, "pyrivet.p.y", modules=modules),
            }
        )

    in_function = graph("from .y import Y", "def f():\n    from .x import X")
    assert find_cycles(in_function) == [["pyrivet.p.x", "pyrivet.p.y", "pyrivet.p.x"]]
    type_only = graph("from .y import Y", "if TYPE_CHECKING:\n    from .x import X")
    assert find_cycles(type_only) == [["pyrivet.p.x", "pyrivet.p.y", "pyrivet.p.x"]]
    assert find_cycles(graph("from .y import Y", "")) == []


def test_function_level_import_checker() -> None:
    source = "\n".join(
        [
            "import os",
            "try:",
            "    import uvloop",
            "except ImportError:",
            "    uvloop = None",
            "def f():",
            "    import json",
            "    import fcntl",
            "class C:",
            "    def m(self):",
            "        from .other import thing",
            "g = lambda: __import__('x')",
        ]
    )
    found = function_level_imports(imports_of(source, "pyrivet.p.m", modules={"pyrivet.p.other"}))
    assert [(i.line, i.target) for i in found] == [(7, "json"), (11, "pyrivet.p.other")]
