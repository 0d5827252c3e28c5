"""PQN: Q(lambda) returns worked by hand, no replay memory, LayerNorm in the network, the shared faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.agents import PQNAgent, agent_classes, load_agent
from qlearn.agents.pqn import lambda_returns
from qlearn.buffers import ReplayBuffer
from qlearn.config import PQNConfig
from qlearn.envs import make_env
from qlearn.envs.vector import make_batched
from qlearn.errors import QlearnError
from qlearn.training.trainer import train_many


def rollout(*columns):
    """Rows of (reward, next value, terminated, truncated) per step of one env -> [T, 1] tensors."""
    r, v, te, tr = (torch.tensor(c).reshape(-1, 1) for c in zip(*columns))
    return r.float(), te.bool(), tr.bool(), v.float()


def test_lambda_returns_by_hand_with_a_truncation_and_a_termination_inside_the_rollout():
    # gamma 0.5, lambda 0.5; steps: 0 plain, 1 truncated, 2 plain, 3 terminated.
    r, te, tr, v = rollout((1, 10, 0, 0), (2, 20, 0, 1), (3, 30, 0, 0), (4, 40, 1, 0))
    g = lambda_returns(r, te, tr, v, gamma=0.5, lam=0.5)[:, 0].tolist()
    # G3 = 4 (terminal); G2 = 3 + .5 (.5 G3 + .5 * 30) = 11.5; G1 = 2 + .5 * 20 = 12 (truncated: bootstrap only);
    # G0 = 1 + .5 (.5 G1 + .5 * 10) = 6.5
    assert g == [6.5, 12.0, 11.5, 4.0]


def test_lambda_returns_bootstrap_at_the_rollouts_end_and_reduce_to_q_learning_at_lambda_zero():
    r, te, tr, v = rollout((1, 10, 0, 0), (2, 20, 0, 0))
    assert lambda_returns(r, te, tr, v, gamma=0.5, lam=0.5)[:, 0].tolist() == [1 + 0.5 * (0.5 * 12 + 5), 12.0]
    assert lambda_returns(r, te, tr, v, gamma=0.5, lam=0.0)[:, 0].tolist() == [6.0, 12.0]
    assert lambda_returns(r, te, tr, v, gamma=0.5, lam=1.0)[:, 0].tolist() == [7.0, 12.0]  # Monte Carlo to the end
    # agents and envs batch: [K, T, N]
    k_r = torch.stack([r, 2 * r]).expand(2, 2, 3)
    out = lambda_returns(k_r, te.expand(2, 2, 3), tr.expand(2, 2, 3), v.expand(2, 2, 3), 0.5, 0.0)
    assert out.shape == (2, 2, 3) and out[1, 0, 2].item() == 2 + 5.0


def small_agent(k=1, **over):
    cfg = PQNConfig(**{"rollout_steps": 8, "epochs": 2, "minibatches": 2, "hidden": (16,), **over})
    return PQNAgent.for_env(make_env("FrozenLake-v1"), cfg, seeds=list(range(k)))


def test_pqn_learns_from_rollouts_without_replay_memory():
    agent = small_agent(k=2)
    venv = make_batched("FrozenLake-v1", 2, 4, seeds=[0, 1])
    before = [p.detach().clone() for p in agent.net.parameters()]
    train_many(agent, venv, 8 * 4 * 3, env_id="FrozenLake-v1", eval_every=0, progress=False)
    assert agent.updates == 3 * 2 * 2  # 3 rollouts x 2 epochs x 2 minibatches
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
    assert agent._rollout is not None and agent._rollout["obs"].shape[:3] == (2, 8, 4)
    assert not any(isinstance(v, ReplayBuffer) for v in vars(agent).values())
    assert agent.rollout_bytes(4) == 2 * 8 * 4 * (2 * 16 * 4 + 14)  # one-hot features of 16 states, twice
    with pytest.raises(QlearnError, match="whole rollouts"):
        agent.train_step()


def test_layer_norm_makes_the_q_values_blind_to_the_scale_of_a_hidden_layer():
    agent = small_agent(hidden=(16, 8))
    assert len(agent.net.norms) == 2
    x = torch.eye(16).unsqueeze(0)
    q = agent.net(x)
    with torch.no_grad():
        w, b = agent.net.layers[0]
        w.mul_(7.0), b.mul_(7.0)  # LayerNorm after this layer undoes a positive scale
    assert torch.allclose(agent.net(x), q, atol=1e-3)  # (up to LayerNorm's epsilon)
    plain = small_agent(hidden=(16, 8), layer_norm=False)
    assert plain.net.norms == ()
    q_plain = plain.net(x)
    with torch.no_grad():
        w, b = plain.net.layers[0]
        w.mul_(7.0), b.mul_(7.0)
    assert (plain.net(x) - q_plain).abs().max() > 0.1
    # acting's numpy forward applies the same LayerNorm
    assert np.allclose(agent.net.forward_numpy(x.numpy()), agent.net(x).detach().numpy(), atol=1e-5)


def test_pqn_schedules_follow_the_runs_length_unless_set():
    agent = small_agent()
    agent.plan(10_000)
    assert (agent.epsilon_steps, agent.lr_steps) == (5_000, 10_000)
    agent.steps = 2_500
    assert agent.epsilon == pytest.approx(1.0 - 0.5 * 0.95)
    fixed = small_agent(epsilon_decay_steps=100, lr_decay_steps=200)
    fixed.plan(10_000)
    assert (fixed.epsilon_steps, fixed.lr_steps) == (100, 200)


def test_pqn_saves_loads_and_selects_like_the_other_agents(tmp_path):
    agent = small_agent(k=2)
    venv = make_batched("FrozenLake-v1", 2, 4, seeds=[0, 1])
    train_many(agent, venv, 8 * 4 * 2, env_id="FrozenLake-v1", eval_every=0, progress=False)
    one = agent.select(1)
    assert one.k == 1 and np.array_equal(one.q_table(), agent.q_table(1))
    path = one.save(tmp_path / "pqn.pt")
    back = load_agent(path, make_env("FrozenLake-v1"))
    assert isinstance(back, PQNAgent) and back.config == agent.config
    assert np.array_equal(back.q_table(), agent.q_table(1)) and back.steps == agent.steps
    assert agent_classes("pqn") == (PQNAgent, PQNConfig)


def test_pqn_settings_are_checked():
    with pytest.raises(QlearnError, match="q_lambda"):
        PQNConfig(q_lambda=1.5)
    with pytest.raises(QlearnError, match="rollout_steps"):
        PQNConfig(rollout_steps=0)
    with pytest.raises(QlearnError, match="epsilon_decay_steps"):
        PQNConfig(epsilon_decay_steps=0)


def test_pqn_resumes_bit_for_bit_from_a_checkpoint_written_mid_rollout(tmp_path):
    from qlearn.training import checkpoint as ckpt

    def group():
        return small_agent(k=2), make_batched("FrozenLake-v1", 2, 4, seeds=[0, 1])

    common = dict(env_id="FrozenLake-v1", eval_every=256, keep_best=False, progress=False, checkpoint_every=400)
    full, venv = group()
    train_many(full, venv, 2048, aggregate_dir=tmp_path / "full", **common)

    class StopAt:
        def on_eval(self, row):
            return row["step"] < 768

    stopped, venv = group()
    train_many(stopped, venv, 2048, aggregate_dir=tmp_path / "cut", hooks=[StopAt()], **common)
    payload = ckpt.load(tmp_path / "cut" / ckpt.FILENAME)
    assert payload["loop"]["step"] == 400 and payload["agent"]["rollout_t"] == (400 // 4) % 8  # mid-rollout
    resumed, venv = group()
    train_many(resumed, venv, 2048, aggregate_dir=tmp_path / "cut", resume=payload, **common)
    assert resumed.steps == full.steps == 2048 and resumed.updates == full.updates
    assert all(torch.equal(a, b) for a, b in zip(full.net.parameters(), resumed.net.parameters()))
