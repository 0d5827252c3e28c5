"""How a run judges its K agents during training: one score per agent, higher is better.

By default agents are scored by greedy episodes on a separate batched env of K x ``episodes`` envs (each
agent's own, seeded from its seed), played in parallel; that env carries on between evaluations, so each
evaluation sees fresh episodes. That score chooses the kept agent and drives the stop rules.

Where the env has a model (``env.unwrapped.P``), the model also gives, for the report only, the exact
expected return of each greedy policy within the time limit (for FrozenLake, the success probability) and
the Q-values' largest error, ``max |Q - Q*|`` over the states where the agent acts (reachable from the start,
not terminal). With
``select_by="model"`` (an explicit option) the exact score itself chooses and stops instead: no sampling
noise, so "best so far" means best, but the truth then leaks into what the run delivers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qlearn.envs.make import success_array
from qlearn.envs.tabular import UNLIMITED_HORIZON, TabularMDP, greedy_policy, policy_returns, value_iteration
from qlearn.errors import QlearnError
from qlearn.evaluation import t_quantile_975

EVAL_SEED_OFFSET = 10_000  # agent seed S's evaluation envs are seeded from S + this


@dataclass
class Scores:
    """One evaluation: ``score[K]``, ``success[K]`` (the exact success probability, or the fraction of
    evaluation episodes that succeeded), whether it was exact, and ``lower[K]``: the score itself where
    exact, else the lower end of the 95% t-interval of the episodes' mean return, as
    :func:`~qlearn.evaluation.mean_ci` gives it (-inf from a single episode)."""

    score: np.ndarray
    success: np.ndarray
    exact: bool
    lower: np.ndarray
    exact_score: np.ndarray | None = None
    """From the env's model where it has one (reported, and choosing only when ``exact``)."""
    q_error: np.ndarray | None = None
    """``max |Q - Q*|`` per agent over the states it acts in, where the env has a model."""


class Scorer:
    """``scorer(agent) -> Scores``: greedy episodes on ``eval_env`` where it is given, else exact from ``mdp``;
    with both, the episodes score and the model reports beside them."""

    def __init__(self, env_id: str, mdp: TabularMDP | None = None, eval_env: Any = None) -> None:
        if mdp is None and eval_env is None:
            raise QlearnError("sampled scoring needs an evaluation env (a batched env of K x episodes envs)")
        self.env_id, self.mdp, self.eval_env = env_id, mdp, eval_env
        self.seconds = 0.0  # time spent scoring (benchmarks subtract it from training time)
        self._q_star: dict[float, np.ndarray] = {}
        self._acts_in: np.ndarray | None = None  # reachable, non-terminal states: where Q-values can be learned

    @property
    def exact(self) -> bool:
        """Whether the exact score is the one that chooses (no evaluation episodes)."""
        return self.eval_env is None

    def __call__(self, agent: Any) -> Scores:
        start = time.perf_counter()
        try:
            exact, q_error = self.report(agent)
            if self.eval_env is None:
                assert exact is not None
                return Scores(exact, exact, True, exact, exact, q_error)
            scores = self._episodes(agent)
            scores.exact_score, scores.q_error = exact, q_error
            return scores
        finally:
            self.seconds += time.perf_counter() - start

    def report(self, agent: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What the model says of each agent, choosing nothing: (exact score, ``max |Q - Q*|``); Nones
        without a model."""
        if self.mdp is None:
            return None, None
        q = np.asarray(agent.q_table(None))
        error = self._q_error(q, float(agent.config.gamma)) if hasattr(agent, "config") else None
        return policy_returns(self.mdp, greedy_policy(q)), error

    def _q_error(self, q: np.ndarray, gamma: float) -> np.ndarray:
        assert self.mdp is not None
        if gamma not in self._q_star:
            self._q_star[gamma] = value_iteration(self.mdp, gamma)[0]
        if self._acts_in is None:
            self._acts_in = self.mdp.reachable() & ~self.mdp.terminal
        return np.abs(q - self._q_star[gamma])[..., self._acts_in, :].max(axis=(-2, -1))

    def _episodes(self, agent: Any) -> Scores:
        env = self.eval_env
        if env.k != agent.k:
            raise QlearnError(f"the evaluation env holds K={env.k} agents' envs, the agent K={agent.k}")
        obs = env.reset()
        total = np.zeros((env.k, env.n))
        running = np.ones((env.k, env.n), dtype=bool)
        won = np.zeros((env.k, env.n), dtype=bool)
        on_device = on_gpu(agent, env)
        for _ in range(env.horizon or UNLIMITED_HORIZON):  # as exact scoring's horizon without a time limit
            a = agent.act(obs if on_device else as_numpy(obs), greedy=True)
            obs, r, te, tr, _ = env.step(a if on_device else torch.as_tensor(a))
            r, te, tr = as_numpy(r), as_numpy(te), as_numpy(tr)
            total += r * running
            ended = running & (te | tr)
            if ended.any():
                won[ended] = success_array(self.env_id, total[ended], te[ended], tr[ended])
            running &= ~(te | tr)
            if not running.any():
                break
        mean = total.mean(axis=1)
        if env.n > 1:  # evaluate()'s t-interval (mean_ci), for K agents at once
            lower = mean - t_quantile_975(env.n - 1) * total.std(axis=1, ddof=1) / np.sqrt(env.n)
        else:
            lower = np.full(env.k, -np.inf)
        return Scores(mean, won.mean(axis=1), False, lower)

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.eval_env is None else self.eval_env.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.eval_env is not None and state is not None:
            self.eval_env.load_state_dict(state)

    def close(self) -> None:
        close = getattr(self.eval_env, "close", None)
        if close is not None:
            close()


def as_numpy(x: Any) -> np.ndarray:
    """A step's output as numpy (native envs give tensors, a lone Gymnasium env numpy arrays)."""
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def on_gpu(agent: Any, venv: Any) -> bool:
    """A DQN and a native batched env on the same GPU: acting and storing stay there (no numpy copies)."""
    device = getattr(agent, "device", None)
    return (
        getattr(agent, "kind", "") == "dqn"
        and device is not None
        and device.type != "cpu"
        and getattr(venv, "device", None) == device
    )


def single_scorer(env: Any, seed: int, episodes: int, select_by: str = "episodes") -> Scorer:
    """``episodes`` evaluation envs rebuilt from the env's spec, with the env's model reporting where it has
    one; exact scoring alone where ``select_by="model"`` and there is a model."""
    import gymnasium as gym

    from qlearn.envs.vector import make_batched

    env_id = env.spec.id if env.spec else "env"
    mdp = None
    if hasattr(env.unwrapped, "P") and isinstance(env.observation_space, gym.spaces.Discrete):
        mdp = TabularMDP.from_env(env)
        if select_by == "model":
            return Scorer(env_id, mdp=mdp)
    if env.spec is None:
        raise QlearnError(
            "scoring by evaluation episodes rebuilds the env from its registered spec; this env has "
            "none: register it with gymnasium.register, or pass eval_every=0"
        )
    given = getattr(env, "make_kwargs", None)  # an env from qlearn's make_env: the options it was made with
    kwargs = dict(env.spec.kwargs or {}) if given is None else dict(given)
    if env.spec.max_episode_steps != gym.spec(env.spec.id).max_episode_steps:
        kwargs["max_episode_steps"] = env.spec.max_episode_steps
    eval_env = make_batched(env.spec.id, 1, episodes, seeds=[EVAL_SEED_OFFSET + seed], **kwargs)
    return Scorer(env_id, mdp=mdp, eval_env=eval_env)
