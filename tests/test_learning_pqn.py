"""Slow learning checks on the PQN presets (run with: bash scripts/test.sh -m slow).

Each trains 8 seeds in lockstep as `qlearn train ENV --agent pqn --seeds 8` does (the preset's envs per
agent) and scores every seed's delivered agent: exact success on FrozenLake, 100 greedy episodes on CartPole.
"""

from __future__ import annotations

import pytest

from qlearn import evaluate, make_env
from qlearn.agents import load_agent
from qlearn.envs.tabular import TabularMDP
from qlearn.evaluation import exact_success
from qlearn.presets import default_envs
from qlearn.training.runner import run_many

pytestmark = pytest.mark.slow


def delivered(env_id, tmp_path):
    res = run_many(env_id, "pqn", seeds=range(8), n_envs=default_envs(env_id, "pqn"), out=str(tmp_path),
                   progress=False)
    assert len(res.run_dirs) == 8 and not res.diverged
    return [load_agent(d / "agent.pt", make_env(env_id)) for d in res.run_dirs]


def test_pqn_preset_delivers_the_frozenlake_optimum_on_8_of_8_seeds(tmp_path):
    env = make_env("FrozenLake-v1")
    scores = [exact_success(a, TabularMDP.from_env(env)) for a in delivered("FrozenLake-v1", tmp_path)]
    assert min(scores) >= 0.70, scores


def test_pqn_preset_solves_cartpole_on_8_of_8_seeds(tmp_path):
    scores = [evaluate(a, make_env("CartPole-v1"), 100, seed=12345).mean_return
              for a in delivered("CartPole-v1", tmp_path)]
    assert min(scores) >= 475, scores
