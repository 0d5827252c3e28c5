"""The exact tabular model: value iteration, finite-horizon policy evaluation, success probability."""

from __future__ import annotations

import numpy as np
import pytest

from qlearn.envs import (
    TabularMDP,
    greedy_policy,
    make_env,
    policy_return,
    success_probability,
    value_iteration,
)
from qlearn.errors import QlearnError

# The course's Q-table (slippery 4x4 lake, gamma 0.99; columns left, down, right, up), from the course
# notes, not from this code. It writes 1 for the goal state, where Q* is 0 (never acted in).
COURSE_TABLE = np.array([
    [0.54, 0.53, 0.53, 0.52], [0.34, 0.33, 0.32, 0.50], [0.44, 0.43, 0.42, 0.47], [0.31, 0.31, 0.30, 0.46],
    [0.56, 0.38, 0.37, 0.36], [0, 0, 0, 0], [0.36, 0.2, 0.36, 0.16], [0, 0, 0, 0],
    [0.38, 0.41, 0.40, 0.59], [0.44, 0.64, 0.45, 0.40], [0.62, 0.50, 0.40, 0.33], [0, 0, 0, 0],
    [0, 0, 0, 0], [0.46, 0.53, 0.74, 0.50], [0.73, 0.86, 0.82, 0.78], [1, 1, 1, 1],
])
TERMINAL_4X4 = [5, 7, 11, 12, 15]


@pytest.fixture(scope="module")
def lake4():
    env = make_env("FrozenLake-v1")
    yield TabularMDP.from_env(env)
    env.close()


@pytest.fixture(scope="module")
def q_star4(lake4):
    return value_iteration(lake4, gamma=0.99)


def test_from_env_shapes_and_terminal_states(lake4):
    assert (lake4.n_states, lake4.n_actions) == (16, 4)
    assert lake4.cont.shape == (16, 4, 16) and lake4.reward.shape == (16, 4)
    assert lake4.horizon == 100
    assert np.flatnonzero(lake4.terminal).tolist() == TERMINAL_4X4
    assert lake4.isd.tolist() == [1.0] + [0.0] * 15
    # Each (s, a) splits probability between continuing and ending: total <= 1, and == 1 from a plain
    # frozen tile whose slips never reach a hole or the goal (state 0 only slides to 0, 1, 4).
    assert np.all(lake4.cont.sum(-1) <= 1 + 1e-12)
    np.testing.assert_allclose(lake4.cont[0].sum(-1), 1.0)
    # Reward 1 only on entering the goal: from 14 moving right, the three slips (up, right, down)
    # reach 15 with probability 1/3 (right); down from 14 also reaches 15 with 1/3 (slip right).
    assert lake4.reward[14, 2] == pytest.approx(1 / 3)
    assert lake4.reward[14, 1] == pytest.approx(1 / 3)
    assert lake4.reward[:13].sum() == 0


def test_value_iteration_matches_course_table(lake4, q_star4):
    q, v = q_star4
    assert q.shape == (16, 4)
    live = [s for s in range(16) if s not in TERMINAL_4X4]
    np.testing.assert_allclose(q[live], COURSE_TABLE[live], atol=0.005)
    np.testing.assert_array_equal(q[TERMINAL_4X4], 0.0)
    np.testing.assert_allclose(v, q.max(axis=1))


def test_value_iteration_satisfies_bellman_optimality(lake4, q_star4):
    q, v = q_star4
    np.testing.assert_allclose(q, lake4.reward + 0.99 * lake4.cont @ q.max(axis=1), atol=1e-9)


def test_success_probability_of_optimal_4x4(lake4, q_star4):
    assert success_probability(lake4, q_star4[0]) == pytest.approx(0.7402, abs=5e-4)


def test_success_probability_of_optimal_8x8():
    env = make_env("FrozenLake8x8-v1")
    mdp = TabularMDP.from_env(env)
    assert (mdp.n_states, mdp.horizon) == (64, 200)
    q, _ = value_iteration(mdp, gamma=0.99)
    assert success_probability(mdp, q) == pytest.approx(0.8630, abs=5e-4)


def test_non_slippery_optimal_success_is_one():
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", is_slippery=False))
    q, v = value_iteration(mdp, gamma=0.99)
    assert success_probability(mdp, q) == pytest.approx(1.0)
    # Deterministic: shortest path is 6 steps, the reward comes on the 6th, so V*(0) = 0.99**5.
    assert v[0] == pytest.approx(0.99**5)


def test_policy_return_respects_the_horizon():
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", is_slippery=False))
    q, _ = value_iteration(mdp, gamma=0.99)
    pol = greedy_policy(q)
    assert policy_return(mdp, pol, horizon=5) == 0.0
    assert policy_return(mdp, pol, horizon=6) == pytest.approx(1.0)
    assert policy_return(mdp, pol) == pytest.approx(1.0)  # default: the env's limit of 100


def test_success_probability_of_a_bad_policy_is_zero():
    # Always "left" from state 0 on the non-slippery lake never moves: no success.
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", is_slippery=False))
    q = np.zeros((16, 4))
    q[:, 0] = 1.0
    assert success_probability(mdp, q) == 0.0


def two_state_mdp(horizon=None) -> TabularMDP:
    """State 0: a0 -> state 1 (r 0); a1 -> end (r 1).  State 1: a0 -> end (r 2); a1 -> stay in 1 (r 0)."""
    cont = np.zeros((2, 2, 2))
    cont[0, 0, 1] = 1.0
    cont[1, 1, 1] = 1.0
    reward = np.array([[0.0, 1.0], [2.0, 0.0]])
    return TabularMDP(cont, reward, isd=np.array([1.0, 0.0]), terminal=np.zeros(2, dtype=bool), horizon=horizon)


def test_hand_built_two_state_mdp():
    # gamma 0.9 by hand:
    #   V(1) = max(2, 0.9 * V(1)) = 2            -> Q(1, 0) = 2,   Q(1, 1) = 0.9 * 2 = 1.8
    #   Q(0, 0) = 0 + 0.9 * V(1) = 1.8;  Q(0, 1) = 1   -> V(0) = 1.8
    mdp = two_state_mdp()
    q, v = value_iteration(mdp, gamma=0.9)
    np.testing.assert_allclose(q, [[1.8, 1.0], [2.0, 1.8]], atol=1e-9)
    np.testing.assert_allclose(v, [1.8, 2.0], atol=1e-9)
    # gamma 0.5: Q(0, 0) = 0.5 * 2 = 1 ties with Q(0, 1) = 1; at gamma 0.4 the immediate 1 wins.
    q, _ = value_iteration(mdp, gamma=0.4)
    np.testing.assert_allclose(q, [[0.8, 1.0], [2.0, 0.8]], atol=1e-9)
    assert greedy_policy(q).tolist() == [1, 0]


def test_hand_built_policy_return():
    mdp = two_state_mdp()
    # Policy (0, 0): move to state 1, then collect 2: needs 2 steps.
    assert policy_return(mdp, np.array([0, 0]), horizon=1) == 0.0
    assert policy_return(mdp, np.array([0, 0]), horizon=2) == pytest.approx(2.0)
    # Policy (1, .): collect 1 at once.
    assert policy_return(mdp, np.array([1, 0]), horizon=1) == pytest.approx(1.0)
    # Policy (0, 1): wander in state 1 forever, never rewarded.
    assert policy_return(mdp, np.array([0, 1]), horizon=50) == 0.0
    # no time limit anywhere (CliffWalking-like): a long horizon stands in for "forever"
    from qlearn.envs.tabular import UNLIMITED_HORIZON

    assert policy_return(mdp, np.array([1, 0])) == policy_return(mdp, np.array([1, 0]), horizon=UNLIMITED_HORIZON)


def test_policy_return_with_zero_horizon_is_zero():
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", is_slippery=False))
    q, _ = value_iteration(mdp, gamma=0.99)
    assert policy_return(mdp, greedy_policy(q), horizon=0) == 0.0


def test_greedy_policy_ties_go_to_lowest_action():
    assert greedy_policy(np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 3.0]])).tolist() == [0, 1, 0]


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_value_iteration_rejects_bad_gamma(lake4, gamma):
    with pytest.raises(QlearnError):
        value_iteration(lake4, gamma=gamma)


def test_from_env_without_a_model_raises():
    env = make_env("CartPole-v1")
    with pytest.raises(QlearnError, match="CartPole"):
        TabularMDP.from_env(env)


@pytest.mark.parametrize("kwargs", [{}, {"map_name": "8x8"}, {"is_slippery": False}])
def test_stacked_policy_returns_match_a_plain_induction_per_policy(kwargs):
    from qlearn.envs.tabular import policy_returns

    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", **kwargs))
    policies = np.random.default_rng(3).integers(0, 4, (7, mdp.n_states))
    policies[0] = greedy_policy(value_iteration(mdp, 0.99)[0])
    expected = []
    for pol in policies:  # the definition, one policy at a time in numpy
        r, p = mdp.reward[np.arange(mdp.n_states), pol], mdp.cont[np.arange(mdp.n_states), pol]
        v = np.zeros(mdp.n_states)
        for _ in range(mdp.horizon):
            v = r + p @ v
        expected.append(mdp.isd @ v)
    got = policy_returns(mdp, policies)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got[0] > 0.5 and [policy_return(mdp, pol) for pol in policies] == pytest.approx(expected, abs=1e-12)


def test_the_best_return_within_the_limit_is_above_every_stationary_greedy_policy():
    from qlearn.envs.tabular import best_return_within, greedy_policy

    mdp = TabularMDP.from_env(make_env("FrozenLake-v1"))
    best = best_return_within(mdp)
    q_star, _ = value_iteration(mdp, 0.99)
    assert policy_return(mdp, greedy_policy(q_star)) < best == pytest.approx(0.7442, abs=5e-5)
    rng = np.random.default_rng(0)
    assert max(policy_return(mdp, rng.integers(0, 4, 16)) for _ in range(50)) <= best
    assert best_return_within(mdp, horizon=1) == 0.0  # the goal is further than one step


def test_reachable_states_leave_out_the_cliff_and_what_no_policy_gets_to():
    cliff = TabularMDP.from_env(make_env("CliffWalking-v1"))
    reach = cliff.reachable()
    assert reach[:37].all() and not reach[37:].any()  # the cliff is never stood on; the goal ends the episode
    lake = TabularMDP.from_env(make_env("FrozenLake-v1"))
    assert (lake.reachable() == ~lake.terminal).all()
    walled = TabularMDP.from_env(make_env("FrozenLake-v1", desc=["SH", "HG"]))
    assert walled.reachable().tolist() == [True, False, False, False]  # every move from S ends the episode
