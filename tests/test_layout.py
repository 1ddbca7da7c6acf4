"""The package's shape: no import cycle, no module over 400 lines, the fast write reached from one place.

Module-level imports are read from the source (``ast``), those under ``if TYPE_CHECKING:`` included: a
type is a dependency too. Imports inside functions are left out: they are kept lazy for cold start.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kvstore"


def _module_name(path: Path) -> str:
    parts = ["kvstore", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements at module level, and inside module-level ``if`` / ``try`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            pending.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    """Each kvstore module (migrations aside) -> the kvstore modules it imports at module level."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "_migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(name, _is_package(path), node)
                # ``from . import x`` may name a submodule; otherwise the module itself is the target.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "kvstore._backends.sqlite.backend" in graph  # the walk sees the sub-packages
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_type_checking_import_is_an_edge() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .x import Y\n")
    assert [node.module for node in _top_level_imports(tree) if isinstance(node, ast.ImportFrom)] == ["x", "typing"]


def test_backends_do_not_import_the_floors_above_them() -> None:
    """The backend seam knows only the pure helpers and the schema floor, never the API built on it."""
    above = {"kvstore._namespace", "kvstore._store", "kvstore._atomic", "kvstore._watch", "kvstore._write"}
    above |= {"kvstore._listing", "kvstore._shared", "kvstore._aio", "kvstore", "kvstore.cli", "kvstore.server"}
    for module, edges in import_graph().items():
        if module.startswith("kvstore._backends"):
            assert not edges & above, (module, edges & above)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400


def test_only_the_write_path_and_the_backends_reach_the_one_statement_write() -> None:
    """``_write`` calls the group commit's ``try_put``, which alone calls the backend's."""
    users = {
        _module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "try_put" in path.read_text() and "_migrations" not in path.parts
    }
    assert users
    assert {user for user in users if not user.startswith("kvstore._backends")} == {"kvstore._write", "kvstore._group"}
