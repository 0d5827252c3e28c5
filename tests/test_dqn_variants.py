"""DQN variants on hand examples: learning-rate decay, soft target updates, Huber vs MSE, the n-step target,
and validation of the new config fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qlearn.agents.engine as dqn_module  # td_target is called by the autograd engine
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.targets import td_target
from qlearn.config import DQNConfig
from qlearn.envs import make_env
from qlearn.errors import QlearnError
from helpers import play as _play

SMALL = dict(hidden=(16,), batch_size=16, buffer_size=500)


@pytest.fixture
def lake():
    env = make_env("FrozenLake-v1")
    yield env
    env.close()


def _agent(env, seed: int = 0, **cfg) -> DQNAgent:
    return DQNAgent.for_env(env, DQNConfig(**{**SMALL, **cfg}), seed=seed)



def _lr(agent) -> list[float]:
    return [g["lr"] for g in agent.optimizer.param_groups]


# ------------------------------------------------------------------ learning-rate schedule


def test_lr_decays_linearly_to_lr_end(lake, tmp_path):
    # lr 0.01 -> 0.001 over 100 env steps; the rate is set from the env step count at each gradient step.
    agent = _agent(lake, lr=1e-2, lr_end=1e-3, lr_decay_steps=100, learning_starts=10, train_freq=1)
    _play(agent, lake, 9)
    assert agent.updates == 0 and _lr(agent) == [pytest.approx(1e-2)]  # untouched before training
    _play(agent, lake, 31, seed=1)  # steps = 40: 0.01 + 0.4 * (0.001 - 0.01) = 0.01 - 0.0036 = 0.0064
    assert agent.steps == 40
    assert _lr(agent) == [pytest.approx(0.0064)]
    _play(agent, lake, 35, seed=2)  # steps = 75: 0.01 - 0.75 * 0.009 = 0.00325
    assert _lr(agent) == [pytest.approx(0.00325)]
    # the rate is kept in the checkpoint's optimizer state
    back = DQNAgent.load(agent.save(tmp_path / "lr.pt"), env=lake)
    assert _lr(back) == [pytest.approx(0.00325)]
    _play(agent, lake, 75, seed=3)  # steps = 150 > 100: stays at lr_end
    assert _lr(agent) == [pytest.approx(1e-3)]


def test_lr_constant_without_lr_end(lake):
    agent = _agent(lake, lr=1e-2, learning_starts=10, train_freq=1, lr_decay_steps=10)
    _play(agent, lake, 60)
    assert agent.updates == 51
    assert _lr(agent) == [1e-2]


# ------------------------------------------------------------------ target network


def _fill(params, value: float) -> None:
    with torch.no_grad():
        for p in params:
            p.fill_(value)


def test_soft_target_update_on_hand_example(lake):
    # tau 0.25, online = 2, target = 10: target <- 0.25 * 2 + 0.75 * 10 = 8, then 0.25 * 2 + 0.75 * 8 = 6.5
    agent = _agent(lake, tau=0.25)
    _fill(agent.net.parameters(), 2.0)
    _fill(agent.target.parameters(), 10.0)
    agent._update_target()
    assert all(torch.all(p == 8.0) for p in agent.target.parameters())
    agent._update_target()
    assert all(torch.all(p == 6.5) for p in agent.target.parameters())
    assert all(torch.all(p == 2.0) for p in agent.net.parameters())  # the online net is not touched


def test_soft_target_update_after_one_train_step(lake):
    # every gradient step blends: target = 0.1 * online (after the step) + 0.9 * 10
    agent = _agent(lake, tau=0.1, learning_starts=1, train_freq=1, lr=1e-2, target_update_interval=1000)
    _fill(agent.target.parameters(), 10.0)
    agent.update(0, 1, 0.0, 4, False)
    assert agent.updates == 1
    for target, online in zip(agent.target.parameters(), agent.net.parameters()):
        torch.testing.assert_close(target, 0.1 * online.detach() + 0.9 * 10.0)


def test_hard_target_update_only_at_interval(lake):
    # tau 1: copy only when updates is a multiple of target_update_interval (3)
    agent = _agent(lake, target_update_interval=3)
    _fill(agent.net.parameters(), 2.0)
    _fill(agent.target.parameters(), 10.0)
    for updates, expected in [(1, 10.0), (2, 10.0), (3, 2.0)]:
        agent.updates = updates
        agent._update_target()
        assert all(torch.all(p == expected) for p in agent.target.parameters()), updates


# ------------------------------------------------------------------ loss


def _zero_q_agent(env, loss: str) -> DQNAgent:
    """An agent whose Q is 0 everywhere (all weights and biases 0), trained on one terminal transition."""
    agent = DQNAgent.for_env(env, DQNConfig(hidden=(4,), batch_size=1, buffer_size=1, learning_starts=1,
                                            train_freq=1, loss=loss, max_grad_norm=0.0), seed=0)
    _fill(agent.net.parameters(), 0.0)
    return agent


@pytest.mark.parametrize("reward, mse, huber", [
    # terminal, so y = r; q = 0, TD error d = -r.  MSE = d^2;  Huber = d^2 / 2 if |d| <= 1 else |d| - 1/2
    (0.5, 0.25, 0.125),
    (10.0, 100.0, 9.5),
    (20.0, 400.0, 19.5),
])
def test_huber_vs_mse_on_hand_example(lake, reward, mse, huber):
    for name, expected in [("mse", mse), ("huber", huber)]:
        agent = _zero_q_agent(lake, name)
        loss = agent.update(0, 1, reward, 4, terminated=True)
        assert loss == pytest.approx(expected), name


@pytest.mark.parametrize("reward", [10.0, 20.0])
def test_huber_gradient_is_bounded(lake, reward):
    # d loss / d q at q = 0, y = r:  MSE 2 (q - y) = -2r;  Huber clip(q - y, -1, 1) = -1.
    # Q(s, a) = b_out[a] here (the hidden layer outputs relu(0) = 0), so that is the output bias's gradient
    # for action 1, and every other gradient is 0.
    grads = {}
    for name in ("mse", "huber"):
        agent = _zero_q_agent(lake, name)
        agent.update(0, 1, reward, 4, terminated=True)
        grads[name] = agent.net.biases[-1].grad[0, 0].tolist()
    assert grads["mse"] == [0.0, -2 * reward, 0.0, 0.0]
    assert grads["huber"] == [0.0, -1.0, 0.0, 0.0]


# ------------------------------------------------------------------ the n-step target


@pytest.fixture
def spy(monkeypatch):
    """Record the agent's calls to td_target and the batches it samples."""
    calls: list[dict] = []

    def fake(rewards, terminated, next_q_target, gamma, next_q_online=None):
        y = td_target(rewards, terminated, next_q_target, gamma, next_q_online)
        calls.append({"rewards": rewards, "terminated": terminated, "gamma": gamma, "y": y})
        return y

    monkeypatch.setattr(dqn_module, "td_target", fake)
    return calls


def _capture_batches(agent) -> list:
    batches = []
    sample = agent.buffer.sample

    def wrapped(batch_size, generator=None):
        batches.append(sample(batch_size, generator))
        return batches[-1]

    agent.buffer.sample = wrapped
    return batches


def test_agent_uses_n_step_returns_and_discounts(lake, spy):
    # n 3, gamma 0.5; one episode on states 0 -> 1 -> 2 -> 3 -> 7 with rewards 1, 2, 4, 8, terminated at the end.
    #   slot 0: R = 1 + 0.5*2 + 0.25*4 = 3, bootstraps from state 3 with 0.5^3 = 0.125
    #   slot 1: R = 2 + 0.5*4 + 0.25*8 = 6, window ends on the terminal step: terminated
    #   slot 2: R = 4 + 0.5*8 = 8, terminated;   slot 3: R = 8, terminated
    # engine=torch: this spies on the autograd path's td_target; tests/test_numpy_step.py holds the numpy
    # step to the same numbers.
    agent = _agent(lake, n_step=3, gamma=0.5, batch_size=32, learning_starts=4, train_freq=1,
                   target_update_interval=1000, engine="torch")
    with torch.no_grad():  # make the target net differ from the online one (Double DQN roles visible)
        for p in agent.target.parameters():
            p.add_(0.3)
    batches = _capture_batches(agent)
    for s, r, s2, term in [(0, 1.0, 1, False), (1, 2.0, 2, False), (2, 4.0, 3, False)]:
        assert agent.update(s, 2, r, s2, term) is None
    with torch.no_grad():  # V(3) before the step: the target net's value of the online net's choice
        x3 = agent.encoder(np.array([[3]]))
        v3 = float(agent.target(x3)[0, 0, agent.net(x3)[0, 0].argmax()])
    assert abs(v3) > 1e-3
    assert agent.update(3, 2, 8.0, 7, True) is not None
    assert len(spy) == 1 and len(batches) == 1
    call, b = spy[0], batches[0]
    assert set(b.indices[0].tolist()) == {0, 1, 2, 3}
    assert call["gamma"] is b.discounts  # the per-sample discounts, not the scalar gamma
    idx = b.indices
    torch.testing.assert_close(call["rewards"], torch.tensor([3.0, 6.0, 8.0, 8.0])[idx])
    torch.testing.assert_close(call["gamma"], torch.tensor([0.125, 0.125, 0.25, 0.5])[idx])
    torch.testing.assert_close(call["terminated"], torch.tensor([0.0, 1.0, 1.0, 1.0])[idx])
    # y = R + discount * (1 - terminated) * V(next): 3 + 0.125 * V(3) for slot 0, R alone for the others
    expected_y = torch.tensor([3.0 + 0.125 * v3, 6.0, 8.0, 8.0])[idx]
    torch.testing.assert_close(call["y"], expected_y)


def test_agent_one_step_passes_scalar_gamma(lake, spy):
    agent = _agent(lake, gamma=0.9, learning_starts=1, train_freq=1, engine="torch")
    agent.update(0, 1, 1.0, 4, False)
    assert spy[0]["gamma"] == 0.9


# ------------------------------------------------------------------ config of the variants


@pytest.mark.parametrize("kwargs", [
    {"n_step": 3}, {"dueling": True}, {"prioritized": True, "per_alpha": 0.0, "per_beta": 1.0},
    {"prioritized": True, "per_alpha": 1.0, "per_beta": 0.0}, {"lr_end": 1e-4, "lr_decay_steps": 1},
])
def test_variant_configs_are_accepted(kwargs):
    cfg = DQNConfig(**kwargs)
    for key, val in kwargs.items():
        assert getattr(cfg, key) == val


@pytest.mark.parametrize("kwargs, field", [
    ({"lr_decay_steps": 0}, "lr_decay_steps"),
    ({"lr_end": -1e-4}, "lr_end"),
])
def test_variant_configs_reject_bad_values(kwargs, field):
    with pytest.raises(QlearnError) as info:
        DQNConfig(**kwargs)
    assert f"{field}=" in str(info.value)


@pytest.mark.parametrize("kwargs, field", [
    ({"n_step": 0}, "n_step"),
    ({"per_alpha": -0.5}, "per_alpha"),
    ({"per_beta": -0.1}, "per_beta"),
    ({"per_beta": 1.5}, "per_beta"),
    ({"per_beta_steps": 0}, "per_beta_steps"),
])
def test_new_fields_are_validated(kwargs, field):
    with pytest.raises(QlearnError) as info:
        DQNConfig(**kwargs)
    assert f"{field}=" in str(info.value)


# ------------------------------------------------------------------ checkpoint with replay memory


def _observe_two_envs(agent, t: int, r0: float, r1: float) -> None:
    agent.observe(np.array([[t, 8 + t]]), np.array([[0, 0]]), np.array([[r0, r1]], dtype=np.float32),
                  np.array([[t + 1, 9 + t]]), np.array([[False, False]]), np.array([[False, False]]))


def test_buffer_checkpoint_of_two_env_agent_keeps_env_interleaving(lake, tmp_path):
    # n 3, gamma 0.5; env0 rewards 1, 2, 4 (slots 0, 2, 4), env1 rewards 10, 20, 40 (slots 1, 3, 5)
    #   slot 0: 1 + 0.5*2 + 0.25*4 = 3;  slot 1: 10 + 0.5*20 + 0.25*40 = 30
    # (read with stride 1 instead, slot 0 would be 1 + 0.5*10 + 0.25*2 = 6.5)
    agent = _agent(lake, n_step=3, gamma=0.5, batch_size=4, buffer_size=20, learning_starts=100)
    for t, (r0, r1) in enumerate([(1.0, 10.0), (2.0, 20.0), (4.0, 40.0)]):
        _observe_two_envs(agent, t, r0, r1)
    idx = torch.tensor([[0, 1]])
    assert agent.buffer.gather(idx, torch.ones(1, 2)).rewards.tolist() == [[3.0, 30.0]]
    back = DQNAgent.load(agent.save(tmp_path / "buf.pt", include_buffer=True), env=lake)
    assert back.buffer.n_envs == 2
    assert back.buffer.gather(idx, torch.ones(1, 2)).rewards.tolist() == [[3.0, 30.0]]
    _observe_two_envs(back, 3, 8.0, 80.0)  # training resumes with the same two envs
    assert len(back.buffer) == 8
