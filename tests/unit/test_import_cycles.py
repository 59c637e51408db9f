"""No import cycle among the modules of connectors/: each one can be read, and loaded, knowing only
those below it (the registry is a plain look-up that the runtime fills; the service's steps sit
below the service).

Read from the source with ast, not by importing it: every import statement counts, at the top of a
module or inside a function (a deferred import still ties the two modules), ``TYPE_CHECKING``
blocks too. An import names the module it reads from (``from .store import TaskStore``:
connectors/store/__init__.py; ``from . import literals``: connectors/literals/, not
connectors/__init__.py); the parent packages Python loads on the way are not counted. Modules loaded by name at run time (``CONNECTOR_MODULES``,
entry points) are not imports here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "connectors"
ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name; a package by its own name (its __init__.py)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from . import literals` reads connectors/literals/, not connectors/
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
    return {imported for imported in found if imported in modules and imported != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read() -> None:
    graph = import_graph()
    assert "connectors.registry" in graph["connectors.runtime"]
    assert "connectors.builtin" in graph["connectors.runtime"]
    assert "connectors.literals" in graph["connectors.create"]  # `from . import literals`
    assert "connectors" not in graph["connectors.create"]
    assert "connectors.store" in graph["connectors.service"]  # `from .store import ...`
    assert "connectors.runtime" in graph["connectors.cli"]  # a deferred import, inside a function


def test_the_registry_imports_no_connector() -> None:
    graph = import_graph()
    assert not {"connectors.builtin", "connectors.flyte_sdk", "connectors.runtime"} & graph["connectors.registry"]


def test_no_module_of_connectors_imports_itself_round_a_circle() -> None:
    graph = import_graph()
    described = [
        ", ".join(circle) + ": " + "; ".join(f"{a} imports {sorted(graph[a] & set(circle))}" for a in circle)
        for circle in cycles(graph)
    ]
    assert not described, "import cycles among connectors/ modules:\n" + "\n".join(described)


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
