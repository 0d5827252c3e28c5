"""Distributional heads (qlearn.agents.distributional, nets): C51's projection and loss and QR-DQN's
quantile Huber loss on hand-worked numbers; the support from the env's returns; the heads as flags of the
one DQN agent (MLP and CNN, dueling, Double, n-step, prioritized), whose Q-values are their means."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from qlearn import DQNAgent, DQNConfig
from qlearn.agents.distributional import c51_loss, project_c51, quantile_huber_loss, quantile_levels
from qlearn.envs.encoding import make_encoder
from qlearn.envs.make import make_env
from qlearn.envs.returns import return_bounds
from qlearn.errors import QlearnError
from qlearn.nets import Distribution, StackedMLP
from qlearn.training.trainer import train

SUPPORT = torch.tensor([0.0, 1.0, 2.0])
P = torch.tensor([0.2, 0.5, 0.3])


@pytest.mark.parametrize(
    "reward,discount,expected",
    [
        (0.5, 1.0, [0.1, 0.35, 0.55]),  # shifted half an atom; the top atom clipped to v_max
        (0.0, 0.5, [0.45, 0.55, 0.0]),  # shrunk towards 0
        (0.5, 0.0, [0.5, 0.5, 0.0]),  # terminal: all mass at r, split between the atoms beside it
        (1.0, 0.0, [0.0, 1.0, 0.0]),  # terminal on an atom: all of it there (no mass lost)
        (-3.0, 1.0, [1.0, 0.0, 0.0]),  # everything below v_min lands on v_min
    ],
)
def test_c51_projection_on_hand_worked_numbers(reward, discount, expected):
    out = project_c51(torch.tensor([[reward]]), torch.tensor([[discount]]), P.reshape(1, 1, 3), SUPPORT)
    torch.testing.assert_close(out[0, 0], torch.tensor(expected))
    assert float(out.sum()) == pytest.approx(1.0)


def test_c51_loss_is_the_cross_entropy_to_the_projected_target():
    loss = c51_loss(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 1.0, 0.0]]]))
    assert float(loss) == pytest.approx(math.log(3))
    logits = torch.tensor([[[2.0, 0.0, -1.0]]])
    target = torch.tensor([[[0.5, 0.5, 0.0]]])
    log_p = torch.log_softmax(logits, -1)[0, 0]
    assert float(c51_loss(logits, target)) == pytest.approx(float(-(0.5 * log_p[0] + 0.5 * log_p[1])))


def test_quantile_huber_loss_on_hand_worked_numbers():
    assert quantile_levels(2).tolist() == [0.25, 0.75]
    pred = torch.zeros(1, 1, 2)
    # target above both quantiles by 1: huber 0.5, weights tau -> 0.25 * 0.5 + 0.75 * 0.5
    assert float(quantile_huber_loss(pred, torch.tensor([[[1.0]]]))) == pytest.approx(0.5)
    # below by 2: huber 1.5, weights 1 - tau -> 0.75 * 1.5 + 0.25 * 1.5
    assert float(quantile_huber_loss(pred, torch.tensor([[[-2.0]]]))) == pytest.approx(1.5)
    # both targets: mean over targets, sum over quantiles -> (0.125 + 1.125) / 2 + (0.375 + 0.375) / 2
    assert float(quantile_huber_loss(pred, torch.tensor([[[1.0, -2.0]]]))) == pytest.approx(1.0)
    # kappa 0.5: above by 1 is past the threshold, 0.5 * (1 - 0.25) = 0.375, weights summing to 1 as above
    assert float(quantile_huber_loss(pred, torch.tensor([[[1.0]]]), kappa=0.5)) == pytest.approx(0.375)


def test_the_kappa_setting_reaches_the_qr_loss():
    from qlearn.agents.distributional import distributional_loss

    losses = []
    for kappa in (1.0, 0.01):
        env = make_env("CartPole-v1")
        cfg = DQNConfig(distributional="qr", kappa=kappa, learning_starts=1000, batch_size=8)
        agent = DQNAgent.for_env(env, cfg, seed=0)
        train(agent, env, 40, eval_every=0, keep_best=False, progress=False)  # fills memory, no update yet
        batch = agent.decode(agent.buffer.sample(8, agent.sample_rng))
        with torch.no_grad():
            losses.append(float(distributional_loss(agent, batch).mean()))
    assert losses[1] < losses[0] / 5  # a smaller threshold scales the loss down, so it was used
    with pytest.raises(QlearnError, match="kappa"):
        DQNConfig(distributional="qr", kappa=0.0)


def test_quantile_regression_finds_the_quantiles_of_a_sample():
    """Minimising the loss over a fixed sample puts the quantiles at the sample's tau-quantiles."""
    sample = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]]])
    q = torch.zeros(1, 1, 4, requires_grad=True)
    opt = torch.optim.Adam([q], lr=0.05)
    for _ in range(3000):
        opt.zero_grad()
        quantile_huber_loss(q, sample, kappa=0.01).sum().backward()
        opt.step()
    # the 12.5%, 37.5%, 62.5% and 87.5% quantiles of 8 points: anywhere between the 1st and 2nd, 3rd and 4th...
    for value, (lo, hi) in zip(q.detach()[0, 0].tolist(), [(0, 1), (2, 3), (10, 11), (12, 13)]):
        assert lo - 0.05 <= value <= hi + 0.05


def test_return_bounds_from_the_model_or_the_family():
    assert return_bounds(make_env("FrozenLake-v1"), 0.99) == (0.0, 1.0)  # one reward of 1 at the goal
    lo, hi = return_bounds(make_env("CliffWalking-v1"), 0.9)
    assert hi == 0.0 and lo == pytest.approx(-1000.0)  # stepping into the cliff (-100) forever
    lo, hi = return_bounds(make_env("CartPole-v1"), 0.99)
    assert lo == 0.0 and hi == pytest.approx(100.0)
    assert return_bounds(make_env("MountainCar-v0"), 0.98) == pytest.approx((-50.0, 0.0))


def test_c51_support_defaults_from_the_env_and_unknown_envs_warn():
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(distributional="c51"))
    assert (agent.config.v_min, agent.config.v_max) == (0.0, 1.0)
    torch.testing.assert_close(agent.net.support, torch.linspace(0, 1, 51))
    own = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(distributional="c51", v_min=-2.0))
    assert (own.config.v_min, own.config.v_max) == (-2.0, 1.0)  # what the user set is kept
    env = gym.make("Pendulum-v1")  # continuous actions do not matter here: the support is looked up first
    with pytest.warns(UserWarning, match="v_min and v_max"):
        from qlearn.agents.distributional import with_support

        cfg = with_support(DQNConfig(distributional="c51"), env)
    assert (cfg.v_min, cfg.v_max) == (-10.0, 10.0)


@pytest.mark.parametrize("bad", [dict(distributional="iqn"), dict(atoms=1), dict(quantiles=0),
                                 dict(v_min=1.0, v_max=0.0), dict(distributional="c51", engine="numpy")])
def test_bad_distributional_settings_are_refused(bad):
    with pytest.raises(QlearnError, match="invalid config value"):
        DQNConfig(**bad)


@pytest.mark.parametrize("kind", ["c51", "qr"])
def test_dueling_distribution_is_value_plus_centred_advantage_per_atom(kind):
    net = StackedMLP(3, 4, (8,), seeds=(0, 1), dueling=True, dist=Distribution(kind, 5, -1.0, 1.0))
    x = torch.randn(2, 6, 3)
    raw = net._last(x).reshape(2, 6, 5, 5)
    dist = net.distribution(x)
    assert dist.shape == (2, 6, 4, 5)
    torch.testing.assert_close(dist, raw[:, :, :1] + raw[:, :, 1:] - raw[:, :, 1:].mean(dim=2, keepdim=True))
    with torch.no_grad():
        np.testing.assert_allclose(net.forward_numpy(x.numpy()), net(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["c51", "qr"])
@pytest.mark.parametrize(
    "flags", [dict(), dict(dueling=True, double=False), dict(n_step=3, prioritized=True)], ids=str
)
def test_the_heads_train_as_flags_of_the_agent_and_q_is_their_mean(kind, flags):
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(distributional=kind, batch_size=16, learning_starts=50, target_update_interval=20, **flags)
    agent = DQNAgent.for_env(env, cfg, seed=3)
    assert agent.engine.name == "torch"
    before = [p.detach().clone() for p in agent.net.parameters()]
    train(agent, env, 400, eval_every=0, keep_best=False, progress=False)
    assert np.isfinite(agent.metrics()["loss"]) and agent.updates > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
    returns, probs = agent.distribution(6)
    n = cfg.atoms if kind == "c51" else cfg.quantiles
    assert returns.shape == probs.shape == (4, n)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(agent.q_table()[6], (returns * probs).sum(-1), rtol=1e-4, atol=1e-6)


def test_a_plain_agent_has_no_distribution_to_show():
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"))
    with pytest.raises(QlearnError, match="distributional=c51"):
        agent.distribution(0)


@pytest.mark.parametrize("kind", ["c51", "qr"])
def test_distributional_heads_on_the_minatar_network(kind):
    space = gym.spaces.Box(0, 1, (4, 10, 10), dtype=np.uint8)
    cfg = DQNConfig(network="minatar", hidden=(16,), distributional=kind, atoms=11, quantiles=7, v_min=0, v_max=5,
                    batch_size=8, buffer_size=200, learning_starts=0, train_freq=1)
    agent = DQNAgent(make_encoder(space, "onehot", False), 3, cfg, seeds=(0, 1))
    rng = np.random.default_rng(0)
    for _ in range(40):
        obs = rng.integers(0, 2, (2, 1, 4, 10, 10)).astype(np.uint8)
        agent.observe(obs, rng.integers(0, 3, (2, 1)), np.ones((2, 1), np.float32), obs,
                      np.zeros((2, 1), np.float32), np.zeros((2, 1), np.float32))
    assert agent.updates == 40 and np.isfinite(agent.metrics()["loss"])
    returns, probs = agent.distribution(obs[0, 0])
    assert returns.shape == (3, 11 if kind == "c51" else 7)
    q = agent.act(obs, greedy=True)
    assert q.shape == (2, 1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["c51", "qr"])
def test_distributional_heads_learn_slippery_frozenlake_on_five_seeds_in_lockstep(kind, tmp_path):
    """The FrozenLake preset with a distributional head: every seed's delivered agent at least 0.70 exact."""
    import qlearn

    spec = qlearn.RunSpec.build("FrozenLake-v1", "dqn", seeds=range(5), lockstep=True,
                                sets=[f"distributional={kind}"])
    res = qlearn.run(spec, out=str(tmp_path), progress=False)
    assert min(res.delivered_scores) >= 0.70, res.delivered_scores
