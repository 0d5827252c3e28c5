"""Evaluation with its uncertainty stated.

:func:`evaluate` is the seed's ``evaluate(agent, env, episodes, max_steps)``: greedy episodes, the mean
return with a 95% confidence interval, and the success rate with a Wilson interval. For tabular
environments, :func:`exact_success` computes the greedy policy's success probability from the model,
with no sampling error at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np

from qlearn.envs.make import discrete_size, success_of
from qlearn.envs.pixels import horizon_of
from qlearn.envs.tabular import UNLIMITED_HORIZON, TabularMDP, success_probability
from qlearn.errors import QlearnError


@dataclass(frozen=True)
class EvalResult:
    """Outcome of :func:`evaluate`; ``ci95`` is for the mean return, ``success_ci95`` for the rate."""

    mean_return: float
    std_return: float
    success_rate: float
    ci95: tuple[float, float]
    success_ci95: tuple[float, float]
    episodes: int
    mean_length: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"], d["success_ci95"] = list(self.ci95), list(self.success_ci95)
        return d


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (honest near 0 and 1, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_quantile_975(df: int) -> float:
    """Two-sided 95% quantile of Student's t (Cornish-Fisher expansion; exact to ~1e-3 for df >= 3)."""
    if df <= 0:
        return float("inf")
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}
    if df in table:
        return table[df]
    z = 1.959964
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return (mean, mean)
    half = t_quantile_975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return (mean - half, mean + half)


def evaluate(
    agent,
    env: gym.Env,
    episodes: int = 100,
    max_steps: int | None = None,
    *,
    seed: int | None = None,
    epsilon: float = 0.0,
) -> EvalResult:
    """Play ``episodes`` greedy episodes and summarise them (raw game scores: a pixel protocol's clipped
    rewards and lost lives are for learning only, so an Atari episode is a whole game).

    ``max_steps`` caps each episode (default: the env's own time limit, Atari's frame cap, or ``UNLIMITED_HORIZON``:
    1,000 steps, the horizon of exact evaluation on an env without a time limit).
    ``epsilon``: a random action with this probability (the DQN papers evaluate Atari at 0.05, to keep an
    agent from sticking in a game that waits for it). Works with any agent of the protocol, including the
    seed's per-step API.
    """
    if episodes < 1:
        raise QlearnError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise QlearnError(f"epsilon must be a probability in [0, 1], got {epsilon}")
    env_id = env.spec.id if env.spec else ""
    max_steps = max_steps or horizon_of(env) or UNLIMITED_HORIZON
    rng = np.random.default_rng(seed)
    returns, lengths, wins = [], [], 0
    for ep in range(episodes):
        state, _ = env.reset(seed=None if seed is None else seed + ep)
        total, term, trunc, steps = 0.0, False, False, 0
        while steps < max_steps:
            if epsilon > 0.0 and rng.random() < epsilon:
                action = int(rng.integers(discrete_size(env.action_space)))
            else:
                action = int(agent.act(np.asarray(state)[None, None], greedy=True)[0, 0])
            state, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            steps += 1
            if term or trunc:
                break
        trunc = trunc or not term
        returns.append(total)
        lengths.append(steps)
        wins += success_of(env_id, total, term, trunc)
    arr = np.asarray(returns)
    return EvalResult(
        float(arr.mean()),
        float(arr.std(ddof=1)) if episodes > 1 else 0.0,
        wins / episodes,
        mean_ci(arr),
        wilson_interval(wins, episodes),
        episodes,
        float(np.mean(lengths)),
    )


def exact_success(agent, mdp: TabularMDP, agent_index: int = 0) -> float:
    """Exact probability that the agent's greedy policy succeeds within the env's time limit."""
    return success_probability(mdp, agent.q_table(agent_index))
