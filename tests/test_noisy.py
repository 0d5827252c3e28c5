"""Noisy networks (qlearn.noisy, nets): factorised noise drawn per agent (the same alone as in a group,
different between agents), the paper's initial scale, fresh noise each noisy forward, mean weights for
greedy acting and Q-tables, and noisy=true as a flag of the one agent in place of epsilon-greedy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qlearn import DQNAgent, DQNConfig
from qlearn.envs.make import make_env
from qlearn.errors import QlearnError
from qlearn.nets import StackedMLP
from qlearn.training.trainer import train


def test_noise_is_drawn_per_agent_the_same_alone_as_in_a_group():
    alone = StackedMLP(4, 3, (8,), seeds=(3,), sigma0=0.5)
    group = StackedMLP(4, 3, (8,), seeds=(5, 3), sigma0=0.5)
    w_alone = [w for w, _ in alone._noisy_layers()]
    w_group = [w for w, _ in group._noisy_layers()]
    for a, g in zip(w_alone, w_group):
        torch.testing.assert_close(a[0], g[1])  # agent "3" draws the same noise beside agent "5"
    e0 = w_group[0][0] - group.weights[0][0]
    e1 = w_group[0][1] - group.weights[0][1]
    assert not torch.allclose(e0, e1)  # different agents, different noise


def test_initial_noise_scale_is_sigma0_over_sqrt_fan_in():
    net = StackedMLP(16, 2, (9,), seeds=(0,), sigma0=0.4)
    assert net.sigma_weights[0][0, 0, 0].item() == pytest.approx(0.4 / math.sqrt(16))
    assert net.sigma_biases[1][0, 0, 0].item() == pytest.approx(0.4 / math.sqrt(9))


def test_noisy_forwards_differ_and_the_mean_forward_does_not():
    net = StackedMLP(4, 3, (8,), seeds=(0, 1), sigma0=0.5)
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        assert not torch.allclose(net(x, noisy=True), net(x, noisy=True))
        torch.testing.assert_close(net(x), net(x))
        np.testing.assert_allclose(net.forward_numpy(x.numpy()), net(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags", [dict(), dict(distributional="c51", dueling=True, n_step=3, prioritized=True)],
                         ids=["dqn", "rainbow-like"])
def test_noisy_agent_explores_without_epsilon_and_acts_greedily_on_mean_weights(flags):
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(noisy=True, batch_size=16, learning_starts=50, target_update_interval=20, **flags)
    agent = DQNAgent.for_env(env, cfg, seed=0)
    assert agent.epsilon == 0.0 and agent.engine.name == "torch"
    sigma_before = [s.detach().clone() for s in agent.net.sigma_weights]
    train(agent, env, 500, eval_every=0, keep_best=False, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(sigma_before, agent.net.sigma_weights))  # learned
    obs = np.zeros((1, 64), np.int64)
    greedy = [agent.act(obs, greedy=True) for _ in range(3)]
    assert all(np.array_equal(greedy[0], g) for g in greedy)
    np.testing.assert_array_equal(greedy[0][0], agent.q_table()[0].argmax() * np.ones(64, int))
    explored = np.concatenate([agent.act(np.zeros((1, 64), np.int64)) for _ in range(20)], axis=1)
    assert len(np.unique(explored)) > 1  # the noise makes choices vary where the mean would not


def test_target_network_draws_noise_apart_from_the_online_network():
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(noisy=True), seed=0)
    online = agent.net._noisy_layers()[0][0] - agent.net.weights[0]
    target = agent.target._noisy_layers()[0][0] - agent.target.weights[0]
    assert not torch.allclose(online, target)


@pytest.mark.parametrize("bad", [dict(sigma0=0.0), dict(sigma0=float("nan")), dict(noisy=True, engine="numpy")])
def test_bad_noisy_settings_are_refused(bad):
    with pytest.raises(QlearnError, match="invalid config value"):
        DQNConfig(**bad)


def test_rainbow_recipe_is_derived_from_every_dqn_preset_by_its_rules():
    import qlearn
    from qlearn.presets import all_presets, recipes

    with_dqn = [env for env, entry in all_presets().items() if "dqn" in entry]
    assert "CartPole-v1" in with_dqn and "ALE/*" in with_dqn
    for env in with_dqn:
        entry = all_presets()[env]
        r = recipes(env)["rainbow"]["dqn"]
        assert r["lr"] == pytest.approx(entry["dqn"].get("lr", DQNConfig.lr) / 4)
        assert (r["distributional"], r["atoms"], r["noisy"], r["dueling"], r["double"], r["n_step"]) == (
            "c51", 51, True, True, True, 3)
        assert r["prioritized"] and (r["per_alpha"], r["per_beta"], r["adam_eps"]) == (0.5, 0.4, 1.5e-4)
    spec = qlearn.RunSpec.build("MountainCar-v0", "dqn", recipe="rainbow")
    cfg, preset_cfg = spec.agent_config, qlearn.RunSpec.build("MountainCar-v0", "dqn").agent_config
    assert cfg.noisy and cfg.distributional == "c51" and cfg.per_beta_steps == spec.train.steps
    # scaled by the ratios of Rainbow's settings to Nature DQN's, written in the recipe's description
    assert cfg.lr == pytest.approx(preset_cfg.lr / 4) and "x 1/4" in recipes("MountainCar-v0")["rainbow"]["_doc"]
    assert cfg.learning_starts == max(round(preset_cfg.learning_starts * 0.4), preset_cfg.batch_size)
    assert cfg.target_update_interval == round(preset_cfg.target_update_interval * 0.8)
    assert (cfg.buffer_size, cfg.batch_size, cfg.gamma) == (
        preset_cfg.buffer_size, preset_cfg.batch_size, preset_cfg.gamma)
    minatar = qlearn.RunSpec.build("MinAtar/Breakout-v1", "dqn", recipe="rainbow").agent_config
    assert (minatar.learning_starts, minatar.target_update_interval) == (2000, 800)  # 5000 x 0.4, 1000 x 0.8
    with pytest.raises(QlearnError, match="recipe"):
        qlearn.RunSpec.build("Pendulum-v1", "dqn", recipe="rainbow")  # no preset, nothing to derive it from


def test_noisy_nets_say_that_epsilon_settings_are_unused(tmp_path, capsys):
    """noisy=true does not silently ignore epsilon: config.json names the unused settings, and a run says so."""
    import json

    import qlearn

    assert qlearn.RunSpec.build("CartPole-v1", "dqn").to_dict().get("unused_settings") is None
    spec = qlearn.RunSpec.build("CartPole-v1", "dqn", sets=["noisy=true", "learning_starts=10"], steps=50)
    unused = spec.to_dict()["unused_settings"]
    assert set(unused) == {"epsilon_start", "epsilon_end", "epsilon_decay_steps"} and "noisy" in unused["epsilon_end"]
    res = qlearn.run(spec, out=str(tmp_path), progress=False)
    assert "unused: epsilon_start, epsilon_end, epsilon_decay_steps" in capsys.readouterr().err
    assert json.loads((res.run_dir / "config.json").read_text())["unused_settings"] == unused
    assert qlearn.RunSpec.from_dict(json.loads((res.run_dir / "config.json").read_text())).agent_config.noisy
