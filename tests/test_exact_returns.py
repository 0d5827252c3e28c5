"""Exact return distributions from a model (qlearn.exact_returns): a hand-made chain whose distributions
are worked out by hand (rewards at termination: exact; rewards on the way: on a grid within its stated
Wasserstein-1 bound), FrozenLake's means equal to the policy's values, the Wasserstein-1 distance and
the projections that give an agent's floor."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from qlearn.envs.make import make_env
from qlearn.envs.tabular import TabularMDP, Transitions, greedy_policy, value_iteration
from qlearn.exact_returns import (
    distances,
    project_c51,
    project_quantiles,
    return_distributions,
    wasserstein1,
)


class Chain(gym.Env):
    """Three states with a model ``P`` (one action). ``rewards_on_the_way`` False: from 0, half the time
    the episode ends with reward 1, else on to 1, which ends with reward 2. True: from 0 to 1 with reward
    1; from 1, half the time the episode ends (reward 0), else back to 0."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, rewards_on_the_way: bool) -> None:
        end = [(1.0, 2, 0.0, True)]
        if rewards_on_the_way:
            self.P = {0: {0: [(1.0, 1, 1.0, False)]}, 1: {0: [(0.5, 2, 0.0, True), (0.5, 0, 0.0, False)]}, 2: {0: end}}
        else:
            self.P = {0: {0: [(0.5, 2, 1.0, True), (0.5, 1, 0.0, False)]}, 1: {0: [(1.0, 2, 2.0, True)]}, 2: {0: end}}


def test_terminal_rewards_give_the_exact_distribution():
    d = return_distributions(Transitions.from_env(Chain(False)), np.zeros(3, int), 0.9)
    assert d.exact and d.w1_bound <= 2e-6
    np.testing.assert_allclose(d.returns[0], [1.0, 1.8])  # 1 now, or 2 one step later: 0.9 * 2
    np.testing.assert_allclose(d.probs[0], [0.5, 0.5])
    np.testing.assert_allclose(d.returns[1], [2.0])
    np.testing.assert_allclose(d.returns[2], [0.0])  # already over: nothing more to collect


def test_rewards_on_the_way_are_on_a_grid_within_the_stated_bound():
    gamma = 0.9
    d = return_distributions(Transitions.from_env(Chain(True)), np.zeros(3, int), gamma, atoms=4001)
    assert not d.exact
    # from 0: 1, then with prob 1/2 it ends, else 0.9^2 further on it starts again: 1 + g^2 + g^4 ... w.p. 2^-k
    k = np.arange(1, 60)
    truth = np.cumsum(gamma ** (2 * (k - 1))), 0.5**k
    w1 = wasserstein1(d.returns[0], d.probs[0], truth[0], truth[1] / truth[1].sum())
    assert w1 <= d.w1_bound and d.w1_bound < 0.02
    assert d.mean(0) == pytest.approx(1 / (1 - 0.5 * gamma**2), abs=d.w1_bound)


def test_frozenlake_distribution_means_are_the_policy_values():
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    q, v = value_iteration(mdp, 0.99)
    d = return_distributions(Transitions.from_env(env), greedy_policy(q), 0.99)
    assert d.exact
    np.testing.assert_allclose([d.mean(s) for s in range(16)], v, atol=1e-5)
    for s in range(16):  # every return is gamma^t (the goal after t + 1 steps) or 0
        r = d.returns[s][d.returns[s] > 0]
        t = np.log(r) / np.log(0.99)
        np.testing.assert_allclose(t, np.round(t), atol=1e-6)
        assert d.probs[s].sum() == pytest.approx(1.0)


def test_wasserstein1_on_hand_worked_numbers():
    assert wasserstein1(np.array([0.0]), np.array([1.0]), np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)
    assert wasserstein1(np.array([0.0, 1.0]), np.array([0.5, 0.5]), np.array([0.5]), np.array([1.0])) == pytest.approx(0.5)
    x, p = np.array([0.0, 2.0, 5.0]), np.array([0.2, 0.3, 0.5])
    assert wasserstein1(x, p, x, p) == pytest.approx(0.0)


def test_projections_give_the_best_representation_and_its_distance():
    support = np.array([0.0, 1.0])
    np.testing.assert_allclose(project_c51(np.array([0.25]), np.array([1.0]), support), [0.75, 0.25])
    np.testing.assert_allclose(project_c51(np.array([-3.0, 7.0]), np.array([0.5, 0.5]), support), [0.5, 0.5])
    np.testing.assert_allclose(project_quantiles(np.array([0.0, 1.0]), np.array([0.25, 0.75]), 4), [0, 1, 1, 1])
    exact = return_distributions(Transitions.from_env(Chain(False)), np.zeros(3, int), 0.9)
    atoms = np.linspace(0, 2, 5)  # 0, 0.5, 1, 1.5, 2: 1.8 is between 1.5 and 2
    learned = [(atoms, project_c51(exact.returns[s], exact.probs[s], atoms)) for s in range(3)]
    w1, floor = distances(learned, exact, "c51")
    np.testing.assert_allclose(w1, floor)  # the projection itself is at the floor
    assert floor[0] == pytest.approx(0.5 * (0.4 * 0.3 + 0.6 * 0.2))  # 1.8: 0.4 moved to 1.5, 0.6 to 2
    assert floor[1] == floor[2] == 0.0
