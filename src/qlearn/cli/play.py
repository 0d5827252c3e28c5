"""``qlearn play``: a person plays FrozenLake in the terminal, with an agent's Q-values as advice.

Keys: arrow keys or w/a/s/d to move, q to quit. On a terminal keys act at once; from a pipe, each
character of the input is one key (so ``printf 'ddss' | qlearn play`` works in scripts and tests).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from qlearn.errors import QlearnError

ACTIONS = {"a": 0, "s": 1, "d": 2, "w": 3, "LEFT": 0, "DOWN": 1, "RIGHT": 2, "UP": 3}
NAMES = ["left", "down", "right", "up"]
ARROWS = ["←", "↓", "→", "↑"]
_ESC = {"A": "UP", "B": "DOWN", "C": "RIGHT", "D": "LEFT"}


def _keys_tty() -> Iterator[str]:
    import termios
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


def render(desc: np.ndarray, pos: int, q: np.ndarray | None) -> str:
    """The lake with the player (``P``) and, with an agent, the suggested move on each frozen tile."""
    desc = np.asarray(desc).astype(str)
    rows, cols = desc.shape
    lines = []
    for r in range(rows):
        cells = []
        for c in range(cols):
            s = r * cols + c
            tile = desc[r, c]
            if s == pos:
                cells.append("P")
            elif q is not None and tile in "SF":
                cells.append(ARROWS[int(q[s].argmax())])
            else:
                cells.append(tile)
        lines.append(" ".join(cells))
    return "\n".join(lines)


def play(args: Any, env_kwargs: dict[str, Any]) -> int:
    from qlearn.envs import make_env
    from qlearn.runs import read_run

    agent = None
    if args.run:
        run = read_run(args.run)
        env = run.make_env()
        agent = run.load_agent(env)
        env_id = run.env_id
    else:
        env = make_env(args.env_id, **env_kwargs)
        env_id = args.env_id
    from qlearn.envs.tabular import TabularMDP

    desc = TabularMDP.from_env(env).grid if hasattr(env.unwrapped, "P") else None
    if desc is None:
        raise QlearnError(f"play needs a grid world with a map such as FrozenLake-v1; {env_id} has none")
    q = agent.q_table(0) if agent is not None else None
    keys = _keys_tty() if sys.stdin.isatty() else _keys_pipe()
    out = io.StringIO() if args.json else sys.stdout  # --json: the board is drawn nowhere
    moves: list[dict[str, Any]] = []
    games_log: list[dict[str, Any]] = []
    state, _ = env.reset(seed=args.seed)
    ret, steps, games, wins = 0.0, 0, 0, 0
    out.write(f"{env_id}: reach G without falling into an H. Keys: arrows or w/a/s/d, q quits.\n"
              f"{'P is you; arrows show the agent greedy move.' if q is not None else 'P is you.'}\n")

    def show() -> None:
        out.write("\n" + render(desc, int(state), q) + "\n")
        if q is not None:
            vals = "  ".join(f"{n} {v:.2f}" for n, v in zip(NAMES, q[int(state)]))
            out.write(f"state {int(state)}  Q: {vals}  -> agent suggests {NAMES[int(q[int(state)].argmax())]}\n")
        else:
            out.write(f"state {int(state)}\n")
        out.write("move> ")
        out.flush()

    show()
    for key in keys:
        if key == "q":
            break
        if key not in ACTIONS:
            continue
        action = ACTIONS[key]
        prev = int(state)
        state, reward, term, trunc, _ = env.step(action)
        ret += float(reward)
        steps += 1
        moved = _moved(prev, int(state), action, desc)
        slid = "" if moved else " (the ice slid you elsewhere)"
        moves.append({"game": games + 1, "from": prev, "action": NAMES[action], "to": int(state),
                      "slid": not moved, "reward": float(reward),
                      **({"agent_suggested": NAMES[int(q[prev].argmax())]} if q is not None else {})})
        out.write(f"{NAMES[action]}{slid}\n")
        if term or trunc:
            games += 1
            wins += ret > 0
            verdict = "reached the goal!" if ret > 0 else ("fell into a hole." if term else "ran out of time.")
            games_log.append({"steps": steps, "return": ret,
                              "outcome": "goal" if ret > 0 else ("hole" if term else "time limit")})
            out.write(f"\n{render(desc, int(state), q)}\nYou {verdict} {steps} steps. "
                      f"Games {games}, won {wins}. New game.\n")
            state, _ = env.reset()
            ret, steps = 0.0, 0
        show()
    out.write(f"\nbye: {games} games, {wins} won\n")
    if args.json:
        print(json.dumps({"env_id": env_id, "games": games_log, "won": wins, "moves": moves,
                          "unfinished_steps": steps}, indent=2))
    return 0


def _moved(prev: int, new: int, action: int, desc: np.ndarray) -> bool:
    rows, cols = np.asarray(desc).shape
    r, c = divmod(prev, cols)
    dr, dc = [(0, -1), (1, 0), (0, 1), (-1, 0)][action]
    r2, c2 = min(max(r + dr, 0), rows - 1), min(max(c + dc, 0), cols - 1)
    return new == r2 * cols + c2
