"""``qlearn play``: a person plays a grid world (FrozenLake) in the terminal, with an agent's Q-values as advice.

Keys: arrow keys or w/a/s/d to move, q to quit. On a terminal keys act at once; from a pipe, each
character of the input is one key (so ``printf 'ddss' | qlearn play`` works in scripts and tests). The
map, the action each key takes and the arrows come from the env's :func:`~qlearn.envs.info.env_info`
grid, so any grid world with a ``desc`` map can be played.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from qlearn.cli.common import add_env_options, env_kwargs_from
from qlearn.envs import make_env
from qlearn.envs.info import GridInfo, env_info, grid_map
from qlearn.envs.make import success_of
from qlearn.errors import QlearnError
from qlearn.runs import read_run

KEY_STEPS = {
    "a": (0, -1),
    "s": (1, 0),
    "d": (0, 1),
    "w": (-1, 0),
    "LEFT": (0, -1),
    "DOWN": (1, 0),
    "RIGHT": (0, 1),
    "UP": (-1, 0),
}
"""The (row, column) step each key asks for; the env's grid says which action takes it."""
_ESC = {"A": "UP", "B": "DOWN", "C": "RIGHT", "D": "LEFT"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("play", help="play FrozenLake in the terminal, with the agent's advice")
    p.add_argument("env_id", metavar="ENV_ID", nargs="?", default="FrozenLake-v1")
    p.add_argument("--run", metavar="RUN_DIR", help="show this run's Q-values and suggested move")
    p.add_argument("--seed", type=int, default=None, help="seed of the slippery ice")
    p.add_argument(
        "--json",
        action="store_true",
        help="no board; at the end, every move and game as JSON (for scripted play: keys on stdin)",
    )
    add_env_options(p)
    p.set_defaults(func=run)


def _keys_tty() -> Iterator[str]:
    import termios  # Unix-only modules: imported where a terminal is read, so the CLI loads everywhere
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            ch = sys.stdin.read(1)
            if ch == "\x1b":
                seq = sys.stdin.read(2)
                yield _ESC.get(seq[-1:], "")
            elif ch in ("", "\x03", "\x04"):
                return
            else:
                yield ch.lower()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _keys_pipe() -> Iterator[str]:
    data = sys.stdin.read()
    i = 0
    while i < len(data):
        if data[i] == "\x1b" and i + 2 < len(data):
            yield _ESC.get(data[i + 2], "")
            i += 3
        else:
            yield data[i].lower()
            i += 1


def render(grid: GridInfo, desc: np.ndarray, pos: int, q: np.ndarray | None) -> str:
    """The map with the player (``P``) and, with an agent, its greedy move on each tile that does not end."""
    return "\n".join(grid.draw(desc, None if q is None else q.argmax(axis=1), player=pos))


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn play``."""
    env_kwargs = env_kwargs_from(args)
    agent = None
    if args.run:
        run_info = read_run(args.run)
        env = run_info.make_env()
        agent = run_info.load_agent(env)
        env_id = run_info.env_id
    else:
        env = make_env(args.env_id, **env_kwargs)
        env_id = args.env_id
    info = env_info(env)
    desc = grid_map(env) if hasattr(env.unwrapped, "P") else None
    if desc is None or info.grid is None:
        raise QlearnError(f"play needs a grid world with a map such as FrozenLake-v1; {env_id} has none")
    grid = info.grid
    names = info.names_for(len(grid.moves)) or grid.move_names
    q = agent.q_table(0) if agent is not None else None
    keys = _keys_tty() if sys.stdin.isatty() else _keys_pipe()
    out = io.StringIO() if args.json else sys.stdout  # --json: the board is drawn nowhere
    moves: list[dict[str, Any]] = []
    games_log: list[dict[str, Any]] = []
    state, _ = env.reset(seed=args.seed)
    ret, steps, games, wins = 0.0, 0, 0, 0
    out.write(
        f"{env_id}: reach G without falling into an H. Keys: arrows or w/a/s/d, q quits.\n"
        f"{'P is you; arrows show the agent greedy move.' if q is not None else 'P is you.'}\n"
    )

    def show() -> None:
        out.write("\n" + render(grid, desc, int(state), q) + "\n")
        if q is not None:
            vals = "  ".join(f"{n} {v:.2f}" for n, v in zip(names, q[int(state)]))
            out.write(f"state {int(state)}  Q: {vals}  -> agent suggests {names[int(q[int(state)].argmax())]}\n")
        else:
            out.write(f"state {int(state)}\n")
        out.write("move> ")
        out.flush()

    show()
    for key in keys:
        if key == "q":
            break
        action = grid.action_of_step(KEY_STEPS[key]) if key in KEY_STEPS else None
        if action is None:
            continue
        prev = int(state)
        state, reward, term, trunc, _ = env.step(action)
        ret += float(reward)
        steps += 1
        moved = grid.target(desc, prev, action) == int(state)
        slid = "" if moved else " (the ice slid you elsewhere)"
        moves.append(
            {
                "game": games + 1,
                "from": prev,
                "action": names[action],
                "to": int(state),
                "slid": not moved,
                "reward": float(reward),
                **({"agent_suggested": names[int(q[prev].argmax())]} if q is not None else {}),
            }
        )
        out.write(f"{names[action]}{slid}\n")
        if term or trunc:
            games += 1
            won = success_of(env_id, ret, bool(term), bool(trunc))
            wins += won
            verdict = "reached the goal!" if won else ("fell into a hole." if term else "ran out of time.")
            games_log.append(
                {"steps": steps, "return": ret, "outcome": "goal" if won else ("hole" if term else "time limit")}
            )
            out.write(
                f"\n{render(grid, desc, int(state), q)}\nYou {verdict} {steps} steps. "
                f"Games {games}, won {wins}. New game.\n"
            )
            state, _ = env.reset()
            ret, steps = 0.0, 0
        show()
    out.write(f"\nbye: {games} games, {wins} won\n")
    if args.json:
        print(
            json.dumps(
                {"env_id": env_id, "games": games_log, "won": wins, "moves": moves, "unfinished_steps": steps}, indent=2
            )
        )
    return 0
