"""Imports only go down the layer table of DESIGN.md; nothing imports the facade."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "pyrivet"

# (module prefix, layer). The longest matching prefix wins. 3.5 is the client (L3').
LAYERS: list[tuple[str, float]] = [
    ("pyrivet.errors", 0),
    ("pyrivet.types", 0),
    ("pyrivet._version", 0),
    ("pyrivet._util", 0),
    ("pyrivet._codec", 1),
    ("pyrivet._protocol", 1),
    ("pyrivet.storage._base", 1),
    ("pyrivet.actor", 2),
    ("pyrivet.workflow", 2),
    ("pyrivet.storage", 2),
    ("pyrivet._runtime", 3),
    ("pyrivet.client", 3.5),
    ("pyrivet.server", 4),
    ("pyrivet.inspector", 4),
    ("pyrivet._cluster", 4),
    ("pyrivet.testing", 5),
    ("pyrivet.cli", 5),
    ("pyrivet.__main__", 5),
]
CLIENT = 3.5


def layer_of(module: str) -> float | None:
    best: tuple[int, float] | None = None
    for prefix, layer in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > best[0]
        ):
            best = (len(prefix), layer)
    return best[1] if best else None


def may_import(src_layer: float, dst_layer: float) -> bool:
    if src_layer == CLIENT:
        return dst_layer <= 1 or dst_layer == CLIENT
    if dst_layer == CLIENT:
        return src_layer >= 5
    return dst_layer <= src_layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (including TYPE_CHECKING and function-level ones)."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "pyrivet":
                # `from . import x` imports submodules x; `from pyrivet import x` the facade.
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.append((node.lineno, sub if layer_of(sub) is not None else target))
            else:
                found.append((node.lineno, target))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unmapped = [module_name(p) for p in SOURCES if p != PACKAGE / "__init__.py"]
    unmapped = [m for m in unmapped if layer_of(m) is None]
    assert unmapped == [], f"add these modules to DESIGN.md's layer table and LAYERS: {unmapped}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_go_down_the_layers(path: Path) -> None:
    source = module_name(path)
    if source == "pyrivet":
        return  # the facade may import anything
    src_layer = layer_of(source)
    assert src_layer is not None
    violations = []
    for lineno, target in imported_modules(path):
        if target == "pyrivet":
            violations.append(f"line {lineno}: imports the facade `pyrivet`")
            continue
        if not target.startswith("pyrivet"):
            top = target.partition(".")[0]
            if src_layer == 0 and top not in sys.stdlib_module_names and top != "__future__":
                violations.append(f"line {lineno}: L0 imports non-stdlib {target}")
            continue
        dst_layer = layer_of(target)
        assert dst_layer is not None, f"{target} has no layer"
        if not may_import(src_layer, dst_layer):
            violations.append(f"line {lineno}: L{src_layer} imports {target} (L{dst_layer})")
    assert violations == []


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    assert not may_import(layer_of("pyrivet.actor._definition") or 0, 3)
    assert not may_import(CLIENT, 2)
    assert not may_import(3, CLIENT)
    assert may_import(5, CLIENT)
    assert may_import(3, 1)
