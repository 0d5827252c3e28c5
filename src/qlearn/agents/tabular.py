"""Tabular Q-learning (the course's "last week" agent), batched like the DQN: a table ``Q[K, S, A]``.

``Q[s, a] += alpha * (r + gamma * (1 - terminated) * max_a' Q[s', a'] - Q[s, a])`` on every step, with
epsilon-greedy exploration and a learning rate that decays linearly (a constant rate keeps a slippery
lake's table noisy forever; a decaying one lets it settle).

On N envs, several envs can update the same ``(s, a)`` in one step. Their ``c`` TD errors, all taken from
the same old value, are averaged and applied with the rate ``1 - (1 - alpha)^c``: what ``c`` updates one
after another would do when their targets agree. Summing them instead (``alpha * c`` times the mean) would
overshoot a pair that many envs visit once ``alpha * c`` passes 2, and the table would diverge.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.agents.base import SingleStepAPI, check_fits, linear_schedule, read_checkpoint, write_checkpoint
from qlearn.agents.guard import DivergenceGuard
from qlearn.config import TabularConfig, from_dict, to_dict
from qlearn.envs.discretize import Discretizer
from qlearn.envs.make import discrete_size, obs_size
from qlearn.errors import DivergenceError, QlearnError
from qlearn.rng import Stream


class TabularQAgent(SingleStepAPI):
    """Q-learning on a lookup table; ``seeds`` gives one independent table per seed."""

    kind = "tabular"

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        config: TabularConfig | None = None,
        *,
        seeds: Sequence[int] = (0,),
        env_id: str | None = None,
        discretizer: Discretizer | None = None,
    ) -> None:
        self.config = config or TabularConfig()
        self.discretizer = discretizer
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        self.seeds = tuple(int(s) for s in seeds)
        self.k = len(self.seeds)
        self.env_id = env_id
        self.q = np.zeros((self.k, self.n_states, self.n_actions))
        self.explore_rng = Stream(self.seeds, salt=2)  # each agent's own draws (qlearn.rng)
        self.guard = DivergenceGuard(self.k)
        self.steps = 0
        self.updates = 0
        self._last_td = 0.0
        self.greedy = False

    @classmethod
    def for_env(
        cls,
        env: gym.Env,
        config: TabularConfig | None = None,
        *,
        seed: int | None = None,
        seeds: Sequence[int] | None = None,
        device: str = "cpu",
    ) -> TabularQAgent:
        """A table shaped for ``env``: over its discrete states, or over bins of a continuous space
        (``config.bins``)."""
        config = config or TabularConfig()
        disc = None
        if config.bins:
            disc = Discretizer.for_space(env.observation_space, config.bins, config.bin_low, config.bin_high)
            n_states = disc.n_states
        elif isinstance(env.observation_space, gym.spaces.Box):
            name = env.spec.id if env.spec else "this env"
            raise QlearnError(
                f"{name} has continuous {env.observation_space.shape} observations; the tabular agent "
                "needs discrete states: add a discretiser (--set bins=20) or use --agent dqn"
            )
        else:
            n_states = obs_size(env)
        return cls(
            n_states,
            discrete_size(env.action_space),
            config,
            seeds=seeds or (seed or 0,),
            env_id=env.spec.id if env.spec else None,
            discretizer=disc,
        )

    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, self.steps)

    @property
    def alpha(self) -> float:
        c = self.config
        return linear_schedule(c.alpha, c.alpha_end, c.alpha_decay_steps, self.steps)

    def _index(self, obs: np.ndarray) -> np.ndarray:
        if self.discretizer is not None:
            return self.discretizer(obs).reshape(self.k, -1)
        idx = np.asarray(obs).astype(np.int64).reshape(self.k, -1)
        if idx.min() < 0 or idx.max() >= self.n_states:
            raise QlearnError(f"state out of range: states are 0..{self.n_states - 1}")
        return idx

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        idx = self._index(obs)
        return self.q[np.arange(self.k)[:, None], idx]

    def act(self, obs: np.ndarray, *, greedy: bool = False) -> np.ndarray:
        """Epsilon-greedy actions ``[K, N]``. While learning, ties are broken at random (an all-zero row
        would otherwise always pick action 0); greedy play takes the first best action."""
        q = self.q_values(obs)
        if greedy:
            return q.argmax(-1)
        u = self.explore_rng.uniform(q.shape[1], 2 + self.n_actions)
        explore = u[..., 0] < self.epsilon
        random_a = (u[..., 1] * self.n_actions).astype(np.int64)  # u < 1, so u * n < n
        return np.where(explore, random_a, (q + u[..., 2:] * 1e-9).argmax(-1))

    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """One Q-learning update per transition ``[K, N]`` (truncation still bootstraps)."""
        s, s2 = self._index(obs), self._index(next_obs)
        a = np.asarray(actions).astype(np.int64).reshape(self.k, -1)
        r = np.asarray(rewards, dtype=float).reshape(self.k, -1)
        done = np.asarray(terminated, dtype=float).reshape(self.k, -1)
        rows = np.broadcast_to(np.arange(self.k)[:, None], s.shape)
        target = r + self.config.gamma * (1.0 - done) * self.q[rows, s2].max(-1)
        td = target - self.q[rows, s, a]
        step = self.steps + a.shape[1]
        finite = np.isfinite(td).all(axis=1)
        if not finite.all():  # freeze those agents' tables as they are; the others learn on
            if self.guard.freeze(~finite, lambda: [torch.from_numpy(self.q)], step):
                raise DivergenceError(f"a Q-value stopped being finite at environment step {step}", step)
        if self.guard.frozen.any():
            td = np.where(self.guard.frozen[:, None], 0.0, td)
        self._apply(rows, s, a, td)
        self.steps = step
        self.updates += 1
        self._last_td = float(np.mean(td[~self.guard.frozen] ** 2))

    def _apply(self, rows: np.ndarray, s: np.ndarray, a: np.ndarray, td: np.ndarray) -> None:
        """Move each visited pair by its TD errors (see the module's docstring for pairs hit by several envs)."""
        alpha = self.alpha
        if td.shape[1] == 1:  # one env per agent: every pair at most once
            self.q[rows, s, a] += alpha * td
            return
        flat = ((rows * self.n_states + s) * self.n_actions + a).ravel()
        pairs, which, count = np.unique(flat, return_inverse=True, return_counts=True)
        total = np.bincount(which, weights=td.ravel(), minlength=len(pairs))
        rate = np.where(count == 1, alpha, 1.0 - (1.0 - alpha) ** count)
        self.q.flat[pairs] += rate * total / count

    def metrics(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "alpha": self.alpha, "loss": self._last_td}

    def q_table(self, agent: int | None = 0) -> np.ndarray:
        """The table itself: ``[S, A]`` (or ``[K, S, A]`` with agent=None)."""
        return self.q.copy() if agent is None else self.q[agent].copy()

    def weights(self) -> list[torch.Tensor]:
        """The live table as a tensor sharing its memory (first dim K)."""
        return [torch.from_numpy(self.q)]

    def select(self, index: int) -> TabularQAgent:
        """Agent ``index`` alone (K=1)."""
        one = TabularQAgent(
            self.n_states,
            self.n_actions,
            self.config,
            seeds=(self.seeds[index],),
            env_id=self.env_id,
            discretizer=self.discretizer,
        )
        one.q = self.q[index : index + 1].copy()
        one.steps, one.updates = self.steps, self.updates
        one.explore_rng, one.guard = self.explore_rng.select(index), self.guard.select(index)
        return one

    def state_dict(self, **_: Any) -> dict[str, Any]:
        return {
            "q": torch.from_numpy(self.q.copy()),
            "steps": self.steps,
            "updates": self.updates,
            "last_td": self._last_td,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        q = state["q"].numpy() if isinstance(state["q"], torch.Tensor) else np.asarray(state["q"])
        if q.shape != self.q.shape:
            raise QlearnError(f"checkpoint table has shape {q.shape}, this agent needs {self.q.shape}")
        self.q[...] = q  # in place: weights() views stay valid
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self._last_td = float(state.get("last_td", 0.0))

    def rng_state(self) -> dict[str, Any]:
        return {"explore": self.explore_rng.state_dict(), "guard": self.guard.state_dict()}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        if "explore" not in state:
            raise QlearnError(
                "this training checkpoint was written by an earlier qlearn (its random generators "
                "are not per agent): start the run again with qlearn train --config RUN_DIR"
            )
        self.explore_rng.load_state_dict(state["explore"])
        self.guard.load_state_dict(state.get("guard"), lambda: [torch.from_numpy(self.q)])

    def meta(self) -> dict[str, Any]:
        d = self.discretizer
        return {
            "config": to_dict(self.config),
            "n_states": self.n_states,
            "n_actions": self.n_actions,
            "seeds": list(self.seeds),
            "env_id": self.env_id,
            "discretizer": None if d is None else {"low": list(d.low), "high": list(d.high), "bins": list(d.bins)},
        }

    def save(self, path: str | os.PathLike, **_: Any) -> Path:
        return write_checkpoint(path, self.kind, self.meta(), self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None, device: str = "cpu") -> TabularQAgent:
        payload = read_checkpoint(path)
        if payload["kind"] != cls.kind:
            raise QlearnError(f"{path} holds a {payload['kind']} agent, not {cls.kind}")
        meta = payload["meta"]
        d = meta.get("discretizer")
        disc = None if d is None else Discretizer(tuple(d["low"]), tuple(d["high"]), tuple(d["bins"]))
        if env is not None:
            check_fits({**meta, "encoder": {"n_states": None, "dim": len(disc.bins)}} if disc else meta, env, path)
        agent = cls(
            meta["n_states"],
            meta["n_actions"],
            from_dict(TabularConfig, meta["config"]),
            seeds=meta["seeds"],
            env_id=meta.get("env_id"),
            discretizer=disc,
        )
        agent.load_state_dict(payload["state"])
        return agent
