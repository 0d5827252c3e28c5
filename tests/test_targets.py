"""The TD target on hand-made tensors, and how DQNAgent feeds it (terminated vs truncated, Double DQN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qlearn.agents.engine as dqn_module  # td_target is called by the autograd engine
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.targets import td_target
from qlearn.config import DQNConfig
from qlearn.envs import make_env


def test_plain_max_target():
    # r + gamma * max_a' Q_target(s', a'):
    #   row 0: 1 + 0.5 * max(2, 8, 4)  = 1 + 4   = 5
    #   row 1: 0 + 0.5 * max(-3, -1, -2) = -0.5
    #   row 2: -1 + 0.5 * max(0, 0, 6) = -1 + 3 = 2
    rewards = torch.tensor([[1.0, 0.0, -1.0]])
    terminated = torch.zeros(1, 3)
    next_q = torch.tensor([[[2.0, 8.0, 4.0], [-3.0, -1.0, -2.0], [0.0, 0.0, 6.0]]])
    y = td_target(rewards, terminated, next_q, 0.5)
    assert y.shape == (1, 3)
    torch.testing.assert_close(y, torch.tensor([[5.0, -0.5, 2.0]]))


def test_terminal_transition_gives_just_the_reward():
    # terminated = 1 removes the bootstrap: y = r whatever Q_target(s') says.
    #   row 0 (terminal): y = 1;  row 1 (not terminal): y = 1 + 0.9 * 10 = 10
    rewards = torch.tensor([[1.0, 1.0]])
    terminated = torch.tensor([[1.0, 0.0]])
    next_q = torch.tensor([[[10.0, -5.0], [10.0, -5.0]]])
    y = td_target(rewards, terminated, next_q, 0.9)
    torch.testing.assert_close(y, torch.tensor([[1.0, 10.0]]))
    # also with a boolean mask and in the Double DQN form
    y2 = td_target(rewards, terminated.bool(), next_q, 0.9, next_q_online=torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    # row 1: online picks action 1, target values it at -5: 1 + 0.9 * -5 = -3.5
    torch.testing.assert_close(y2, torch.tensor([[1.0, -3.5]]))


def test_double_dqn_uses_online_argmax_and_target_value():
    # Online net prefers action 1; the target net's own max is at action 0.
    #   plain DQN:  r + g * max(Q_t)        = 1 + 0.5 * 10 = 6
    #   Double DQN: r + g * Q_t[argmax Q_o] = 1 + 0.5 * Q_t[1] = 1 + 0.5 * 4 = 3
    rewards = torch.tensor([[1.0]])
    terminated = torch.zeros(1, 1)
    q_target = torch.tensor([[[10.0, 4.0, 3.0]]])
    q_online = torch.tensor([[[1.0, 5.0, 2.0]]])
    plain = td_target(rewards, terminated, q_target, 0.5)
    double = td_target(rewards, terminated, q_target, 0.5, next_q_online=q_online)
    torch.testing.assert_close(plain, torch.tensor([[6.0]]))
    torch.testing.assert_close(double, torch.tensor([[3.0]]))


def test_double_dqn_batched_over_agents():
    # K=2 agents, B=2: each element independently.
    #   k0 b0: online argmax 2 -> target 7 -> 0 + 1.0 * 7 = 7
    #   k0 b1: online argmax 0 -> target 1 -> 2 + 1.0 * 1 = 3
    #   k1 b0: online argmax 1 -> target 0 -> 1 + 1.0 * 0 = 1
    #   k1 b1: terminal -> 5
    rewards = torch.tensor([[0.0, 2.0], [1.0, 5.0]])
    terminated = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    q_t = torch.tensor([[[9.0, 8.0, 7.0], [1.0, 9.0, 9.0]], [[9.0, 0.0, 9.0], [9.0, 9.0, 9.0]]])
    q_o = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]], [[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]]])
    y = td_target(rewards, terminated, q_t, 1.0, next_q_online=q_o)
    torch.testing.assert_close(y, torch.tensor([[7.0, 3.0], [1.0, 5.0]]))


def test_gamma_zero_is_reward_only():
    y = td_target(torch.tensor([[2.0]]), torch.zeros(1, 1), torch.tensor([[[100.0, 50.0]]]), 0.0)
    torch.testing.assert_close(y, torch.tensor([[2.0]]))


@pytest.fixture
def capture_td(monkeypatch):
    """Record every call DQNAgent makes to td_target (arguments and result)."""
    calls: list[dict] = []

    def spy(rewards, terminated, next_q_target, gamma, next_q_online=None):
        y = td_target(rewards, terminated, next_q_target, gamma, next_q_online)
        calls.append({"rewards": rewards.clone(), "terminated": terminated.clone(),
                      "next_q_target": next_q_target.clone(), "gamma": gamma,
                      "next_q_online": None if next_q_online is None else next_q_online.clone(), "y": y.clone()})
        return y

    monkeypatch.setattr(dqn_module, "td_target", spy)
    return calls


def _one_step_agent(double: bool) -> DQNAgent:
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(batch_size=1, buffer_size=1, learning_starts=1, train_freq=1, gamma=0.9, hidden=(8,),
                    double=double, target_update_interval=1000, engine="torch")  # spies on the autograd path
    agent = DQNAgent.for_env(env, cfg, seed=0)
    # Make the target net differ from the online one, so online/target roles are distinguishable.
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.3)
    return agent


@pytest.mark.parametrize("double", [False, True])
def test_truncated_transition_still_bootstraps_in_dqn(capture_td, double):
    agent = _one_step_agent(double)
    s, a, r, s2 = 14, 2, 0.25, 10
    with torch.no_grad():
        x2 = agent.encoder(np.array([[s2]]))
        q_t = agent.target(x2)[0, 0]
        q_o = agent.net(x2)[0, 0]
    v_next = q_t[q_o.argmax()] if double else q_t.max()
    expected = r + 0.9 * float(v_next)
    assert abs(float(v_next)) > 1e-3  # a bootstrap that is visible

    loss = agent.update(s, a, r, s2, terminated=False, truncated=True)
    assert loss is not None and agent.updates == 1
    assert agent.buffer.terminated[0, 0].item() == 0.0
    assert agent.buffer.truncated[0, 0].item() == 1.0
    assert len(capture_td) == 1
    call = capture_td[0]
    assert call["terminated"].tolist() == [[0.0]]  # truncation is not passed as termination
    assert (call["next_q_online"] is not None) == double
    assert call["y"].item() == pytest.approx(expected, abs=1e-6)
    assert call["y"].item() != pytest.approx(r, abs=1e-4)


def test_terminated_transition_does_not_bootstrap_in_dqn(capture_td):
    agent = _one_step_agent(double=True)
    agent.update(14, 2, 1.0, 15, terminated=True, truncated=False)
    assert agent.buffer.terminated[0, 0].item() == 1.0
    assert agent.buffer.truncated[0, 0].item() == 0.0
    assert capture_td[0]["terminated"].tolist() == [[1.0]]
    assert capture_td[0]["y"].item() == pytest.approx(1.0)


def test_double_dqn_agent_passes_online_values_of_next_state(capture_td):
    agent = _one_step_agent(double=True)
    with torch.no_grad():
        x2 = agent.encoder(np.array([[3]]))
        q_o, q_t = agent.net(x2), agent.target(x2)
    agent.update(2, 1, 0.0, 3, terminated=False)
    call = capture_td[0]
    torch.testing.assert_close(call["next_q_online"], q_o)
    torch.testing.assert_close(call["next_q_target"], q_t)
    assert call["gamma"] == 0.9
