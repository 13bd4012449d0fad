"""Import structure of the reusable apps beyond the import-linter contracts.

``lint-imports`` (``make lint``) checks the layers; these tests check what its
contracts do not say: no module of ``accounts`` or ``maestrano_integration`` is part
of an import cycle (function-level imports included, as grimp counts them), and
``accounts`` hides nothing in function-level imports (only ``AppConfig.ready()``
imports at call time, where Django requires it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("accounts", "maestrano_integration")


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def test_no_import_cycle_in_accounts_or_maestrano_integration():
    graph = grimp.build_graph(*CHECKED)
    modules = {name for name in graph.modules if name.split(".")[0] in CHECKED}

    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")

    assert _cycles(graph, {"a", "b", "c"}) == [["a", "b"]]


def _function_level_imports(path: Path) -> list[str]:
    """``file:line`` of each import inside a function, except ``AppConfig.ready()``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name == "ready" and path.name == "apps.py":
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_accounts_imports_at_module_level_only():
    files = [path for path in (ROOT / "accounts").rglob("*.py") if "migrations" not in path.parts]

    found = [where for path in sorted(files) for where in _function_level_imports(path)]

    assert found == []
