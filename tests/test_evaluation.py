"""Evaluation statistics (Wilson interval, t quantile, mean CI) and evaluate() on a known-optimal agent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qlearn.agents.tabular import TabularQAgent
from qlearn.envs import TabularMDP, make_env, value_iteration
from qlearn.errors import QlearnError
from qlearn.evaluation import EvalResult, evaluate, exact_success, mean_ci, t_quantile_975, wilson_interval

Z = 1.959964


def wilson_by_formula(k: int, n: int) -> tuple[float, float]:
    """(p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), written out independently."""
    p = k / n
    centre = p + Z**2 / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    d = 1 + Z**2 / n
    return (centre - half) / d, (centre + half) / d


@pytest.mark.parametrize("k, n, expected", [
    # Standard Wilson 95% values, worked by hand: z^2 = 3.8415, denominator 1 + z^2/10 = 1.38415;
    # 0/10: centre = half = 0.19207 / 1.38415 = 0.13877 -> [0, 0.2775]; 10/10 mirrors it;
    # 5/10: half = 1.96 * sqrt(0.025 + 0.0096) / 1.38415 = 0.2634 -> [0.2366, 0.7634].
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (5, 10, (0.2366, 0.7634)),
])
def test_wilson_interval_known_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


@pytest.mark.parametrize("k, n", [(1, 10), (3, 7), (37, 50), (99, 100), (500, 1000)])
def test_wilson_interval_matches_formula(k, n):
    low, high = wilson_interval(k, n)
    f_low, f_high = wilson_by_formula(k, n)
    assert low == pytest.approx(max(0.0, f_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, f_high), abs=1e-12)
    assert 0 <= low <= k / n <= high <= 1


def test_wilson_interval_properties():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # Symmetric: k successes mirror n - k failures.
    low, high = wilson_interval(3, 20)
    low2, high2 = wilson_interval(17, 20)
    assert low == pytest.approx(1 - high2) and high == pytest.approx(1 - low2)
    # Narrower with more data at the same rate.
    w_small = np.subtract(*wilson_interval(5, 10)[::-1])
    w_big = np.subtract(*wilson_interval(500, 1000)[::-1])
    assert w_big < w_small / 5


@pytest.mark.parametrize("df, t", [(1, 12.706), (3, 3.182), (5, 2.571), (6, 2.447), (10, 2.228), (20, 2.086),
                                   (30, 2.042), (100, 1.984), (1000, 1.962)])
def test_t_quantile_975_against_t_table(df, t):
    assert t_quantile_975(df) == pytest.approx(t, abs=2e-3)


def test_t_quantile_975_decreases_towards_normal():
    values = [t_quantile_975(df) for df in range(1, 200)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert t_quantile_975(10**6) == pytest.approx(1.96, abs=1e-3)
    assert t_quantile_975(0) == math.inf


def test_mean_ci():
    # values 1..5: mean 3, sd sqrt(2.5), half = 2.776 * sqrt(2.5) / sqrt(5) = 2.776 * 0.7071 = 1.963
    low, high = mean_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert low == pytest.approx(3 - 1.963, abs=1e-3)
    assert high == pytest.approx(3 + 1.963, abs=1e-3)
    assert mean_ci(np.array([2.0])) == (2.0, 2.0)
    assert mean_ci(np.array([4.0, 4.0, 4.0])) == (4.0, 4.0)


@pytest.fixture(scope="module")
def optimal_nonslippery():
    env = make_env("FrozenLake-v1", is_slippery=False)
    mdp = TabularMDP.from_env(env)
    agent = TabularQAgent.for_env(env)
    agent.q[0] = value_iteration(mdp, gamma=0.99)[0]
    yield agent, env, mdp
    env.close()


def test_evaluate_optimal_agent_on_nonslippery_lake(optimal_nonslippery):
    agent, env, mdp = optimal_nonslippery
    res = evaluate(agent, env, episodes=20, seed=0)
    assert isinstance(res, EvalResult)
    assert res.episodes == 20
    assert res.success_rate == 1.0
    assert res.mean_return == 1.0 and res.std_return == 0.0
    assert res.mean_length == 6.0  # shortest path on the 4x4 lake
    assert len(res.ci95) == 2 and res.ci95[0] <= res.mean_return <= res.ci95[1]
    assert len(res.success_ci95) == 2 and res.success_ci95[0] <= res.success_rate <= res.success_ci95[1]
    assert res.success_ci95 == pytest.approx(wilson_interval(20, 20))
    assert exact_success(agent, mdp) == pytest.approx(1.0)
    d = res.to_dict()
    assert isinstance(d["ci95"], list) and len(d["ci95"]) == 2
    assert d["success_rate"] == 1.0


def test_evaluate_failing_agent(optimal_nonslippery):
    _, env, _ = optimal_nonslippery
    agent = TabularQAgent.for_env(env)
    agent.q[0, :, 0] = 1.0  # always left: stays on the start tile until the time limit
    res = evaluate(agent, env, episodes=3, max_steps=25)
    assert res.success_rate == 0.0 and res.mean_return == 0.0
    assert res.mean_length == 25.0  # max_steps caps the episode
    assert res.success_ci95[0] == 0.0


def test_evaluate_slippery_statistics_are_consistent():
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    agent = TabularQAgent.for_env(env)
    agent.q[0] = value_iteration(mdp, gamma=0.99)[0]
    res = evaluate(agent, env, episodes=200, seed=1)
    # Exact success of this policy is 0.7402; 200 episodes land well inside +-0.12 of it.
    assert abs(res.success_rate - 0.7402) < 0.12
    assert res.mean_return == pytest.approx(res.success_rate)  # reward 1 only at the goal
    assert res.ci95[0] <= res.mean_return <= res.ci95[1]
    assert res.ci95[1] - res.ci95[0] > 0
    # Same seed, same episodes.
    assert evaluate(agent, env, episodes=30, seed=5) == evaluate(agent, env, episodes=30, seed=5)


@pytest.mark.parametrize("episodes", [0, -1])
def test_evaluate_rejects_fewer_than_one_episode(optimal_nonslippery, episodes):
    agent, env, _ = optimal_nonslippery
    with pytest.raises(QlearnError):
        evaluate(agent, env, episodes=episodes)
