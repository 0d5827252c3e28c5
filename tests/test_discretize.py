"""Uniform bins over continuous observations, and the tabular agent on top of them."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from qlearn import QlearnError, TabularConfig, TabularQAgent, make_env, train
from qlearn.envs.discretize import Discretizer


def test_bins_by_hand():
    d = Discretizer((0.0, -1.0), (1.0, 1.0), (4, 2))
    # x in [0,1) split in 4: 0.3 -> cell 1; y in [-1,1) split in 2: 0.5 -> cell 1; index = 1*2 + 1 = 3
    assert d(np.array([0.3, 0.5])) == 3
    assert d(np.array([0.0, -1.0])) == 0
    assert d(np.array([0.99, 0.99])) == 7
    # outside the range: clipped to the edge cells
    assert d(np.array([-5.0, 9.0])) == 1 and d(np.array([5.0, -9.0])) == 6
    assert d.n_states == 8
    # batched: shape [..., D] -> [...]
    assert d(np.array([[[0.3, 0.5], [0.0, -1.0]]])).tolist() == [[3, 0]]


def test_centers_map_back_to_their_own_cells():
    d = Discretizer((-1.2, -0.07), (0.6, 0.07), (5, 7))
    assert d(d.centers()).tolist() == list(range(35))


def test_for_space_broadcasts_one_count_and_refuses_infinite_ranges():
    box = spaces.Box(np.array([-1.0, -2.0], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32))
    assert Discretizer.for_space(box, (10,)).bins == (10, 10)
    with pytest.raises(QlearnError, match="one positive count per observation dimension"):
        Discretizer.for_space(box, (3, 3, 3))
    cartpole = make_env("CartPole-v1").observation_space
    with pytest.raises(QlearnError, match="bin_low"):
        Discretizer.for_space(cartpole, (6,))
    d = Discretizer.for_space(cartpole, (6,), (-2.4, -3, -0.21, -3), (2.4, 3, 0.21, 3))
    assert d.n_states == 6**4
    with pytest.raises(QlearnError, match="Box"):
        Discretizer.for_space(spaces.Discrete(4), (3,))


def test_tabular_agent_needs_bins_on_continuous_states():
    env = make_env("MountainCar-v0")
    with pytest.raises(QlearnError, match="bins"):
        TabularQAgent.for_env(env)
    agent = TabularQAgent.for_env(env, TabularConfig(bins=(8, 6)))
    assert agent.q_table().shape == (48, 3)


def test_binned_agent_learns_and_round_trips(tmp_path):
    env = make_env("MountainCar-v0")
    agent = TabularQAgent.for_env(env, TabularConfig(bins=(10,), alpha=0.2, alpha_end=0.2), seed=0)
    train(agent, env, 3_000, eval_every=3_000, eval_episodes=2, progress=False, run_dir=tmp_path)
    q = agent.q_table()
    assert np.count_nonzero(q) > 10  # the visited bins were updated (rewards are -1 per step)
    loaded = TabularQAgent.load(tmp_path / "agent.pt", env=env)
    assert np.array_equal(loaded.q_table(), q)
    obs = np.array([[[-0.5, 0.0]]], dtype=np.float32)
    assert loaded.act(obs, greedy=True).tolist() == agent.act(obs, greedy=True).tolist()
    with pytest.raises(QlearnError):
        TabularQAgent.load(tmp_path / "agent.pt", env=make_env("Acrobot-v1"))


def test_value_policy_plot_over_a_2d_state_space():
    from qlearn.plotting import value_policy_grid

    env = make_env("MountainCar-v0")
    agent = TabularQAgent.for_env(env, TabularConfig(bins=(4, 4)))
    agent.q[0, :, 2] = 1.0  # "push right" everywhere
    agent.q[0, 0, 0] = 2.0  # except the lowest-left bin: "push left"
    fig = value_policy_grid(agent, agent.discretizer.low, agent.discretizer.high, resolution=8, env_id="MountainCar-v0")
    value_img, policy_img = (ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images())
    assert policy_img[0, 0] == 0 and policy_img[-1, -1] == 2  # origin="lower": row 0 is the lowest velocity
    assert value_img[0, 0] == 2.0 and value_img[-1, -1] == 1.0
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert labels == ["push left", "no push", "push right"]
