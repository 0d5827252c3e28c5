"""Native batched environments: K agents x N environments stepped as one tensor operation.

A Gymnasium env steps one state in ~6-10 us of Python; a batch of K*N states stepped with a handful of
tensor operations costs about the same as one. These classes reproduce Gymnasium's dynamics exactly
(FrozenLake and every toy-text MDP from its own transition table ``P``; MountainCar-v0 and CartPole-v1
from the same equations, in float64) and run on any torch device.

Every batched env auto-resets in the same step: :meth:`step` returns ``(obs, reward, terminated,
truncated, final_obs)``, where ``final_obs`` is the true next observation of the transition (what goes
into replay memory) and ``obs`` is what the agent acts on next (a fresh start where an episode ended).
So the reset is never mistaken for a transition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from qlearn.envs.tabular import TabularMDP, Transitions
from qlearn.errors import QlearnError
from qlearn.rng import Stream


def agent_seeds(k: int, seed: int = 0, seeds: Sequence[int] | None = None) -> list[int]:
    """One seed per agent: ``seeds`` as given, else ``seed .. seed+K-1`` (what ``--seeds K`` trains)."""
    out = [int(s) for s in seeds] if seeds is not None else [int(seed) + i for i in range(int(k))]
    if len(out) != int(k):
        raise QlearnError(f"{len(out)} seeds for K={k} agents: give one seed per agent")
    return out


class BatchedEnv:
    """Shared bookkeeping: shape ``[K, N]``, time limit, random streams, single-env spaces.

    Agent k's envs draw from a stream keyed by its own seed (:mod:`qlearn.rng`): ``draws`` for the
    dynamics, ``start_draws`` for fresh starts. Every step reserves one start per env whether it ends or
    not, so agent k's envs follow the same course alone as in any group."""

    start_dim = 1  # uniform draws per fresh start
    state_dim: int | None = None  # per-env state: a vector of this many float64s, or (None) one state number

    def __init__(
        self,
        spec_env: gym.Env,
        k: int,
        n: int,
        *,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        device: str | torch.device = "cpu",
    ):
        self.k, self.n = int(k), int(n)
        self.device = torch.device(device)
        self.observation_space = spec_env.observation_space
        self.action_space = spec_env.action_space
        self.spec = spec_env.spec
        self.horizon = spec_env.spec.max_episode_steps if spec_env.spec else None
        self.seeds = agent_seeds(k, seed, seeds)
        self.draws = Stream(self.seeds, salt=11, device=self.device)
        self.start_draws = Stream(self.seeds, salt=12, device=self.device)
        self.t = torch.zeros(self.k, self.n, dtype=torch.long, device=self.device)
        shape = (self.k, self.n) if self.state_dim is None else (self.k, self.n, self.state_dim)
        dtype = torch.long if self.state_dim is None else torch.float64
        self.state = torch.zeros(shape, dtype=dtype, device=self.device)

    def _rand(self) -> torch.Tensor:
        """One uniform draw per env ``[K, N]`` for this step's dynamics (float64, on the env's device)."""
        u = self._uniform()
        return torch.from_numpy(u) if isinstance(u, np.ndarray) else u

    def _uniform(self) -> np.ndarray | torch.Tensor:
        """:meth:`_rand` as numpy on the CPU (whose steps compute in numpy), a tensor elsewhere."""
        return self.draws.uniform(self.n) if self.device.type == "cpu" else self.draws.uniform_torch(self.n)

    def _start_draws(self, done: torch.Tensor | None) -> torch.Tensor | None:
        """This step's start draws ``[count, start_dim]`` for the envs in ``done`` (all of them with None;
        None where none ended). The draws are reserved every step, used or not."""
        d = self.start_dim
        start = self.start_draws.reserve(self.n * d)
        if done is None:
            done = torch.ones(self.k, self.n, dtype=torch.bool, device=self.device)
        elif not bool(done.any()):
            return None
        rows, cols = torch.nonzero(done, as_tuple=True)
        flat = cols.unsqueeze(1) * d + torch.arange(d, device=cols.device).unsqueeze(0)
        rows = rows.unsqueeze(1).expand_as(flat)
        if self.device.type == "cpu":
            return torch.from_numpy(self.start_draws.uniform_at(start, rows.numpy(), flat.numpy()))
        return self.start_draws.uniform_at_torch(start, rows, flat)

    def _starts(self, u: torch.Tensor) -> torch.Tensor:
        """Fresh start states from start draws ``[count, start_dim]`` (each env class has its own)."""
        raise NotImplementedError

    def _autoreset(self, state: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """Fresh starts where an episode ended (in place), with their time counters zeroed."""
        done = terminated | truncated
        u = self._start_draws(done)
        if u is not None:
            state[done] = self._starts(u)
            self.t[done] = 0
        return state

    def _fresh(self) -> torch.Tensor:
        """Start states of all K x N envs (their first reset)."""
        self.t.zero_()
        u = self._start_draws(None)
        assert u is not None  # (with done=None every env gets its draws)
        return self._starts(u).reshape(self.k, self.n, *self.state.shape[2:])

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue these envs exactly: states, time counters, stream positions."""
        return {
            "kind": "native",
            "state": self.state.clone(),
            "t": self.t.clone(),
            "draws": self.draws.state_dict(),
            "start_draws": self.start_draws.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "draws" not in state:
            raise QlearnError(
                "this training checkpoint was written by an earlier qlearn (its env generator is "
                "shared by the agents): start the run again with qlearn train --config RUN_DIR"
            )
        self.state = state["state"].to(self.device)
        self.t = state["t"].to(self.device)
        self.draws.load_state_dict(state["draws"])
        self.start_draws.load_state_dict(state["start_draws"])

    def _time_limit(self, terminated: torch.Tensor) -> torch.Tensor:
        self.t += 1
        if self.horizon is None:
            return torch.zeros_like(terminated)
        return (self.t >= self.horizon) & ~terminated


class TabularBatchedEnv(BatchedEnv):
    """Any env with a transition table ``env.unwrapped.P`` (FrozenLake, CliffWalking, Taxi...)."""

    def __init__(
        self,
        env: gym.Env,
        k: int,
        n: int,
        *,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__(env, k, n, seed=seed, seeds=seeds, device=device)
        raw: Any = env.unwrapped  # a toy-text env: its table P and initial_state_distrib are not on gym.Env
        if not hasattr(raw, "P"):
            raise QlearnError("TabularBatchedEnv needs an env with a transition table (env.unwrapped.P)")
        t = Transitions.from_env(env)
        self.mdp = TabularMDP.from_env(env, t)  # the exact model of the same dynamics (for exact scoring)
        n_s, n_a, width = t.prob.shape
        probs, nxt, rew, term = t.prob, t.next_state, t.reward, t.terminated
        as_t = lambda x, dt: torch.as_tensor(x, dtype=dt, device=self.device)  # noqa: E731
        # Gymnasium draws an outcome as the first index whose cumulative probability exceeds u.
        cum = np.cumsum(probs, axis=-1)
        isd_cum = np.cumsum(np.asarray(raw.initial_state_distrib, dtype=float))
        self.cum = as_t(cum, torch.float64)
        self.next_state = as_t(nxt, torch.long)
        self.reward = as_t(rew, torch.float32)
        self.term = as_t(term, torch.bool)
        self.isd_cum = as_t(isd_cum, torch.float64)
        self.width = width
        # The same tables flattened by (state, action) for the CPU step, which does its arithmetic in numpy:
        # a torch call costs 3-10 us of dispatch on a few hundred states, numpy's about 1 us.
        self._flat = (
            cum.reshape(n_s * n_a, width),
            nxt.reshape(-1),
            rew.astype(np.float32).reshape(-1),
            term.reshape(-1),
            n_a,
            isd_cum,
        )

    def _starts(self, u: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.isd_cum, u[:, 0].contiguous(), right=True).clamp(max=len(self.isd_cum) - 1)

    def reset(self) -> torch.Tensor:
        self.state = self._fresh()
        return self.state.clone()

    def step(self, actions: torch.Tensor):
        return self._step_cpu(actions) if self.device.type == "cpu" else self._step_torch(actions)

    def _step_torch(self, actions: torch.Tensor):
        a = torch.as_tensor(actions, dtype=torch.long, device=self.device)
        s = self.state
        u = self._rand().unsqueeze(-1)
        outcome = (self.cum[s, a] <= u).sum(-1).clamp(max=self.width - 1)
        pick = outcome.unsqueeze(-1)
        s2 = self.next_state[s, a].gather(-1, pick).squeeze(-1)
        reward = self.reward[s, a].gather(-1, pick).squeeze(-1)
        terminated = self.term[s, a].gather(-1, pick).squeeze(-1)
        truncated = self._time_limit(terminated)
        final = s2
        self.state = self._autoreset(s2.clone(), terminated, truncated)
        return self.state.clone(), reward, terminated, truncated, final

    def _step_cpu(self, actions):
        """:meth:`step` on the CPU: the same uniform draws from the env's streams, in the same order, and the
        same arithmetic in numpy on them, so trajectories are identical to the torch path's."""
        cum, nxt, rew, term_table, n_a, isd_cum = self._flat
        a = actions.numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)
        u = self._uniform()
        sa = self.state.numpy() * n_a + a
        outcome = (cum[sa] <= u[..., None]).sum(-1)
        np.minimum(outcome, self.width - 1, out=outcome)
        idx = sa * self.width + outcome
        s2, reward, terminated = nxt[idx], rew[idx], term_table[idx]
        t = self.t.numpy()
        t += 1
        truncated = (t >= self.horizon) & ~terminated if self.horizon is not None else np.zeros_like(terminated)
        done = terminated | truncated
        state = s2.copy()
        start = self.start_draws.reserve(self.n)
        if done.any():
            rows, cols = np.nonzero(done)
            starts = np.searchsorted(isd_cum, self.start_draws.uniform_at(start, rows, cols), side="right")
            state[done] = np.minimum(starts, len(isd_cum) - 1)
            t[done] = 0
        self.state = torch.from_numpy(state)
        return (
            torch.from_numpy(state.copy()),
            torch.from_numpy(reward),
            torch.from_numpy(terminated),
            torch.from_numpy(truncated),
            torch.from_numpy(s2),
        )


class MountainCarBatched(BatchedEnv):
    """MountainCar-v0's equations (Gymnasium 1.x), float64, batched."""

    force, gravity, max_speed = 0.001, 0.0025, 0.07
    min_position, max_position, goal_position, goal_velocity = -1.2, 0.6, 0.5, 0.0

    state_dim = 2

    def _starts(self, u: torch.Tensor) -> torch.Tensor:
        pos = -0.6 + 0.2 * u[:, 0]
        return torch.stack([pos, torch.zeros_like(pos)], dim=-1)

    def reset(self) -> torch.Tensor:
        self.state = self._fresh()
        return self.state.float()

    def step(self, actions: torch.Tensor):
        a = torch.as_tensor(actions, device=self.device).to(torch.float64)
        pos, vel = self.state[..., 0], self.state[..., 1]
        vel = (vel + ((a - 1) * self.force + torch.cos(3 * pos) * (-self.gravity))).clamp(
            -self.max_speed, self.max_speed
        )
        pos = (pos + vel).clamp(self.min_position, self.max_position)
        vel = torch.where((pos == self.min_position) & (vel < 0), torch.zeros_like(vel), vel)
        terminated = (pos >= self.goal_position) & (vel >= self.goal_velocity)
        truncated = self._time_limit(terminated)
        state = torch.stack([pos, vel], dim=-1)
        final = state.float()
        self.state = self._autoreset(state, terminated, truncated)
        return state.float(), torch.full_like(pos, -1.0, dtype=torch.float32), terminated, truncated, final


class CartPoleBatched(BatchedEnv):
    """CartPole-v1's equations (Gymnasium 1.x, Euler integration), float64, batched."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold, x_threshold = 12 * 2 * math.pi / 360, 2.4

    start_dim = 4

    state_dim = 4

    def _starts(self, u: torch.Tensor) -> torch.Tensor:
        return -0.05 + 0.1 * u

    def reset(self) -> torch.Tensor:
        self.state = self._fresh()
        return self.state.float()

    def step(self, actions: torch.Tensor):
        a = torch.as_tensor(actions, device=self.device)
        x, x_dot, theta, theta_dot = self.state.unbind(-1)
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        force = torch.where(a == 1, self.force_mag, -self.force_mag).to(torch.float64)
        cos, sin = torch.cos(theta), torch.sin(theta)
        temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass))
        xacc = temp - polemass_length * thetaacc * cos / total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
        state = torch.stack([x, x_dot, theta, theta_dot], dim=-1)
        terminated = (x.abs() > self.x_threshold) | (theta.abs() > self.theta_threshold)
        truncated = self._time_limit(terminated)
        final = state.float()
        self.state = self._autoreset(state, terminated, truncated)
        return state.float(), torch.ones_like(x, dtype=torch.float32), terminated, truncated, final


NATIVE = {"MountainCar-v0": MountainCarBatched, "CartPole-v1": CartPoleBatched}


def native_batched(
    env: gym.Env,
    k: int,
    n: int,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
) -> BatchedEnv | None:
    """The native batched version of ``env`` where one exists (same dynamics), else ``None``."""
    spec = env.spec
    if hasattr(env.unwrapped, "P") and hasattr(env.observation_space, "n"):
        return TabularBatchedEnv(env, k, n, seed=seed, seeds=seeds, device=device)
    if spec is not None and spec.id in NATIVE and spec.kwargs in ({}, None) and not _changed_time_limit(spec):
        return NATIVE[spec.id](env, k, n, seed=seed, seeds=seeds, device=device)
    return None


def _changed_time_limit(spec: EnvSpec) -> bool:
    return spec.max_episode_steps != gym.spec(spec.id).max_episode_steps
