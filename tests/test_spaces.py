"""Observation spaces made of parts: all-discrete ones as one joint index (a table row per combination, each
part one-hot for DQN), the rest flattened by Gymnasium; anything else refused in one line."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from qlearn import QlearnError
from qlearn.agents import DQNAgent, TabularQAgent, load_agent
from qlearn.config import DQNConfig
from qlearn.envs import make_env
from qlearn.envs.encoding import make_encoder
from qlearn.envs.spaces import MAX_JOINT, JointDiscrete, adapt_observations


class Parts(gym.Env):
    """An env whose observation space is given: it returns that space's samples, and ends after 3 steps."""

    def __init__(self, space: spaces.Space) -> None:
        self.observation_space, self.action_space = space, spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= 3, False, {}


def test_blackjack_is_one_joint_index_over_its_three_parts():
    env = make_env("Blackjack-v1")
    space = env.observation_space
    assert isinstance(space, JointDiscrete) and space.radices == (32, 11, 2) and space.n == 704
    obs, _ = env.reset(seed=3)
    raw = env.unwrapped._get_obs()
    assert obs == np.ravel_multi_index(tuple(int(v) for v in raw), (32, 11, 2))


def test_parts_with_a_start_and_nested_tuples_index_from_zero():
    space = spaces.Tuple((spaces.Discrete(3, start=5), spaces.MultiDiscrete([2, 4], start=[1, 0])))
    env = adapt_observations(Parts(space), "parts")
    assert env.observation_space.radices == (3, 2, 4)
    assert env.observation((7, np.array([2, 3]))) == np.ravel_multi_index((2, 1, 3), (3, 2, 4))
    indices = {env.observation(space.sample()) for _ in range(500)}
    assert min(indices) >= 0 and max(indices) < 24 and len(indices) > 12


def test_a_box_among_the_parts_or_too_many_combinations_flattens_to_a_box():
    mixed = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "mode": spaces.Discrete(3)})
    env = adapt_observations(Parts(mixed), "mixed")
    assert isinstance(env.observation_space, spaces.Box) and env.observation_space.shape == (5,)
    raw = mixed.sample()
    np.testing.assert_array_equal(env.observation(raw), spaces.flatten(mixed, raw))  # Gymnasium's flattening
    assert sorted(np.round(env.observation(raw), 6).tolist()).count(1.0) >= 1
    big = adapt_observations(Parts(spaces.MultiDiscrete([MAX_JOINT, 2])), "big")
    assert isinstance(big.observation_space, spaces.Box) and big.observation_space.shape == (MAX_JOINT + 2,)


def test_a_space_qlearn_cannot_read_is_refused_in_one_line():
    with pytest.raises(QlearnError, match=r"Text observation space; qlearn supports Discrete and Box.*Tuple"):
        adapt_observations(Parts(spaces.Text(5)), "words")
    with pytest.raises(QlearnError, match="Tuple observation space"):
        adapt_observations(Parts(spaces.Tuple((spaces.Discrete(2), spaces.Sequence(spaces.Discrete(2))))), "seq")


def test_dqn_sees_each_part_one_hot_and_the_table_agent_one_row_per_combination(tmp_path):
    env = make_env("Blackjack-v1")
    enc = make_encoder(env.observation_space)
    assert enc.kind == "factored" and enc.dim == 45
    rows = enc.table_np
    assert rows.shape == (704, 45) and (rows.sum(axis=1) == 3).all()
    assert (rows[np.ravel_multi_index((20, 9, 1), (32, 11, 2))].nonzero()[0] == [20, 32 + 9, 43 + 1]).all()
    dqn = DQNAgent.for_env(env, DQNConfig(learning_starts=50, batch_size=16, hidden=(8,)), seed=0)
    state, _ = env.reset(seed=0)
    for _ in range(200):
        action = dqn.get_action(state)
        nxt, r, term, trunc, _ = env.step(action)
        dqn.update(state, action, r, nxt, term, trunc)
        state = nxt if not (term or trunc) else env.reset()[0]
    assert dqn.q_table().shape == (704, 2)
    again = load_agent(dqn.save(tmp_path / "bj.pt"))
    assert again.encoder == dqn.encoder
    np.testing.assert_allclose(again.q_table(), dqn.q_table())
    assert TabularQAgent.for_env(env).q_table().shape == (704, 2)
