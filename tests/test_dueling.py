"""Dueling head of StackedMLP: Q = V + A - mean(A), checked by hand; DQNAgent with dueling=True."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.agents.dqn import DQNAgent
from qlearn.config import DQNConfig
from qlearn.envs import make_env
from qlearn.errors import QlearnError
from qlearn.nets import StackedMLP
from helpers import play as _play


def _hand_net() -> StackedMLP:
    """2 inputs -> 2 hidden (identity, no bias) -> [V, A0, A1, A2].

    Output layer columns: V = h0 + 0.5, A0 = h0 + h1, A1 = h1, A2 = h0."""
    net = StackedMLP(2, 3, (2,), seeds=(0,), dueling=True)
    w1, b1 = np.eye(2), np.zeros(2)
    w2 = np.array([[1.0, 1.0, 0.0, 1.0],
                   [0.0, 1.0, 1.0, 0.0]])
    b2 = np.array([0.5, 0.0, 0.0, 0.0])
    net.set_weights([w1, b1, w2, b2])
    return net


def test_dueling_head_has_one_extra_output():
    net = StackedMLP(3, 4, (8,), seeds=(0, 1), dueling=True)
    assert [tuple(w.shape) for w in net.weights] == [(2, 3, 8), (2, 8, 5)]  # V and 4 advantages
    assert net(torch.zeros(2, 6, 3)).shape == (2, 6, 4)  # Q for 4 actions
    assert [a.shape for a in net.get_weights(1)] == [(3, 8), (8,), (8, 5), (5,)]
    plain = StackedMLP(3, 4, (8,), seeds=(0,))
    assert not plain.dueling and plain.weights[-1].shape == (1, 8, 4)


def test_dueling_output_by_hand():
    net = _hand_net()
    x = torch.tensor([[[1.0, 2.0], [-1.0, 2.0]]])
    q = net(x)
    # x = (1, 2):  h = (1, 2); V = 1 + 0.5 = 1.5; A = (1+2, 2, 1) = (3, 2, 1), mean 2
    #              Q = 1.5 + (3, 2, 1) - 2 = (2.5, 1.5, 0.5)
    # x = (-1, 2): h = relu(-1, 2) = (0, 2); V = 0 + 0.5 = 0.5; A = (2, 2, 0), mean 4/3
    #              Q = 0.5 + (2 - 4/3, 2 - 4/3, 0 - 4/3) = (7/6, 7/6, -5/6)
    torch.testing.assert_close(q, torch.tensor([[[2.5, 1.5, 0.5], [7 / 6, 7 / 6, -5 / 6]]]))
    # the mean over actions is V: (2.5 + 1.5 + 0.5) / 3 = 1.5 and (7/6 + 7/6 - 5/6) / 3 = 0.5
    torch.testing.assert_close(q.mean(-1), torch.tensor([[1.5, 0.5]]))


def test_adding_a_constant_to_all_advantages_leaves_q_unchanged():
    net = _hand_net()
    x = torch.tensor([[[1.0, 2.0], [-1.0, 2.0], [0.3, -0.7]]])
    q0 = net(x)
    w1, b1, w2, b2 = net.get_weights()
    net.set_weights([w1, b1, w2, b2 + np.array([0.0, 7.0, 7.0, 7.0])])  # A + 7 for every action
    torch.testing.assert_close(net(x), q0)
    net.set_weights([w1, b1, w2, b2 + np.array([1.0, 0.0, 0.0, 0.0])])  # V + 1 shifts every Q by 1
    torch.testing.assert_close(net(x), q0 + 1)


@pytest.mark.parametrize("seeds", [(0,), (3, 4)])
def test_dueling_matches_v_plus_a_minus_mean_from_get_weights(seeds):
    net = StackedMLP(5, 4, (8, 6), seeds=seeds, dueling=True)
    x = torch.randn(len(seeds), 7, 5, generator=torch.Generator().manual_seed(0))
    q = net(x).detach().numpy()
    for k in range(len(seeds)):
        w1, b1, w2, b2, w3, b3 = net.get_weights(k)
        h = np.maximum(np.maximum(x[k].numpy() @ w1 + b1, 0) @ w2 + b2, 0)
        out = h @ w3 + b3
        v, a = out[:, :1], out[:, 1:]
        np.testing.assert_allclose(q[k], v + a - a.mean(1, keepdims=True), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(q[k].mean(1), v[:, 0], rtol=1e-5, atol=1e-6)  # mean_a Q = V


def test_dueling_agents_are_independent():
    alone = StackedMLP(3, 2, (8,), seeds=(5,), dueling=True)
    pair = StackedMLP(3, 2, (8,), seeds=(4, 5), dueling=True)
    x = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pair(x.expand(2, 4, 3).contiguous())[1], alone(x)[0])


# ------------------------------------------------------------------ the agent



def test_dueling_agent_trains_saves_and_loads(tmp_path):
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(hidden=(16,), batch_size=16, buffer_size=500, learning_starts=50, train_freq=1,
                    dueling=True, lr=1e-3)
    agent = DQNAgent.for_env(env, cfg, seed=3)
    assert agent.net.dueling and agent.target.dueling
    w0 = [p.detach().clone() for p in agent.net.parameters()]
    _play(agent, env, 300)
    assert agent.updates == 251
    assert np.isfinite(agent.metrics()["loss"])
    assert not all(torch.equal(a, b) for a, b in zip(w0, agent.net.parameters()))
    q = agent.q_table()
    assert q.shape == (16, 4) and np.isfinite(q).all()
    path = agent.save(tmp_path / "duel.pt")
    back = DQNAgent.load(path, env=env)
    assert back.config.dueling and back.net.dueling
    np.testing.assert_array_equal(back.q_table(), q)
    # the same weights in a plain (non-dueling) agent do not fit: the output layer has 5 columns, not 4
    plain = DQNAgent.for_env(env, DQNConfig(hidden=(16,), batch_size=16, buffer_size=500), seed=3)
    with pytest.raises(QlearnError, match="does not fit"):
        plain.load_state_dict(back.state_dict())
    env.close()
