"""The import layering of the two packages, read from their source (no import runs, no torch needed).

- no import cycle among the modules of `data_checks` and `gatetune`, counting imports inside functions
  too (only `if TYPE_CHECKING:` blocks are left out: they never run);
- `data_checks` never imports `gatetune` (the gates run standalone, without torch);
- no module is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("data_checks", "gatetune")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def imports_of(module: str) -> set[str]:
    """The project modules `module` imports. `from pkg import sub` imports the module pkg.sub (and pkg's
    __init__ only when a name that is not a submodule is taken from it)."""
    path = MODULES[module]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: resolved against this module's package
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
        names = [alias.name for alias in node.names]
        found.update(f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES)
        if any(f"{base}.{name}" not in MODULES for name in names):
            found.add(base)
    return {m for m in found if m in MODULES and m != module}


def test_the_modules_are_found():
    assert {"data_checks", "data_checks.gates", "data_checks.dedup.gate", "gatetune.run", "gatetune.config"} \
        <= set(MODULES)
    assert "gatetune.config" in imports_of("gatetune.run")
    assert "data_checks.registry" in imports_of("data_checks.config")


def test_no_import_cycles():
    graph = {module: imports_of(module) for module in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_data_checks_never_imports_finetune():
    upward = {(m, t) for m in MODULES if m.startswith("data_checks") for t in imports_of(m)
              if t.startswith("gatetune")}
    assert not upward


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module: str):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)}: {lines} lines; split it by concern"
