"""K x N environments behind one interface: native batched dynamics where they exist, Gymnasium's
vector API otherwise.

:func:`make_batched` returns an object with ``reset() -> obs[K, N, ...]`` and
``step(actions[K, N]) -> (obs, reward, terminated, truncated, final_obs)``. With Gymnasium's vector
envs the autoreset mode is ``SAME_STEP``: the env resets inside the step that ends an episode and hands
the true last observation in ``info["final_obs"]``, so every step is a real transition and the reset is
never stored as one (the default next-step mode would return a reset step that must be skipped).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.envs.batched import BatchedEnv, native_batched
from qlearn.envs.make import make_env


class GymBatched:
    """K*N Gymnasium envs in a ``SyncVectorEnv`` (same-step autoreset), shaped ``[K, N]``."""

    def __init__(self, env_id: str, k: int, n: int, *, seed: int = 0, device: str = "cpu", **kwargs: Any) -> None:
        self.k, self.n = int(k), int(n)
        self.device = torch.device("cpu")
        base = make_env(env_id, **kwargs)
        self.observation_space, self.action_space, self.spec = base.observation_space, base.action_space, base.spec
        self.horizon = base.spec.max_episode_steps if base.spec else None
        base.close()
        self.vec = gym.vector.SyncVectorEnv([lambda: make_env(env_id, **kwargs) for _ in range(self.k * self.n)],
                                            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self._seed = int(seed)

    def _shape(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x)).reshape(self.k, self.n, *np.shape(x)[1:])

    def seed(self, seed: int) -> None:
        self._seed = int(seed)

    def reset(self) -> torch.Tensor:
        obs, _ = self.vec.reset(seed=[self._seed * 100_003 + i for i in range(self.k * self.n)])
        self.vec.action_space.seed(self._seed)
        return self._shape(obs)

    def step(self, actions: torch.Tensor):
        acts = np.asarray(torch.as_tensor(actions).cpu()).reshape(-1)
        obs, reward, term, trunc, info = self.vec.step(acts)
        final = np.array(obs, copy=True)
        done = np.logical_or(term, trunc)
        if done.any():
            for i in np.flatnonzero(done):
                final[i] = info["final_obs"][i]
        return (self._shape(obs), self._shape(reward.astype(np.float32)), self._shape(term), self._shape(trunc),
                self._shape(final))

    def close(self) -> None:
        self.vec.close()


def make_batched(env_id: str, k: int, n: int, *, seed: int = 0, device: str = "cpu", native: bool = True,
                 **kwargs: Any) -> BatchedEnv | GymBatched:
    """Native batched env for ``env_id`` if there is one (and ``native``), else Gymnasium's vector env."""
    if native:
        env = make_env(env_id, **kwargs)
        batched = native_batched(env, k, n, seed=seed, device=device)
        env.close()
        if batched is not None:
            return batched
    return GymBatched(env_id, k, n, seed=seed, **kwargs)  # stepped in Python on the CPU whatever the device
