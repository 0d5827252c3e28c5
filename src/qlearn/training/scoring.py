"""How a run judges its agent during training.

Tabular environments (a transition model in ``env.unwrapped.P``) are scored exactly: the success
probability of the greedy policy within the time limit, with no sampling noise, so "best so far" means
best. Other environments are scored by greedy evaluation episodes on a separate env instance.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from qlearn.envs.tabular import TabularMDP, success_probability
from qlearn.evaluation import evaluate


class Scorer:
    """``scorer(agent) -> {"score": ..., "success": ...}``; higher score is better."""

    def __init__(self, env: gym.Env, episodes: int = 50, seed: int = 10_000) -> None:
        self.mdp = TabularMDP.from_env(env) if hasattr(env.unwrapped, "P") and \
            isinstance(env.observation_space, gym.spaces.Discrete) else None
        self.exact = self.mdp is not None
        self.episodes, self.seed = episodes, seed
        self._env = None if self.exact else gym.make(env.spec) if env.spec else None
        self._calls = 0

    def __call__(self, agent: Any) -> dict[str, float]:
        if self.mdp is not None:
            p = success_probability(self.mdp, agent.q_table(0))
            return {"score": p, "success": p}
        assert self._env is not None, "sampled scoring needs an env with a registered spec"
        self._calls += 1
        res = evaluate(agent, self._env, self.episodes, seed=self.seed + 1000 * self._calls)
        return {"score": res.mean_return, "success": res.success_rate}

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
