"""The command line's structure: no import cycle among ``qlearn.cli`` modules (imports inside functions
counted), no import of another cli module inside a function, one module per subcommand that sets its own
handler."""

from __future__ import annotations

import ast
from pathlib import Path

import qlearn.cli
from qlearn.cli.main import COMMANDS, build_parser

CLI = Path(qlearn.cli.__file__).parent
PACKAGE = "qlearn.cli"


def cli_modules() -> dict[str, ast.Module]:
    return {f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: ast.parse(p.read_text(), str(p))
            for p in sorted(CLI.glob("*.py"))}


def imported(node: ast.AST, modules: set[str]) -> set[str]:
    """The cli modules one import statement names (``from qlearn.cli import x`` names ``qlearn.cli.x``)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n in modules and n != PACKAGE}


def import_graph() -> dict[str, set[str]]:
    trees = cli_modules()
    return {name: set().union(*(imported(n, set(trees)) for n in ast.walk(tree))) for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_cli_import_graph_has_no_cycle():
    graph = import_graph()
    assert graph["qlearn.cli.main"] >= {"qlearn.cli.train", "qlearn.cli.common"}  # the parser sees the modules
    assert find_cycle(graph) is None, find_cycle(graph)
    assert graph["qlearn.cli.common"] == set(), "common imports no other cli module"


def test_no_cli_module_imports_another_inside_a_function():
    trees = cli_modules()
    names = set(trees)  # parsed once: parsing every module again for each node took minutes
    for name, tree in trees.items():
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            inner = set().union(*(imported(n, names) for n in ast.walk(fn)))
            assert not inner, f"{name}.{fn.name} imports {inner} inside the function"


def test_one_module_per_subcommand_sets_its_handler():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert list(sub.choices) == [m.__name__.rsplit(".", 1)[1] for m in COMMANDS]
    for module in COMMANDS:
        name = module.__name__.rsplit(".", 1)[1]
        func = sub.choices[name].get_default("func")
        assert callable(func) and func.__module__ == module.__name__, name


def test_cli_modules_are_small():
    for path in CLI.glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name
