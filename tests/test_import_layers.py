"""The layer table in docs/architecture.md is the import contract of src/qmtkit.

Every module is placed in exactly one row of that table; a module may import only modules of its
own layer or lower ones, and no modules import each other in a circle. The graph is read with
``ast`` (nothing is imported); imports under ``if TYPE_CHECKING:`` do not run and are not counted,
imports inside functions are.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "qmtkit"
DOC = ROOT / "docs" / "architecture.md"

Graph = dict[str, set[str]]


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """All nodes but those under ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports when it runs."""
    raw: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            raw |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from pkg import mod`` is an import of pkg.mod (which loads pkg first anyway)
            subs = {f"{target}.{a.name}" for a in node.names} & known
            raw |= subs if len(subs) == len(node.names) else {target, *subs}
    out: set[str] = set()
    for target in raw:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def import_graph() -> Graph:
    """Module -> the package modules it imports at run time."""
    files = module_names()
    return {m: imports_of(m, f, set(files)) for m, f in files.items()}


def layer_table() -> dict[str, int]:
    """The ``## Layers`` table of architecture.md: module pattern -> layer number."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        for pattern in re.findall(r"`([^`]+)`", cells[1]):
            assert pattern not in table, f"{pattern} stands in two rows of the layer table"
            table[pattern] = int(cells[0])
    return table


def place(module: str, table: dict[str, int]) -> int | None:
    """The layer of ``qmtkit.<...>``: the longest pattern that names it (``x.*`` names x's tree)."""
    rel = module.removeprefix("qmtkit").removeprefix(".") or "qmtkit"
    best: tuple[int, int] | None = None
    for pattern, layer in table.items():
        stem = pattern.removesuffix(".*")
        hit = rel == stem or (pattern.endswith(".*") and rel.startswith(stem + "."))
        if hit and (best is None or len(stem) > best[0]):
            best = (len(stem), layer)
    return None if best is None else best[1]


def upward_imports(graph: Graph, table: dict[str, int]) -> list[str]:
    """Every import that runs from a lower layer to a higher one."""
    out = []
    for a, targets in sorted(graph.items()):
        la = place(a, table)
        for b in sorted(targets):
            lb = place(b, table)
            if la is not None and lb is not None and lb > la:
                out.append(f"{a} (layer {la}) imports {b} (layer {lb})")
    return out


def cycles(graph: Graph) -> list[list[str]]:
    """Groups of modules that import each other (a package importing its own parts excluded)."""

    def edges(a: str) -> set[str]:
        return {b for b in graph[a] if not a.startswith(b + ".") and not b.startswith(a + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# --------------------------------------------------------------------------- the contract


def test_every_module_has_a_row_in_the_layer_table() -> None:
    table = layer_table()
    unplaced = sorted(m for m in module_names() if place(m, table) is None)
    assert not unplaced, f"add these modules to the layer table of {DOC.name}: {unplaced}"


def test_every_row_of_the_layer_table_names_a_module() -> None:
    names = {m.removeprefix("qmtkit").removeprefix(".") or "qmtkit" for m in module_names()}
    stale = [p for p in layer_table() if p.removesuffix(".*") not in names]
    assert not stale, f"the layer table of {DOC.name} names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph(), layer_table()) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(import_graph()) == []


# --------------------------------------------------------------------------- the checker itself


def test_an_upward_import_is_reported() -> None:
    graph = {"qmtkit.models": {"qmtkit.client"}, "qmtkit.client": {"qmtkit.models"}}
    table = {"models": 0, "client": 4}
    assert upward_imports(graph, table) == [
        "qmtkit.models (layer 0) imports qmtkit.client (layer 4)"
    ]


def test_a_circle_is_reported() -> None:
    graph = {"qmtkit.a": {"qmtkit.b"}, "qmtkit.b": {"qmtkit.c"}, "qmtkit.c": {"qmtkit.a"}}
    assert cycles(graph) == [["qmtkit.a", "qmtkit.b", "qmtkit.c"]]


def test_the_longest_pattern_places_a_module() -> None:
    table = {"data.*": 2, "data.schema": 0}
    assert (place("qmtkit.data.schema", table), place("qmtkit.data.api", table)) == (0, 2)
    assert place("qmtkit.database", table) is None


def test_type_only_imports_do_not_count(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from qmtkit.client import Client\n"
        "def late():\n    from qmtkit.models import Tick\n"
    )
    known = {"qmtkit", "qmtkit.client", "qmtkit.models", "qmtkit.m"}
    assert imports_of("qmtkit.m", f, known) == {"qmtkit.models"}


def test_from_a_package_import_a_module_is_an_import_of_the_module(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from qmtkit import models\nfrom qmtkit import __version__\n")
    known = {"qmtkit", "qmtkit.models", "qmtkit.m"}
    assert imports_of("qmtkit.m", f, known) == {"qmtkit.models", "qmtkit"}
