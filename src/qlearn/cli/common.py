"""What the ``qlearn`` subcommands share: exit codes, the one-line error style, the environment options
and their translation into ``gymnasium.make`` keywords, table column names, the exact score from an env's
model, off-screen rendering and JSON output.

It imports no other ``qlearn.cli`` module, so every subcommand module can import it and the command
line's import graph has no cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

from qlearn.envs.info import FROZEN_LAKE_GRID, env_info
from qlearn.envs.tabular import TabularMDP
from qlearn.errors import QlearnError
from qlearn.evaluation import exact_success

EXIT_USAGE = 2
"""A mistake in the command line or the files it names (one ``qlearn: error: ...`` line on stderr)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: the run stopped and kept what it learned."""


def one_line(message: object) -> str:
    """The message with control characters escaped, so an error is always exactly one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(message))


class Parser(argparse.ArgumentParser):
    """argparse that reports errors in qlearn's one-line style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"qlearn: error: {one_line(message)} (see: {self.prog} --help)\n")


def add_env_options(p: argparse.ArgumentParser) -> None:
    """``--map-name``, ``--map``, ``--slippery``/``--no-slippery``, ``--env-arg``: read by :func:`env_kwargs_from`."""
    g = p.add_argument_group("environment options")
    g.add_argument("--map-name", help="FrozenLake map: 4x4 or 8x8")
    g.add_argument("--map", dest="desc", help="custom FrozenLake map as rows, e.g. SFFF,FHFH,FFFH,HFFG")
    sl = g.add_mutually_exclusive_group()
    sl.add_argument("--slippery", dest="slippery", action="store_true", default=None, help="slippery ice")
    sl.add_argument("--no-slippery", dest="slippery", action="store_false", help="deterministic moves")
    g.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other gymnasium.make keyword (JSON value or string); repeatable",
    )


def env_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """gymnasium.make keywords from --map-name/--map/--slippery/--env-arg.

    A ``--map`` is checked against the tiles of the env's grid (its :func:`env_info`; FrozenLake's for an
    env that reads no grid), so a bad map is a one-line error before any env is built.
    """
    kwargs: dict[str, Any] = {}
    for item in args.env_arg:
        if "=" not in item:
            raise QlearnError(f"bad --env-arg {item!r}: expected KEY=VALUE, e.g. --env-arg is_slippery=false")
        key, raw = item.split("=", 1)
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    if args.map_name:
        kwargs["map_name"] = args.map_name
    if args.desc:
        grid = env_info(args.env_id or "").grid or FROZEN_LAKE_GRID
        kwargs["desc"] = grid.parse_map(args.desc)
    if args.slippery is not None:
        kwargs["is_slippery"] = args.slippery
    return kwargs


def action_columns(env: Any, n_actions: int) -> tuple[list[str], int]:
    """Headers of a table's action columns (the env's action names where known, ``a0, a1, ...`` otherwise)
    and the column width that fits them and a number (at least 6)."""
    names = list(env_info(env).names_for(n_actions) or [f"a{i}" for i in range(n_actions)])
    return names, max([6, *map(len, names)])


def exact_score(agent: Any, env: Any) -> float | None:
    """The greedy policy's exact expected return within the time limit, from the env's model (``P``);
    None for an env without one. On FrozenLake it is the success probability."""
    if not hasattr(env.unwrapped, "P"):
        return None
    return exact_success(agent, TabularMDP.from_env(env))


def emit_json(data: dict[str, Any]) -> None:
    """``data`` on stdout as indented JSON (numpy arrays and numbers as lists and numbers)."""
    print(json.dumps(data, indent=2, default=_jsonable))


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def offscreen() -> None:
    """Let pygame render without a window or a display (and without sound), unless the user set a driver."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def note(msg: str) -> None:
    """A remark for the person at the terminal, on stderr (stdout stays machine-readable)."""
    print(msg, file=sys.stderr)
