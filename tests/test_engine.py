"""The numpy backend of the gradient engine (agents/numpy_step.py) against autograd on the same minibatch.

Two agents start from the same seed; one trains with engine=torch, the other with engine=numpy, on the
same sampled batches. After several steps their weights, target weights, Adam moments and losses must
agree to float32 rounding, for every variant the numpy step supports.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn import DQNAgent, DQNConfig
from qlearn.agents.engine import AutogradEngine
from qlearn.buffers.replay import Batch
from qlearn.envs.encoding import make_encoder
from qlearn.errors import QlearnError
import gymnasium as gym


def _pair(k: int, obs_dim: int, **cfg):
    space = gym.spaces.Box(-1.0, 1.0, (obs_dim,), dtype=np.float32)
    enc = make_encoder(space, "onehot", False)
    base = dict(batch_size=32, buffer_size=500, learning_starts=0, target_update_interval=3, hidden=(16, 8))
    a = DQNAgent(enc, 3, DQNConfig(engine="torch", **{**base, **cfg}), seeds=range(k))
    b = DQNAgent(enc, 3, DQNConfig(engine="numpy", **{**base, **cfg}), seeds=range(k))
    return a, b


def _fill(agents, k: int, obs_dim: int, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        obs = rng.standard_normal((k, 1, obs_dim)).astype(np.float32)
        nxt = rng.standard_normal((k, 1, obs_dim)).astype(np.float32)
        act = rng.integers(0, 3, (k, 1))
        rew = rng.standard_normal((k, 1)).astype(np.float32) * 3
        term = (rng.random((k, 1)) < 0.1).astype(np.float32)
        trunc = (rng.random((k, 1)) < 0.05).astype(np.float32)
        for ag in agents:
            ag.buffer.store(obs, act, rew, nxt, term, trunc)
            ag.steps += 1


VARIANTS = [
    dict(),
    dict(double=False),
    dict(loss="huber"),
    dict(dueling=True),
    dict(dueling=True, double=False, loss="huber"),
    dict(max_grad_norm=0.05),  # clipping active on every step
    dict(max_grad_norm=0.0),
    dict(n_step=3),
    dict(lr=1e-2, lr_end=1e-4, lr_decay_steps=100),
    dict(tau=0.3),
    dict(hidden=(12,)),
    dict(hidden=(8, 8, 8)),
    dict(hidden=()),  # linear Q-function
    dict(hidden=(), dueling=True),
]


@pytest.mark.parametrize("cfg", VARIANTS, ids=[str(v) or "default" for v in VARIANTS])
@pytest.mark.parametrize("k", [1, 3])
def test_numpy_step_matches_autograd(cfg, k):
    a, b = _pair(k, 5, **cfg)
    _fill([a, b], k, 5)
    assert a.engine.name == "torch" and b.engine.name == "numpy"
    rng = np.random.default_rng(1)
    for _ in range(7):
        batch = b.buffer.gather_numpy(rng.integers(0, len(b.buffer), (k, 32)))
        loss_t = a.train_step(batch)
        loss_n = b.train_step(batch)
        np.testing.assert_allclose(loss_n.numpy(), loss_t.numpy(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(a.target.parameters(), b.target.parameters()):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert float(sa[i]["step"]) == float(sb[i]["step"]) == 7
        np.testing.assert_allclose(sb[i]["exp_avg_sq"].numpy(), sa[i]["exp_avg_sq"].numpy(), rtol=1e-3, atol=1e-9)
    assert a.updates == b.updates == 7


STATE_VARIANTS = [dict(), dict(double=False), dict(dueling=True, loss="huber"), dict(n_step=3), dict(hidden=()),
                  dict(hidden=(), dueling=True, double=False)]


@pytest.mark.parametrize("cfg", STATE_VARIANTS, ids=[str(v) or "default" for v in STATE_VARIANTS])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("batch", [32, 8])
def test_step_over_states_matches_autograd_on_the_decoded_batch(cfg, k, batch):
    """Discrete states stored as numbers. Fewer states than samples (batch 32): the networks run once per
    state and each state's sample gradients are summed first; more (batch 8): the minibatch is decoded to
    one-hot rows. Either way the same numbers as autograd on the one-hot minibatch."""
    from qlearn import make_env

    env = make_env("FrozenLake-v1")
    base = dict(batch_size=32, buffer_size=500, learning_starts=0, target_update_interval=3, hidden=(16, 8))
    a, b = (DQNAgent.for_env(env, DQNConfig(engine=e, **{**base, **cfg}), seeds=range(k)) for e in ("torch", "numpy"))
    rng = np.random.default_rng(0)
    for _ in range(120):
        obs, nxt = rng.integers(0, 16, (k, 1)), rng.integers(0, 16, (k, 1))
        act, rew = rng.integers(0, 4, (k, 1)), rng.standard_normal((k, 1)).astype(np.float32)
        term, trunc = (rng.random((k, 1)) < 0.1).astype(np.float32), (rng.random((k, 1)) < 0.05).astype(np.float32)
        for ag in (a, b):
            ag.buffer.store(ag._stored(obs), act, rew, ag._stored(nxt), term, trunc)
    assert b.compact
    calls = []
    real = b.engine._step
    b.engine._step = lambda *args: calls.append(args[-1] is not None) or real(*args)
    for _ in range(7):
        sample = b.buffer.gather_numpy(rng.integers(0, len(b.buffer), (k, batch)))
        assert sample.obs.shape[-1] == 1  # state numbers
        np.testing.assert_allclose(b.train_step(sample).numpy(), a.train_step(sample).numpy(), rtol=1e-4, atol=1e-6)
    assert calls == [batch >= 16] * 7  # the per-state path exactly when 16 states <= the batch
    for pa, pb in zip([*a.net.parameters(), *a.target.parameters()], [*b.net.parameters(), *b.target.parameters()]):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_numpy_step_agents_do_not_mix():
    """Agent 1's update depends only on agent 1's batch: changing agent 0's rewards leaves it alone."""
    _, b = _pair(2, 4)
    _, c = _pair(2, 4)
    _fill([b, c], 2, 4)
    c.buffer._np["rewards"][0] += 100.0
    idx = np.random.default_rng(0).integers(0, len(b.buffer), (2, 32))
    b.train_step(b.buffer.gather_numpy(idx))
    c.train_step(c.buffer.gather_numpy(idx))
    for pb, pc in zip(b.net.parameters(), c.net.parameters()):
        assert torch.equal(pb[1], pc[1])
        assert not torch.equal(pb[0], pc[0])


def test_checkpoint_round_trip_continues_identically(tmp_path):
    """Save after numpy steps, load into a fresh agent: the next steps are bit-identical (shared state)."""
    _, b = _pair(1, 4)
    _fill([b], 1, 4)
    for _ in range(3):
        b.train_step()
    b.save(tmp_path / "a.pt", include_buffer=True)
    rng_state = b.rng_state()
    c = DQNAgent.load(tmp_path / "a.pt")
    c.set_rng_state(rng_state)
    for _ in range(3):
        np.testing.assert_array_equal(b.train_step().numpy(), c.train_step().numpy())
    for pb, pc in zip(b.net.parameters(), c.net.parameters()):
        assert torch.equal(pb, pc)


def test_engine_auto_picks_numpy_on_cpu_and_torch_for_prioritized():
    space = gym.spaces.Discrete(4)
    enc = make_encoder(space, "onehot", False)
    assert DQNAgent(enc, 2, DQNConfig()).engine.name == "numpy"
    assert DQNAgent(enc, 2, DQNConfig(prioritized=True)).engine.name == "torch"
    assert DQNAgent(enc, 2, DQNConfig(engine="torch")).engine.name == "torch"


def test_engine_numpy_with_prioritized_is_refused():
    with pytest.raises(QlearnError, match="engine"):
        DQNConfig(engine="numpy", prioritized=True)
    with pytest.raises(QlearnError, match="engine"):
        DQNConfig(engine="jax")


def test_divergence_is_caught_before_weights_change():
    from qlearn.errors import DivergenceError

    _, b = _pair(1, 4)
    _fill([b], 1, 4)
    b.buffer._np["rewards"][0, 0] = np.inf
    before = [p.detach().clone() for p in b.net.parameters()]
    with pytest.raises(DivergenceError):
        b.train_step(b.buffer.gather_numpy(np.zeros((1, 4), dtype=np.int64)))
    for p, q in zip(before, b.net.parameters()):
        assert torch.equal(p, q)


def test_large_batches_take_the_separate_forward_path():
    """K x B above 2,048 runs the online net on s and s' apart (cache-friendlier); same numbers."""
    a, b = _pair(3, 5, batch_size=1024, buffer_size=2000)
    _fill([a, b], 3, 5, n=300)
    rng = np.random.default_rng(2)
    for _ in range(3):
        batch = b.buffer.gather_numpy(rng.integers(0, len(b.buffer), (3, 1024)))
        np.testing.assert_allclose(b.train_step(batch).numpy(), a.train_step(batch).numpy(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("n_envs", [1, 3])
def test_gather_numpy_matches_gather_across_the_ring_wrap(n_step, n_envs):
    from qlearn.buffers import ReplayBuffer

    buf = ReplayBuffer(30, 4, k=2, n_envs=n_envs, n_step=n_step, gamma=0.9)
    rng = np.random.default_rng(3)
    for _ in range(50):  # 50 * n_envs transitions into 30 slots: the ring wraps
        shape = (2, n_envs)
        buf.store(rng.standard_normal((*shape, 4)), rng.integers(0, 3, shape), rng.standard_normal(shape),
                  rng.standard_normal((*shape, 4)), (rng.random(shape) < 0.2).astype(np.float32),
                  (rng.random(shape) < 0.1).astype(np.float32))
    idx = rng.integers(0, len(buf), (2, 64))
    want, got = buf.gather(torch.as_tensor(idx), torch.ones(2, 64)), buf.gather_numpy(idx)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated"):
        np.testing.assert_allclose(np.asarray(getattr(got, name)), getattr(want, name).numpy(), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(np.broadcast_to(got.discounts, idx.shape), want.discounts.numpy(), rtol=1e-6)


def test_numpy_steps_continue_after_select_and_after_a_torch_step(tmp_path):
    """Views rebind when Adam's moments or the gradients are replaced (select, load, an autograd step)."""
    a, b = _pair(3, 5)
    _fill([a, b], 3, 5)
    for _ in range(3):
        b.train_step()
    one = b.select(1)  # own optimiser state, loaded from b's
    _fill([one], 1, 5, seed=4)
    before = [p.detach().clone() for p in one.net.parameters()]
    one.train_step()
    assert float(one.optimizer.state_dict()["state"][0]["step"]) == 4
    assert any(not torch.equal(x, p) for x, p in zip(before, one.net.parameters()))
    # an autograd step replaces the gradients; the next numpy step must use the live tensors again
    numpy_engine, b.engine = b.engine, AutogradEngine(b)
    b.train_step(b.buffer.gather_numpy(np.zeros((3, 8), dtype=np.int64)))
    b.engine = numpy_engine
    b.train_step()
    assert float(b.optimizer.state_dict()["state"][0]["step"]) == 5


def test_configs_recorded_before_the_engine_setting_rerun_with_autograd():
    from qlearn.training.runner import legacy_agent_config

    assert legacy_agent_config("dqn", {"lr": 1e-3}) == {"lr": 1e-3, "engine": "torch"}
    assert legacy_agent_config("dqn", {"engine": "auto"}) == {"engine": "auto"}
    assert legacy_agent_config("tabular", {"alpha": 0.1}) == {"alpha": 0.1}


def test_discrete_states_are_stored_as_numbers_and_decoded_to_features():
    """One-hot states go into replay memory as their number (16x less memory) and come out as features."""
    from qlearn import make_env

    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(batch_size=8, learning_starts=10**9))
    assert agent.buffer.obs.shape[-1] == 1
    states = np.array([[3]]), np.array([[7]])
    agent.observe(states[0], np.array([[1]]), np.array([[0.0]]), states[1], np.array([[0.0]]), np.array([[0.0]]))
    batch = agent.decode(agent.buffer.sample_numpy(8, agent.sample_rng))
    np.testing.assert_array_equal(batch.obs[0, 0], np.eye(16, dtype=np.float32)[3])
    np.testing.assert_array_equal(batch.next_obs[0, 0], np.eye(16, dtype=np.float32)[7])
    tb = agent.decode(agent.buffer.sample(8, agent.sample_rng))
    assert torch.equal(tb.obs[0, 0], torch.eye(16)[3]) and torch.equal(tb.next_obs[0, 0], torch.eye(16)[7])
    # a replay memory saved with one-hot rows (before compact storage) loads as state numbers
    old = agent.buffer.state_dict()
    old = {**old, "obs": torch.eye(16)[old["obs"][..., 0].long()], "next_obs": torch.eye(16)[old["next_obs"][..., 0].long()]}
    agent.buffer.load_state_dict(agent._legacy_buffer(old))
    assert float(agent.buffer.obs[0, 0, 0]) == 3.0 and float(agent.buffer.next_obs[0, 0, 0]) == 7.0


@pytest.mark.parametrize("engine", ["torch", "numpy"])
@pytest.mark.parametrize("double", [False, True])
def test_td_target_on_every_engine(engine, double):
    """Every engine's loss is the TD error against r + gamma * (1 - terminated) * V(s'): a terminated
    transition does not bootstrap, a truncated one does (the time limit is not a terminal state), and Double
    DQN values the online network's argmax with the target network."""
    space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
    cfg = DQNConfig(engine=engine, double=double, gamma=0.9, batch_size=3, buffer_size=10, learning_starts=0,
                    hidden=(8,), max_grad_norm=0.0)
    agent = DQNAgent(make_encoder(space, "onehot", False), 2, cfg, seeds=[0])
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.25)  # target differs from online: their roles are told apart
    rng = np.random.default_rng(0)
    obs, nxt = rng.standard_normal((1, 3, 3)).astype(np.float32), rng.standard_normal((1, 3, 3)).astype(np.float32)
    actions, rewards = np.array([[0, 1, 1]]), np.array([[1.0, -0.5, 2.0]], dtype=np.float32)
    terminated, truncated = np.array([[1.0, 0.0, 0.0]], np.float32), np.array([[0.0, 1.0, 0.0]], np.float32)
    with torch.no_grad():
        q = agent.net(torch.as_tensor(obs))[0, np.arange(3), actions[0]].numpy()
        nq_t, nq_o = agent.target(torch.as_tensor(nxt))[0].numpy(), agent.net(torch.as_tensor(nxt))[0].numpy()
    v = nq_t[np.arange(3), nq_o.argmax(-1)] if double else nq_t.max(-1)
    y = rewards[0] + 0.9 * (1 - terminated[0]) * v
    assert y[0] == rewards[0, 0] and y[1] != rewards[0, 1]  # terminated: no bootstrap; truncated: bootstraps
    batch = Batch(obs, actions, rewards, nxt, terminated, truncated, np.float32(0.9), np.ones((1, 3), np.float32),
                  np.zeros((1, 3), np.int64))
    loss = agent.train_step(batch)
    np.testing.assert_allclose(loss.numpy(), [np.mean((q - y) ** 2)], rtol=1e-5)


CNN_VARIANTS = [dict(), dict(double=False, loss="huber"), dict(dueling=True), dict(n_step=3), dict(max_grad_norm=0.05)]


@pytest.mark.parametrize("cfg", CNN_VARIANTS, ids=[str(v) or "default" for v in CNN_VARIANTS])
@pytest.mark.parametrize("k", [1, 3])
def test_numpy_step_matches_autograd_for_a_minatar_sized_cnn(cfg, k):
    """Convolutions in numpy (qlearn.convolution) under the same contract: same losses, weights and moments."""
    space = gym.spaces.Box(0, 1, (4, 10, 10), dtype=np.uint8)
    enc = make_encoder(space, "onehot", False)
    base = dict(network="minatar", hidden=(16,), batch_size=16, buffer_size=300, learning_starts=0,
                target_update_interval=3)
    a = DQNAgent(enc, 3, DQNConfig(engine="torch", **{**base, **cfg}), seeds=range(k))
    b = DQNAgent(enc, 3, DQNConfig(**{**base, **cfg}), seeds=range(k))
    assert a.engine.name == "torch" and b.engine.name == "numpy"  # auto picks numpy for small convolutions
    rng = np.random.default_rng(0)
    for _ in range(120):
        obs, nxt = (rng.integers(0, 2, (k, 1, 4, 10, 10)).astype(np.uint8) for _ in range(2))
        act, rew = rng.integers(0, 3, (k, 1)), rng.standard_normal((k, 1)).astype(np.float32)
        term = (rng.random((k, 1)) < 0.1).astype(np.float32)
        for ag in (a, b):
            ag.buffer.store(obs, act, rew, nxt, term, np.zeros((k, 1), np.float32))
    for _ in range(5):
        batch = b.buffer.gather_numpy(rng.integers(0, len(b.buffer), (k, 16)))
        np.testing.assert_allclose(b.train_step(batch).numpy(), a.train_step(batch).numpy(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(a.target.parameters(), b.target.parameters()):
        np.testing.assert_allclose(pb.detach().numpy(), pa.detach().numpy(), rtol=1e-4, atol=1e-6)
    obs = rng.integers(0, 2, (k, 4, 4, 10, 10)).astype(np.uint8)
    np.testing.assert_array_equal(b.act(obs, greedy=True), a.act(obs, greedy=True))  # numpy acting, torch acting
