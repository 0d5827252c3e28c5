"""K x N environments behind one interface: native batched dynamics where they exist, Gymnasium's
vector API otherwise, and one Gymnasium env as K=1, N=1.

Every batched env here has ``reset() -> obs[K, N, ...]`` and ``step(actions[K, N]) -> (obs, reward,
terminated, truncated, final_obs)`` with same-step autoreset: an env that ends resets inside the step,
``final_obs`` is the true next observation of the transition (what replay memory stores) and ``obs`` what
the agent acts on next. So every step is a real transition and a reset is never stored as one (Gymnasium's
default next-step mode returns a reset step that would have to be skipped). ``state_dict()`` /
``load_state_dict()`` give what a training checkpoint needs to continue the envs exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.envs.batched import BatchedEnv, agent_seeds, native_batched
from qlearn.envs.make import make_env

# Attributes of a Gymnasium env (or wrapper) that are rebuilt, not saved: rendering handles, constants.
_SKIP = {"screen", "clock", "window", "surf", "viewer", "render_mode", "P"}


def _plain(v: Any) -> bool:
    """Values an env's checkpointed state may hold: numbers, text, arrays, generators, containers of those."""
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.generic, np.random.Generator)):
        return True
    if isinstance(v, np.ndarray):
        return v.dtype != object
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


def gym_env_state(env: gym.Env) -> list[dict[str, Any]]:
    """The plain-data attributes of a Gymnasium env and each wrapper around it, outermost first:
    positions, counters, random generators. Gymnasium has no state API, so this is the one place that
    reads an env's attributes; spaces, specs and rendering handles are rebuilt, not saved."""
    states, layer = [], env
    while True:
        states.append({k: copy.deepcopy(v) for k, v in vars(layer).items() if k not in _SKIP and _plain(v)})
        if not hasattr(layer, "env"):
            return states
        layer = layer.env


def set_gym_env_state(env: gym.Env, states: list[dict[str, Any]]) -> None:
    """Put back what :func:`gym_env_state` took."""
    layer = env
    for state in states:
        vars(layer).update(copy.deepcopy(state))
        if not hasattr(layer, "env"):
            break
        layer = layer.env


class SingleEnv:
    """One Gymnasium env as a batch of K=1, N=1 (numpy arrays, no tensors: a lone env's step is ~10 us).

    Seeded as a Gymnasium user would: the first reset and the action space with ``seed``, later resets
    unseeded, so the env's own generator carries on."""

    k = n = 1
    device = torch.device("cpu")

    def __init__(self, env: gym.Env, seed: int = 0) -> None:
        self.env, self.seed = env, int(seed)
        self.observation_space, self.action_space, self.spec = env.observation_space, env.action_space, env.spec
        self.horizon = env.spec.max_episode_steps if env.spec else None
        self.obs: Any = None

    def reset(self) -> np.ndarray:
        self.env.action_space.seed(self.seed)
        self.obs, _ = self.env.reset(seed=self.seed)
        return np.asarray(self.obs)[None, None]

    def step(self, actions: Any) -> tuple[np.ndarray, ...]:
        next_obs, reward, terminated, truncated, _ = self.env.step(int(np.asarray(actions).reshape(-1)[0]))
        final = np.asarray(next_obs)[None, None]
        if terminated or truncated:
            next_obs, _ = self.env.reset()
        self.obs = next_obs
        return (
            np.asarray(next_obs)[None, None],
            np.array([[reward]], dtype=np.float32),
            np.array([[terminated]]),
            np.array([[truncated]]),
            final,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "single", "env": gym_env_state(self.env), "obs": self.obs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_gym_env_state(self.env, state["env"])
        self.obs = state["obs"]

    def current(self) -> np.ndarray:
        """The observation the agent acts on next (after :meth:`load_state_dict`)."""
        return np.asarray(self.obs)[None, None]

    def close(self) -> None:
        """The env is the caller's: left open."""


class GymBatched:
    """K*N Gymnasium envs in a ``SyncVectorEnv`` (same-step autoreset), shaped ``[K, N]``; agent k's envs
    are seeded from its own seed (``seeds[k] * 100_003 + j``), so they do not depend on the group."""

    def __init__(
        self,
        env_id: str,
        k: int,
        n: int,
        *,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        device: str = "cpu",
        **kwargs: Any,
    ) -> None:
        self.k, self.n = int(k), int(n)
        self.device = torch.device("cpu")
        self.seeds = agent_seeds(k, seed, seeds)
        base = make_env(env_id, **kwargs)
        self.observation_space, self.action_space, self.spec = base.observation_space, base.action_space, base.spec
        self.horizon = base.spec.max_episode_steps if base.spec else None
        base.close()
        self.vec = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id, **kwargs) for _ in range(self.k * self.n)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        self.obs: torch.Tensor | None = None
        self._seeded = False

    def _shape(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x)).reshape(self.k, self.n, *np.shape(x)[1:])

    def reset(self) -> torch.Tensor:
        """Seeded on the first call; later calls go on from each env's own generator (fresh episodes)."""
        if self._seeded:
            obs, _ = self.vec.reset()
        else:
            obs, _ = self.vec.reset(seed=[s * 100_003 + j for s in self.seeds for j in range(self.n)])
            self._seeded = True
        self.obs = self._shape(obs)
        return self.obs

    def step(self, actions: Any) -> tuple[torch.Tensor, ...]:
        acts = np.asarray(torch.as_tensor(actions).cpu()).reshape(-1)
        obs, reward, term, trunc, info = self.vec.step(acts)
        final = np.array(obs, copy=True)
        done = np.logical_or(term, trunc)
        if done.any():
            for i in np.flatnonzero(done):
                final[i] = info["final_obs"][i]
        self.obs = self._shape(obs)
        return (
            self.obs,
            self._shape(reward.astype(np.float32)),
            self._shape(term),
            self._shape(trunc),
            self._shape(final),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "gym", "envs": [gym_env_state(e) for e in self.vec.envs], "seeded": self._seeded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for env, st in zip(self.vec.envs, state["envs"], strict=True):
            set_gym_env_state(env, st)
        self._seeded = bool(state.get("seeded", True))

    def close(self) -> None:
        self.vec.close()


def make_batched(
    env_id: str,
    k: int,
    n: int,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    device: str = "cpu",
    native: bool = True,
    **kwargs: Any,
) -> BatchedEnv | GymBatched:
    """Native batched env for ``env_id`` if there is one (and ``native``), else Gymnasium's vector env.
    ``seeds``: one per agent (default ``seed .. seed+K-1``)."""
    if native:
        env = make_env(env_id, **kwargs)
        batched = native_batched(env, k, n, seed=seed, seeds=seeds, device=device)
        env.close()
        if batched is not None:
            return batched
    return GymBatched(
        env_id, k, n, seed=seed, seeds=seeds, **kwargs
    )  # stepped in Python on the CPU whatever the device
