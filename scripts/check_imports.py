#!/usr/bin/env python3
"""Check mlem_lib's import graph: no cycles, and no Prefect in the core.

The graph is read from the source with :mod:`ast` (nothing is imported): every
``import`` and ``from ... import`` of an ``mlem_lib`` module is an edge, including
the lazy imports inside functions (a cycle through a lazy import is still a cycle in
the design: the two modules cannot be understood or changed apart). Imports under
``if TYPE_CHECKING:`` are left out: they only exist for the type checker.

The core is every module of ``mlem_lib`` outside ``mlem_lib.prefect``; it must not
import ``prefect`` (or ``prefect_*`` integrations) nor ``mlem_lib.prefect``.

Usage::

    python scripts/check_imports.py            # exit 1 and one line per problem
    python scripts/check_imports.py --graph    # also print the edges

Exit status 0 when the graph is clean.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "mlem_lib"
PREFECT_LAYER = f"{PACKAGE}.prefect"


def module_files(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of the package under ``root``."""
    found: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, int]]:
    """Every import statement outside ``if TYPE_CHECKING:`` blocks, with its line."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, node.lineno
        stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(module: str, path: Path, files: dict[str, Path]) -> list[tuple[str, int]]:
    """``(absolute imported name, line)`` for each import in a module's source.

    ``from a.b import c`` gives ``a.b.c`` when that is a module of ``files`` (a
    submodule, so the edge goes to it, as ``import a.b.c`` would), else ``a.b``. Like
    ``import a.b.c``, it is not counted as importing the package ``a.b`` itself: the
    graph has no implicit edges to parent packages.
    """
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[str, int]] = []
    for node, line in _imports(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, line) for alias in node.names)
            continue
        target = _absolute(module, is_package, node)
        submodules = [f"{target}.{alias.name}" for alias in node.names
                      if f"{target}.{alias.name}" in files]
        out.extend((name, line) for name in submodules)
        if len(submodules) < len(node.names):  # at least one attribute of the module
            out.append((target, line))
    return out


def build_graph(root: Path) -> tuple[dict[str, dict[str, int]], list[str]]:
    """The import graph of the package (``{module: {imported module: line}}``) and the
    Prefect violations found on the way."""
    files = module_files(root)
    graph: dict[str, dict[str, int]] = {m: {} for m in files}
    problems: list[str] = []
    for module, path in files.items():
        in_core = not (module == PREFECT_LAYER or module.startswith(PREFECT_LAYER + "."))
        for name, line in imported_names(module, path, files):
            top = name.split(".")[0]
            where = f"{path.relative_to(root)}:{line}"
            if in_core and (top == "prefect" or top.startswith("prefect_") or
                            name == PREFECT_LAYER or name.startswith(PREFECT_LAYER + ".")):
                problems.append(f"{where}: the core imports {name} (Prefect belongs to "
                                f"{PREFECT_LAYER}, which the core never imports)")
            if name in files and name != module:
                graph[module].setdefault(name, line)
    return graph, sorted(set(problems))


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def cycle_path(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One concrete cycle inside a strongly connected component, as ``a -> b -> a``."""
    members = set(component)
    start = component[0]
    # breadth-first search from start back to start inside the component
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 \
                        else [start, start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return component


def check(root: Path) -> list[str]:
    """Every problem as one line (empty when the graph is clean)."""
    graph, problems = build_graph(root)
    for component in find_cycles(graph):
        path = cycle_path(graph, component)
        steps = "".join(f" -[line {graph[a][b]}]-> {b}"
                        for a, b in itertools.pairwise(path))
        problems.append(f"import cycle among {len(component)} modules "
                        f"({', '.join(component)}): {path[0]}{steps}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                        help="the repository root (default: this script's repository)")
    parser.add_argument("--graph", action="store_true", help="print every edge too")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.graph:
        graph, _ = build_graph(root)
        for module in sorted(graph):
            for target, line in sorted(graph[module].items()):
                print(f"{module} -> {target} (line {line})")
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{PACKAGE}: {len(module_files(root))} modules, no import cycle, "
              "no Prefect import in the core")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
