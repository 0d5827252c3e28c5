"""The range a discounted return can take in an environment: C51's support, from what the env says.

Where the env has a model ``P`` (toy text) the range is exact: the lowest and highest return any path of
positive probability can collect, from any state (FrozenLake: [0, 1]). Otherwise, with per-step rewards
in ``[r_lo, r_hi]`` known for the env's family (classic control's fixed rewards, MinAtar's +1 per point,
Atari's training rewards clipped to their sign) and bootstrapping through time limits as DQN does,
returns lie in ``[min(0, r_lo), max(0, r_hi)] / (1 - gamma)``. Otherwise the range is unknown (None).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qlearn.envs.info import base_name
from qlearn.envs.pixels import family
from qlearn.envs.tabular import Transitions

REWARD_RANGES: dict[str, tuple[float, float]] = {
    "CartPole": (1.0, 1.0),
    "MountainCar": (-1.0, -1.0),
    "Acrobot": (-1.0, 0.0),
}
"""Per-step rewards of env families (id without namespace and version) with fixed rewards."""


def reward_range(env: Any) -> tuple[float, float] | None:
    """``(r_lo, r_hi)`` of the per-step rewards ``env`` gives in training, or None where unknown."""
    env_id = env.spec.id if env.spec else ""
    kind = family(env_id)
    if kind == "minatar":
        return 0.0, 1.0
    protocol = getattr(env, "protocol", None) or {}
    if kind == "atari" and protocol.get("clip_rewards", True):
        return -1.0, 1.0
    return REWARD_RANGES.get(base_name(env_id))


def model_return_range(env: Any, gamma: float) -> tuple[float, float]:
    """The lowest and highest discounted return any run of ``env``'s model ``P`` can have from any state
    (every outcome of positive probability counts: a slippery lake's luckiest path reaches the goal)."""
    return transitions_return_range(Transitions.from_env(env), gamma)


def transitions_return_range(
    t: Transitions, gamma: float, tol: float = 1e-9, max_iter: int = 100_000
) -> tuple[float, float]:
    """:func:`model_return_range` of a model already read."""
    possible = t.prob > 0
    cont = np.where(possible & ~t.terminated, gamma, 0.0)
    lo, hi = np.zeros(t.prob.shape[0]), np.zeros(t.prob.shape[0])
    for _ in range(max_iter):
        new_hi = np.where(possible, t.reward + cont * hi[t.next_state], -np.inf).max(axis=(1, 2))
        new_lo = np.where(possible, t.reward + cont * lo[t.next_state], np.inf).min(axis=(1, 2))
        done = max(np.abs(new_hi - hi).max(), np.abs(new_lo - lo).max()) < tol
        lo, hi = new_lo, new_hi
        if done:
            break
    return float(min(lo.min(), 0.0)), float(max(hi.max(), 0.0))


def return_bounds(env: Any, gamma: float) -> tuple[float, float] | None:
    """``(v_min, v_max)``: the range of the discounted return in ``env`` at ``gamma`` (None: unknown)."""
    if hasattr(env.unwrapped, "P"):
        lo, hi = model_return_range(env, gamma)
    else:
        got = reward_range(env)
        if got is None or gamma >= 1:
            return None
        lo, hi = min(got[0], 0.0) / (1.0 - gamma), max(got[1], 0.0) / (1.0 - gamma)
    return (lo, hi) if hi > lo else None
