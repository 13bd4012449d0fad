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
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("maestrano_accounts", "maestrano_integration", "maestrano_sync")
#: Function-level imports kept on purpose: ``maestrano_sync.register`` must be importable before
#: the apps are ready (a models module uses it), so it imports the registry on call.
ALLOWED_FUNCTION_LEVEL = {"maestrano_sync/__init__.py"}


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


def test_no_import_cycle_among_the_reusable_apps_modules():
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


def _sources(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


@pytest.mark.parametrize("package", ["maestrano_accounts", "maestrano_sync"])
def test_imports_at_module_level_only(package):
    found = [
        where
        for path in _sources(package)
        if str(path.relative_to(ROOT)) not in ALLOWED_FUNCTION_LEVEL
        for where in _function_level_imports(path)
    ]

    assert found == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imported_from(module: str, node: ast.ImportFrom, *, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _private_names_used(path: Path) -> list[str]:
    return _private_names_in(
        path.read_text(), module=_module_name(path), is_package=path.name == "__init__.py"
    )


def _private_names_in(source: str, *, module: str, is_package: bool) -> list[str]:
    """``module: name`` for each private name of another of our modules that ``source`` uses."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> one of our modules imported as such
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_from(module, node, is_package=is_package)
            if source.split(".")[0] not in CHECKED or source == module:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{module}: {source}.{alias.name}")
                elif _is_module(f"{source}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in CHECKED and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{module}: {modules[node.value.id]}.{node.attr}")
    return found


@pytest.mark.parametrize("package", CHECKED)
def test_no_module_uses_another_modules_private_names(package):
    found = [where for path in _sources(package) for where in _private_names_used(path)]

    assert found == []


def test_the_private_name_check_finds_one():
    source = "from . import pipeline\nfrom .locks import _private\npipeline._hidden\n"

    found = _private_names_in(source, module="maestrano_sync.probe", is_package=False)

    assert found == [
        "maestrano_sync.probe: maestrano_sync.locks._private",
        "maestrano_sync.probe: maestrano_sync.pipeline._hidden",
    ]


#: The modules that may name the IdMap model outside type annotations: its owner, its
#: definition and the admin's registration of it.
IDMAP_OWNERS = {
    "maestrano_sync/idmap.py",
    "maestrano_sync/admin.py",
    "maestrano_sync/models/__init__.py",
    "maestrano_sync/models/mapping.py",
}
APPS = (
    "maestrano_accounts",
    "maestrano_integration",
    "maestrano_sync",
    "crm",
    "maestrano_sandbox",
    "config",
)


def _idmap_uses_in(source: str) -> list[int]:
    """Lines where ``source`` queries, builds or names the IdMap model or its table: any use
    of the name ``IdMap`` but in imports and type annotations, and the strings ``"IdMap"``
    (``apps.get_model``) and ``…_idmap`` (raw SQL)."""
    tree = ast.parse(source)
    in_annotations: set[int] = set()
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            annotations.append(node.returns)
        for annotation in annotations:
            in_annotations.update(id(inner) for inner in ast.walk(annotation))
    found = []
    for node in ast.walk(tree):
        if id(node) in in_annotations:
            continue
        if (isinstance(node, ast.Name) and node.id == "IdMap") or (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (node.value == "IdMap" or "sync_idmap" in node.value.lower())
        ):
            found.append(node.lineno)
    return sorted(found)


def test_only_sync_idmap_reads_or_writes_the_idmap():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in APPS
        for path in _sources(package)
        if str(path.relative_to(ROOT)) not in IDMAP_OWNERS
        for line in _idmap_uses_in(path.read_text())
    ]

    assert found == []


def test_the_idmap_check_finds_queries_and_spares_annotations():
    source = (
        "from maestrano_sync.models import IdMap\n"
        "def f(row: IdMap) -> list[IdMap]:\n"
        "    maps: dict[str, IdMap] = {}\n"
        "    IdMap.objects.filter(pk=1).update(connec_id='x')\n"
        "    rows = [IdMap(entity='people')]\n"
        "    model = apps.get_model('maestrano_sync', 'IdMap')\n"
        "    cursor.execute('DELETE FROM maestrano_sync_idmap')\n"
    )

    assert _idmap_uses_in(source) == [4, 5, 6, 7]
