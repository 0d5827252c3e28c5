"""Observation spaces made of parts (``Tuple``, ``Dict``, ``MultiDiscrete``, ``MultiBinary``) as the two kinds
the agents read: ``Discrete`` and ``Box``.

* All parts discrete (Blackjack's ``Tuple(Discrete(32), Discrete(11), Discrete(2))``) and at most
  :data:`MAX_JOINT` combinations: one joint index, ``state = ravel_multi_index(parts, radices)``
  (:class:`JointIndex`), so the tabular agent keeps one row per combination and ``q_table()``, exact
  evaluation and the plots work as on any discrete env. The space is a :class:`JointDiscrete`, which
  remembers the parts: DQN's one-hot encoding of it is the parts' one-hot vectors side by side (45 inputs
  for Blackjack, not 704; :mod:`qlearn.envs.encoding`).
* Otherwise (a ``Box`` among the parts, or too many combinations): Gymnasium's own ``FlattenObservation``,
  discrete parts one-hot and boxes flattened, concatenated in the space's order: a ``Box`` for DQN.

Anything else (``Text``, ``Graph``, ``Sequence``...) gets the one-line error :func:`adapt_observations` raises.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from qlearn.errors import QlearnError

MAX_JOINT = 100_000
"""The most combinations of discrete parts that become one joint index (a table row each)."""

COMPOSITE = (spaces.Tuple, spaces.Dict, spaces.MultiDiscrete, spaces.MultiBinary)


class JointDiscrete(spaces.Discrete):
    """A ``Discrete`` space whose states are combinations of discrete parts: ``radices[i]`` values each."""

    def __init__(self, radices: tuple[int, ...], seed: int | None = None) -> None:
        super().__init__(int(math.prod(radices)), seed=seed)
        self.radices = tuple(int(r) for r in radices)

    def __repr__(self) -> str:
        return f"JointDiscrete({' x '.join(map(str, self.radices))} = {self.n})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JointDiscrete) and other.radices == self.radices


def discrete_parts(space: spaces.Space) -> list[tuple[int, int]] | None:
    """``(values, start)`` of each discrete part in the space's order, or None if any part is not discrete."""
    if isinstance(space, spaces.Discrete):
        return [(int(space.n), int(space.start))]
    if isinstance(space, spaces.MultiBinary):
        return [(2, 0)] * int(np.prod(space.shape))
    if isinstance(space, spaces.MultiDiscrete):
        starts = np.broadcast_to(getattr(space, "start", 0), space.nvec.shape).reshape(-1)
        return [(int(n), int(s)) for n, s in zip(space.nvec.reshape(-1), starts)]
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        parts: list[tuple[int, int]] = []
        for sub in space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces:
            got = discrete_parts(sub)
            if got is None:
                return None
            parts += got
        return parts
    return None


def _leaves(space: spaces.Space, obs: Any) -> list[int]:
    """The values of an observation's discrete parts, in :func:`discrete_parts`' order."""
    if isinstance(space, spaces.Discrete):
        return [int(obs)]
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return [int(v) for v in np.asarray(obs).reshape(-1)]
    if isinstance(space, spaces.Dict):
        return [v for key, sub in space.spaces.items() for v in _leaves(sub, obs[key])]
    assert isinstance(space, spaces.Tuple)
    return [v for sub, part in zip(space.spaces, obs) for v in _leaves(sub, part)]


class JointIndex(gym.ObservationWrapper):
    """Observations of an all-discrete composite space as one joint index (a :class:`JointDiscrete` state)."""

    def __init__(self, env: gym.Env, parts: list[tuple[int, int]]) -> None:
        super().__init__(env)
        self._raw = env.observation_space
        self._radices = tuple(n for n, _ in parts)
        self._starts = np.array([s for _, s in parts], dtype=np.int64)
        self.observation_space = JointDiscrete(self._radices)

    def observation(self, observation: Any) -> int:
        digits = np.asarray(_leaves(self._raw, observation), dtype=np.int64) - self._starts
        return int(np.ravel_multi_index(tuple(digits), self._radices))


def adapt_observations(env: gym.Env, env_id: str) -> gym.Env:
    """``env`` with a ``Discrete`` or ``Box`` observation space: as it is, or wrapped as the module says."""
    space = env.observation_space
    if isinstance(space, (spaces.Discrete, spaces.Box)):
        return env
    if isinstance(space, COMPOSITE):
        parts = discrete_parts(space)
        if parts is not None and math.prod(n for n, _ in parts) <= MAX_JOINT:
            return JointIndex(env, parts)
        try:
            spaces.flatdim(space)
            return gym.wrappers.FlattenObservation(env)
        except (NotImplementedError, ValueError):
            pass
    env.close()
    raise QlearnError(
        f"{env_id} has a {type(space).__name__} observation space; qlearn supports Discrete and Box observations "
        "and Tuple, Dict, MultiDiscrete or MultiBinary spaces made of them"
    )
