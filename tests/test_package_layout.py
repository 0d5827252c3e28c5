"""The package's shape: no import cycle among ``qlearn``'s modules (imports inside functions counted), no
module over about 400 lines, and agents and envs that know nothing of training or the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import qlearn
from test_cli_layout import find_cycle

ROOT = Path(qlearn.__file__).parent
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the qlearn modules it imports anywhere in its body. ``from pkg import name`` counts the
    submodule ``pkg.name`` where one exists, else ``pkg`` itself."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in mods:
                for a in node.names:
                    deps.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module)
        deps.discard(name)
        graph[name] = deps
    return graph


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_no_module_is_much_over_400_lines():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_lower_layers_do_not_import_upper_ones():
    """Data flows env -> agent -> buffer -> learner -> run folder; the CLI knows the library, not the reverse."""
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith(("qlearn.agents", "qlearn.envs", "qlearn.buffers", "qlearn.nets", "qlearn.rng")):
            assert not {d for d in deps if d.startswith(("qlearn.training", "qlearn.cli"))}, (name, deps)
        if not name.startswith(("qlearn.cli", "qlearn.__main__")):
            assert not {d for d in deps if d.startswith("qlearn.cli")}, (name, deps)
