"""Environment construction errors, FrozenLake options, observation encoders, success rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from qlearn.envs import TabularMDP, make_encoder, make_env, success_of
from qlearn.envs.make import EnvSpec, obs_size
from qlearn.errors import QlearnError, did_you_mean


def test_unknown_env_suggests_close_name():
    with pytest.raises(QlearnError) as info:
        make_env("FrozenLake-v2")
    msg = str(info.value)
    assert "'FrozenLake-v2'" in msg
    assert "did you mean" in msg and "FrozenLake-v1" in msg


def test_unknown_env_with_wrong_case_suggests_name():
    with pytest.raises(QlearnError, match="CartPole-v1"):
        make_env("cartpole-v1")


def test_did_you_mean():
    assert "lr" in did_you_mean("lrr", ["lr", "gamma", "tau"])
    assert did_you_mean("zzzzzz", ["lr", "gamma"]) == ""


@pytest.mark.parametrize("env_id", ["MountainCarContinuous-v0", "Pendulum-v1"])
def test_continuous_action_space_is_refused(env_id):
    with pytest.raises(QlearnError) as info:
        make_env(env_id)
    assert env_id in str(info.value) and "Box" in str(info.value)


def test_bad_option_is_a_qlearn_error():
    with pytest.raises(QlearnError, match="FrozenLake-v1"):
        make_env("FrozenLake-v1", no_such_option=3)


def test_unknown_map_name_is_a_qlearn_error():
    with pytest.raises(QlearnError, match="5x5"):
        make_env("FrozenLake-v1", map_name="5x5")


def test_custom_desc_map():
    env = make_env("FrozenLake-v1", desc=["SF", "HG"], is_slippery=False)
    assert env.observation_space.n == 4 and env.action_space.n == 4
    state, _ = env.reset(seed=0)
    assert state == 0
    state, r, term, _, _ = env.step(2)  # right -> 1
    assert (state, r, term) == (1, 0.0, False)
    state, r, term, _, _ = env.step(1)  # down -> goal 3
    assert (state, r, term) == (3, 1.0, True)
    mdp = TabularMDP.from_env(env)
    assert mdp.terminal.tolist() == [False, False, True, True]


def test_non_slippery_is_deterministic():
    env = make_env("FrozenLake-v1", is_slippery=False)
    mdp = TabularMDP.from_env(env)
    # each (s, a) goes to exactly one place: continues with probability 1 or 0, never a fraction
    assert set(np.unique(mdp.cont)) <= {0.0, 1.0}
    assert mdp.cont[0, 2, 1] == 1.0 and mdp.cont[0, 1, 4] == 1.0
    # the slippery lake really is stochastic
    slippery = TabularMDP.from_env(make_env("FrozenLake-v1"))
    assert slippery.cont[0, 2, 1] == pytest.approx(1 / 3)


def test_eight_by_eight_and_env_spec():
    env = EnvSpec("FrozenLake-v1", {"map_name": "8x8"}).make()
    assert env.observation_space.n == 64
    assert obs_size(env) == 64
    with pytest.raises(QlearnError):
        obs_size(make_env("CartPole-v1"))


def test_onehot_encoder():
    enc = make_encoder(spaces.Discrete(5))
    assert (enc.kind, enc.dim, enc.n_states) == ("onehot", 5, 5)
    x = enc(np.array([[3, 0]]))
    assert x.shape == (1, 2, 5) and x.dtype == torch.float32
    assert x[0, 0].tolist() == [0, 0, 0, 1, 0]
    assert x[0, 1].tolist() == [1, 0, 0, 0, 0]
    torch.testing.assert_close(enc.all_states(), torch.eye(5))


def test_scalar_encoder_is_normalised():
    enc = make_encoder(spaces.Discrete(16), "scalar")
    assert (enc.kind, enc.dim) == ("scalar", 1)
    feats = enc.all_states()
    assert feats.shape == (16, 1)
    assert feats.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert feats.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(feats[1:] > feats[:-1])  # order of states kept
    assert enc(np.array([[0]])).shape == (1, 1, 1)
    # a single state has no spread: stays finite
    assert torch.isfinite(make_encoder(spaces.Discrete(1), "scalar").all_states()).all()


def test_box_encoder_passes_through():
    space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float64)
    enc = make_encoder(space)
    assert (enc.kind, enc.dim, enc.n_states) == ("box", 4, None)
    obs = np.array([[[0.1, -0.2, 0.3, -0.4]]])
    x = enc(obs)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 4)
    torch.testing.assert_close(x, torch.tensor(obs, dtype=torch.float32))
    with pytest.raises(QlearnError):
        enc.all_states()


def test_encoder_errors():
    with pytest.raises(QlearnError):
        make_encoder(spaces.Discrete(4), "binary")
    with pytest.raises(QlearnError):
        make_encoder(spaces.MultiBinary(3))


@pytest.mark.parametrize("env_id, ret, term, trunc, success", [
    ("FrozenLake-v1", 1.0, True, False, True),
    ("FrozenLake-v1", 0.0, True, False, False),   # fell in a hole
    ("FrozenLake-v1", 0.0, False, True, False),   # ran out of time
    ("FrozenLake8x8-v1", 1.0, True, False, True),
    ("CliffWalking-v1", -13.0, True, False, False),
    ("Taxi-v3", 8.0, True, False, True),
    ("MountainCar-v0", -120.0, True, False, True),  # reached the flag
    ("MountainCar-v0", -200.0, False, True, False),
    ("Acrobot-v1", -80.0, True, False, True),
    ("CartPole-v1", 500.0, False, True, True),     # survived to the limit
    ("CartPole-v1", 30.0, True, False, False),     # pole fell
    ("LunarLander-v3", 200.0, True, False, True),  # other: positive return at a true end
    ("LunarLander-v3", -50.0, True, False, False),
    ("LunarLander-v3", 50.0, False, True, False),
    ("ALE/Pong-v5", 5.0, True, False, True),
])
def test_success_of_rules(env_id, ret, term, trunc, success):
    assert bool(success_of(env_id, ret, term, trunc)) is success


@pytest.mark.parametrize("env_id,kind", [("FrozenLake-v1", "onehot"), ("FrozenLake-v1", "scalar"),
                                         ("MountainCar-v0", "onehot"), ("CartPole-v1", "onehot")])
def test_tensor_features_equal_the_numpy_ones(env_id, kind):
    """GPU rollouts encode tensors where they are; the features must be the numpy path's, bit for bit."""
    env = make_env(env_id)
    enc = make_encoder(env.observation_space, kind)
    obs = np.stack([[env.observation_space.sample() for _ in range(5)] for _ in range(3)])
    got = enc.tensor(torch.as_tensor(obs))
    assert got.dtype == torch.float32 and got.shape[:2] == (3, 5)
    np.testing.assert_array_equal(got.numpy().reshape(3, 5, -1), enc.np(obs).reshape(3, 5, -1))
