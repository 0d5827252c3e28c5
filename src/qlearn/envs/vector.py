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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.envs.batched import BatchedEnv, agent_seeds, native_batched
from qlearn.envs.make import make_env
from qlearn.envs.pixels import family, horizon_of
from qlearn.envs.state import gym_env_state, set_gym_env_state

if TYPE_CHECKING:
    from qlearn.envs.ale_vector import AleVectorBatched

__all__ = ["GymBatched", "SingleEnv", "gym_env_state", "make_batched", "set_gym_env_state"]


class SingleEnv:
    """One Gymnasium env as a batch of K=1, N=1 (numpy arrays, no tensors: a lone env's step is ~10 us).

    Seeded as a Gymnasium user would: the first reset and the action space with ``seed``, later resets
    unseeded, so the env's own generator carries on."""

    k = n = 1
    device = torch.device("cpu")

    def __init__(self, env: gym.Env, seed: int = 0) -> None:
        self.env, self.seed = env, int(seed)
        self.observation_space, self.action_space, self.spec = env.observation_space, env.action_space, env.spec
        self.horizon = horizon_of(env)
        self.obs: Any = None
        self._learning: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> np.ndarray:
        self.env.action_space.seed(self.seed)
        self.obs, _ = self.env.reset(seed=self.seed)
        return np.asarray(self.obs)[None, None]

    def step(self, actions: Any) -> tuple[np.ndarray, ...]:
        next_obs, reward, terminated, truncated, info = self.env.step(int(np.asarray(actions).reshape(-1)[0]))
        self._learning = _signals(info, 1)
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

    def learning_signals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The last step's reward and terminal flag for learning where a pixel protocol sets them apart
        from the game's (:class:`~qlearn.envs.pixels.TrainingSignals`); None elsewhere."""
        return self._learning

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
        self.horizon = horizon_of(base)
        base.close()
        self.vec = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id, **kwargs) for _ in range(self.k * self.n)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        self.obs: torch.Tensor | None = None
        self._seeded = False
        self._learning: tuple[np.ndarray, np.ndarray] | None = None

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
        self._learning = _signals(info, self.k * self.n, (self.k, self.n))
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

    def learning_signals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """As :meth:`SingleEnv.learning_signals`, ``[K, N]``."""
        return self._learning

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "gym", "envs": [gym_env_state(e) for e in self.vec.envs], "seeded": self._seeded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for env, st in zip(self.vec.envs, state["envs"], strict=True):
            set_gym_env_state(env, st)
        self._seeded = bool(state.get("seeded", True))

    def close(self) -> None:
        self.vec.close()


def _signals(info: dict[str, Any], count: int, shape: tuple[int, int] = (1, 1)) -> tuple[np.ndarray, np.ndarray] | None:
    """``(reward, life_loss)`` for learning from a step's ``info`` (one env's, or a vector env's arrays)."""
    if "train_reward" not in info:
        return None
    reward = np.asarray(info["train_reward"], dtype=np.float32).reshape(shape)
    lost = np.asarray(info.get("life_loss", np.zeros(count, dtype=bool)), dtype=bool).reshape(shape)
    return reward, lost


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
) -> BatchedEnv | GymBatched | AleVectorBatched:
    """Native batched env for ``env_id`` if there is one (and ``native``), else Gymnasium's vector env;
    ale-py's vector env for an Atari id with ``vector="ale"``. ``seeds``: one per agent (default
    ``seed .. seed+K-1``)."""
    if kwargs.get("vector") == "ale" and family(env_id) == "atari":
        from qlearn.envs.ale_vector import AleVectorBatched

        return AleVectorBatched(env_id, k, n, seed=seed, seeds=seeds, **kwargs)
    if native:
        env = make_env(env_id, **kwargs)
        batched = native_batched(env, k, n, seed=seed, seeds=seeds, device=device)
        env.close()
        if batched is not None:
            return batched
    return GymBatched(
        env_id, k, n, seed=seed, seeds=seeds, **kwargs
    )  # stepped in Python on the CPU whatever the device
