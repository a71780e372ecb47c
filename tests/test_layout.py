"""The package's shape: its modules import each other without cycles.

Every ``import`` in the package counts, at module level or inside a function (a deferred import is
still a dependency), except those under ``if TYPE_CHECKING:``. An import of ``a.b`` is an edge to the
module ``a.b`` (its package's ``__init__`` re-exports; no module may import the ``__init__`` of a
package it belongs to)."""

from __future__ import annotations

import ast
from pathlib import Path

import synthsae

ROOT = Path(synthsae.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted([*ROOT.rglob("*.py"), ROOT / "_core.pyi"]):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(ast.parse(path.read_text()), modules) - {name} for name, path in modules.items()}


def test_graph_sees_the_package():
    graph = import_graph()
    assert "synthsae.world.model" in graph and "synthsae.saes.registry" in graph
    assert "synthsae.world.config" in graph["synthsae.world.model"]
    # deferred imports count: the CLI loads the bench only when a command needs it
    assert any(m.startswith("synthsae.bench") for m in graph["synthsae.cli.commands"])


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_module_imports_its_own_package_init():
    graph = import_graph()
    for name, deps in graph.items():
        for dep in deps:
            assert not name.startswith(dep + "."), f"{name} imports its package {dep}"
