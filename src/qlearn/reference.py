"""Reference Q-tables.

``COURSE_Q_TABLE`` is the table of the course session (rows: states 0-15 of the slippery 4x4 lake;
columns: left, down, right, up). It equals Q* at gamma 0.99 to two decimals, except that the course
writes 1 for the goal state, where Q* is 0 (the episode ends on arrival, so the goal is never acted in).
"""

from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import QlearnError

COURSE_Q_TABLE = [
    [0.54, 0.53, 0.53, 0.52],
    [0.34, 0.33, 0.32, 0.50],
    [0.44, 0.43, 0.42, 0.47],
    [0.31, 0.31, 0.30, 0.46],
    [0.56, 0.38, 0.37, 0.36],
    [0.0, 0.0, 0.0, 0.0],
    [0.36, 0.2, 0.36, 0.16],
    [0.0, 0.0, 0.0, 0.0],
    [0.38, 0.41, 0.40, 0.59],
    [0.44, 0.64, 0.45, 0.40],
    [0.62, 0.50, 0.40, 0.33],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],
    [0.46, 0.53, 0.74, 0.50],
    [0.73, 0.86, 0.82, 0.78],
    [1.0, 1.0, 1.0, 1.0],
]


def load_reference(spec: str, env: Any, gamma: float) -> tuple[np.ndarray, str]:
    """A reference Q-table: ``optimal`` (value iteration), ``course``, or a .csv/.npy file."""
    from qlearn.envs.tabular import TabularMDP, value_iteration

    if not hasattr(env.observation_space, "n"):
        raise QlearnError(
            "a reference Q-table (--pretrain/--compare) needs an env with discrete states; "
            f"this one has {type(env.observation_space).__name__} observations"
        )
    n_s, n_a = int(env.observation_space.n), int(env.action_space.n)
    if spec == "optimal":
        q, _ = value_iteration(TabularMDP.from_env(env), gamma)
        return q, f"optimal Q* (value iteration, gamma={gamma:g})"
    if spec == "course":
        table = np.asarray(COURSE_Q_TABLE)
        name = "the course's Q-table (Q* of slippery 4x4 at gamma 0.99, 2 decimals)"
    else:
        path = Path(spec)
        if not path.is_file():
            raise QlearnError(f"reference table {spec!r}: not 'optimal', 'course', or an existing .csv/.npy file")
        try:
            table = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=2)
        except (ValueError, OSError) as exc:
            raise QlearnError(f"cannot read Q-table {path}: {exc}") from None
        name = str(path)
    if table.shape != (n_s, n_a):
        raise QlearnError(f"reference table {name} has shape {table.shape}; this env needs {(n_s, n_a)}")
    return table.astype(float), name


def optimal_under(q: np.ndarray, ref: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Per state: is ``q``'s greedy action one of the reference's best actions? (Ties count: in the
    slippery 4x4 lake, left and right are exactly equal in state 6.)"""
    chosen = ref[np.arange(len(q)), q.argmax(1)]
    return chosen >= ref.max(1) - tol


def compare_tables(q: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Max/mean absolute difference and greedy-action agreement over the states in ``mask``."""
    diff = np.abs(q - ref)[mask]
    agree = optimal_under(q, ref)[mask]
    return {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "greedy_agree": int(agree.sum()),
        "states_compared": int(mask.sum()),
    }
