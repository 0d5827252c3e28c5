"""DQNAgent and TabularQAgent: protocol, acting, schedules, when DQN trains, the tabular rule, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.agents import load_agent
from qlearn.agents.base import Agent, linear_schedule
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.tabular import TabularQAgent
from qlearn.config import DQNConfig, TabularConfig
from qlearn.envs import make_env
from qlearn.errors import QlearnError
from helpers import play

SMALL = dict(hidden=(16,), batch_size=16, buffer_size=500)


@pytest.fixture
def lake():
    env = make_env("FrozenLake-v1")
    yield env
    env.close()


@pytest.fixture
def lake8():
    env = make_env("FrozenLake8x8-v1")
    yield env
    env.close()



def make_dqn(env, seed: int = 0, **cfg) -> DQNAgent:
    return DQNAgent.for_env(env, DQNConfig(**{**SMALL, **cfg}), seed=seed)


# ------------------------------------------------------------------ protocol and acting


def test_both_agents_satisfy_the_protocol(lake):
    dqn = make_dqn(lake)
    tab = TabularQAgent.for_env(lake)
    assert isinstance(dqn, Agent)
    assert isinstance(tab, Agent)
    assert (dqn.kind, tab.kind) == ("dqn", "tabular")
    assert dqn.k == tab.k == 1
    assert dqn.n_actions == tab.n_actions == 4


@pytest.mark.parametrize("kind", ["dqn", "tabular"])
def test_get_action_returns_valid_ints(lake, kind):
    agent = make_dqn(lake) if kind == "dqn" else TabularQAgent.for_env(lake)
    seen = set()
    for s in range(16):
        for greedy in (False, True):
            for _ in range(5):
                a = agent.get_action(s, greedy=greedy)
                assert type(a) is int and 0 <= a < 4
                seen.add(a)
    assert seen == {0, 1, 2, 3}  # epsilon starts at 1: every action gets explored


def test_dqn_greedy_action_is_argmax_of_q_values(lake):
    agent = make_dqn(lake, seed=3)
    states = np.arange(16).reshape(1, 16)
    q = agent.q_values(states)
    assert q.shape == (1, 16, 4)
    for s in range(16):
        assert agent.get_action(s, greedy=True) == int(np.argmax(q[0, s]))
    np.testing.assert_array_equal(agent.act(states, greedy=True), q.argmax(-1))
    # agent.greedy makes plain get_action greedy too, despite epsilon = 1
    agent.greedy = True
    assert [agent.get_action(s) for s in range(16)] == [int(np.argmax(q[0, s])) for s in range(16)]


def test_tabular_greedy_action_is_argmax_of_q_values(lake):
    agent = TabularQAgent.for_env(lake)
    agent.q[0] = np.random.default_rng(0).random((16, 4))
    agent.q[0, 3] = [0.5, 0.9, 0.9, 0.1]  # a tie: greedy takes the first best
    for s in range(16):
        assert agent.get_action(s, greedy=True) == int(np.argmax(agent.q[0, s]))
    assert agent.get_action(3, greedy=True) == 1
    np.testing.assert_array_equal(agent.q_values(np.arange(16).reshape(1, 16))[0], agent.q[0])


def test_tabular_breaks_ties_at_random_while_learning(lake):
    agent = TabularQAgent.for_env(lake, TabularConfig(epsilon_start=0.0, epsilon_end=0.0))
    actions = {agent.get_action(0) for _ in range(100)}  # all-zero row, no exploration
    assert len(actions) > 1
    agent.q[0, 0, 2] = 1.0
    assert {agent.get_action(0) for _ in range(50)} == {2}


@pytest.mark.parametrize("kind", ["dqn", "tabular"])
def test_epsilon_decays_linearly_and_stops_at_end(lake, kind):
    if kind == "dqn":
        agent = DQNAgent.for_env(lake, DQNConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=100))
    else:
        agent = TabularQAgent.for_env(lake, TabularConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=100))
    expected = {0: 1.0, 25: 0.775, 50: 0.55, 99: 0.109, 100: 0.1, 101: 0.1, 10_000: 0.1}
    for steps, eps in expected.items():
        agent.steps = steps
        assert agent.epsilon == pytest.approx(eps)
        assert agent.metrics()["epsilon"] == pytest.approx(eps)


def test_epsilon_follows_steps_taken(lake):
    agent = TabularQAgent.for_env(lake, TabularConfig(epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_steps=10))
    play(agent, lake, 4)
    assert agent.steps == 4
    assert agent.epsilon == pytest.approx(0.6)


def test_linear_schedule():
    assert linear_schedule(1.0, 0.0, 10, 0) == 1.0
    assert linear_schedule(1.0, 0.0, 10, 5) == pytest.approx(0.5)
    assert linear_schedule(1.0, 0.0, 10, 20) == 0.0
    assert linear_schedule(1.0, 0.0, 10, -5) == 1.0
    assert linear_schedule(0.1, 0.5, 4, 2) == pytest.approx(0.3)  # rising works too


def test_single_step_api_refuses_k_greater_than_one(lake):
    for agent in (DQNAgent.for_env(lake, DQNConfig(**SMALL), seeds=(0, 1)), TabularQAgent.for_env(lake, seeds=(0, 1))):
        assert agent.k == 2
        with pytest.raises(QlearnError):
            agent.get_action(0)


# ------------------------------------------------------------------ when DQN trains


def test_no_gradient_step_before_learning_starts(lake):
    agent = make_dqn(lake, learning_starts=50, train_freq=1)
    w0 = [p.detach().clone() for p in agent.net.parameters()]
    play(agent, lake, 49)
    assert agent.steps == 49
    assert agent.updates == 0
    assert all(torch.equal(a, b) for a, b in zip(w0, agent.net.parameters()))
    assert "loss" not in agent.metrics()
    play(agent, lake, 10, seed=1)
    assert agent.updates >= 9
    assert not all(torch.equal(a, b) for a, b in zip(w0, agent.net.parameters()))
    assert "loss" in agent.metrics()


@pytest.mark.parametrize("train_freq, gradient_steps", [(1, 1), (4, 1), (4, 2), (7, 3)])
def test_train_freq_and_gradient_steps_respected(lake, train_freq, gradient_steps):
    starts, total = 40, 200
    agent = make_dqn(lake, learning_starts=starts, train_freq=train_freq, gradient_steps=gradient_steps)
    counts = []
    state, _ = lake.reset(seed=0)
    for _ in range(total):
        a = agent.get_action(state)
        nxt, r, term, trunc, _ = lake.step(a)
        loss = agent.update(state, a, r, nxt, term, trunc)
        before = counts[-1] if counts else 0
        assert (loss is not None) == (agent.updates != before)  # update returns the loss iff it trained
        counts.append(agent.updates)
        state = lake.reset()[0] if term or trunc else nxt
    assert max(counts[:starts - 1]) == 0  # nothing before learning_starts
    jumps = [i for i in range(1, total) if counts[i] != counts[i - 1]]
    assert all(counts[i] - counts[i - 1] == gradient_steps for i in jumps)
    assert all(b - a == train_freq for a, b in zip(jumps, jumps[1:]))  # exactly every train_freq steps
    rounds = (total - starts) / train_freq
    assert abs(agent.updates / gradient_steps - rounds) <= 1


def test_hard_target_update_every_interval(lake):
    agent = make_dqn(lake, learning_starts=1, train_freq=1, target_update_interval=3, lr=1e-2)
    def same():
        return all(torch.equal(a, b) for a, b in zip(agent.net.parameters(), agent.target.parameters()))
    assert same()
    play(agent, lake, 2)  # updates 1, 2
    assert agent.updates == 2 and not same()
    play(agent, lake, 1, seed=5)  # update 3: copy
    assert agent.updates == 3 and same()


def test_soft_target_update_blends(lake):
    agent = make_dqn(lake, learning_starts=1, train_freq=1, tau=0.25, lr=1e-2)
    old_target = [p.detach().clone() for p in agent.target.parameters()]
    agent.update(0, 1, 0.0, 4, False)
    assert agent.updates == 1
    for t_old, t_new, online in zip(old_target, agent.target.parameters(), agent.net.parameters()):
        torch.testing.assert_close(t_new, 0.75 * t_old + 0.25 * online.detach())


# ------------------------------------------------------------------ tabular rule


def test_tabular_update_rule_by_hand(lake):
    cfg = TabularConfig(alpha=0.5, alpha_end=0.5, gamma=0.9)
    agent = TabularQAgent.for_env(lake, cfg)
    agent.q[0, 1] = [0.0, 2.0, -1.0, 0.5]
    agent.q[0, 0, 1] = 0.4
    # Non-terminal: target = 1 + 0.9 * max Q[1] = 1 + 1.8 = 2.8;  Q[0,1] = 0.4 + 0.5 * (2.8 - 0.4) = 1.6
    agent.update(0, 1, 1.0, 1, terminated=False)
    assert agent.q[0, 0, 1] == pytest.approx(1.6)
    # Terminal: target = r = 1;  Q[0,2] = 0 + 0.5 * 1 = 0.5 (Q[1] ignored)
    agent.update(0, 2, 1.0, 1, terminated=True)
    assert agent.q[0, 0, 2] == pytest.approx(0.5)
    # Truncated (not terminated) still bootstraps: target = 0 + 0.9 * 2 = 1.8; Q[0,3] = 0.5 * 1.8 = 0.9
    agent.update(0, 3, 0.0, 1, terminated=False, truncated=True)
    assert agent.q[0, 0, 3] == pytest.approx(0.9)
    # Only the updated entries moved.
    assert agent.q[0, 0, 0] == 0.0
    np.testing.assert_array_equal(agent.q[0, 1], [0.0, 2.0, -1.0, 0.5])
    assert agent.steps == 3 and agent.updates == 3
    # squared TD error of the last update: (1.8 - 0)^2
    assert agent.metrics()["loss"] == pytest.approx(1.8**2)


def test_tabular_alpha_decays_with_steps(lake):
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=0.5, alpha_end=0.1, alpha_decay_steps=4, gamma=0.0))
    assert agent.alpha == pytest.approx(0.5)
    agent.update(0, 0, 1.0, 1, terminated=True)  # alpha 0.5: Q = 0.5
    agent.update(0, 0, 1.0, 1, terminated=True)  # alpha 0.4: Q = 0.5 + 0.4 * 0.5 = 0.7
    assert agent.q[0, 0, 0] == pytest.approx(0.7)
    assert agent.alpha == pytest.approx(0.3)
    agent.steps = 100
    assert agent.alpha == pytest.approx(0.1)


def test_tabular_batched_agents_are_independent(lake):
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=1.0, alpha_end=1.0), seeds=(0, 1))
    agent.observe(np.array([[0], [5]]), np.array([[1], [2]]), np.array([[1.0], [3.0]]), np.array([[1], [6]]),
                  np.array([[True], [True]]), np.array([[False], [False]]))
    assert agent.q[0, 0, 1] == 1.0 and agent.q[1, 5, 2] == 3.0
    assert np.count_nonzero(agent.q) == 2


def test_tabular_envs_on_one_pair_move_it_as_updates_one_after_another(lake):
    n, alpha = 50, 0.1
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=alpha, alpha_end=alpha, gamma=0.0))
    ones = np.ones((1, n))
    # 50 envs in state 0 take action 1 and get reward 1 (terminal); two more envs update other pairs.
    s = np.zeros((1, n + 2), dtype=np.int64)
    s[0, -1] = 5
    a = np.ones((1, n + 2), dtype=np.int64)
    r = np.concatenate([ones, [[3.0, 2.0]]], axis=1)
    a[0, -2] = 2
    agent.observe(s, a, r, s, np.ones((1, n + 2), dtype=bool), np.zeros((1, n + 2), dtype=bool))
    # 50 updates toward the same target 1, one after another: 1 - 0.9^50. Summing them would give 5.0.
    assert agent.q[0, 0, 1] == pytest.approx(1 - (1 - alpha) ** n)
    assert agent.q[0, 0, 2] == pytest.approx(0.3) and agent.q[0, 5, 1] == pytest.approx(0.2)  # alone: alpha * td
    # Disagreeing targets on one pair: their mean, at the rate of two updates (1 - 0.9^2) * (4 + 0) / 2.
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=alpha, alpha_end=alpha, gamma=0.0))
    agent.observe(np.zeros((1, 2), dtype=np.int64), np.zeros((1, 2), dtype=np.int64), np.array([[4.0, 0.0]]),
                  np.zeros((1, 2), dtype=np.int64), np.ones((1, 2), dtype=bool), np.zeros((1, 2), dtype=bool))
    assert agent.q[0, 0, 0] == pytest.approx((1 - 0.9**2) * 2.0)


def test_tabular_on_many_envs_at_a_large_alpha_stays_bounded(lake):
    # alpha 1 on 256 envs: every pair ends each step at a mean of its targets, never past them.
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=1.0, alpha_end=1.0, gamma=0.99, epsilon_end=1.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = rng.integers(0, 16, size=(1, 256))
        a = rng.integers(0, 4, size=(1, 256))
        s2 = rng.integers(0, 16, size=(1, 256))
        r = (s2 == 15).astype(float)
        agent.observe(s, a, r, s2, s2 == 15, np.zeros((1, 256), dtype=bool))
    assert np.isfinite(agent.q).all() and agent.q.max() <= 1.0 / (1 - 0.99) and agent.q.min() >= 0.0

def test_tabular_state_out_of_range(lake):
    agent = TabularQAgent.for_env(lake)
    with pytest.raises(QlearnError):
        agent.get_action(16)


# ------------------------------------------------------------------ q_table


def test_q_table_shapes(lake):
    dqn = make_dqn(lake)
    tab = TabularQAgent.for_env(lake)
    assert dqn.q_table().shape == (16, 4)
    assert tab.q_table().shape == (16, 4)
    np.testing.assert_allclose(dqn.q_table(), dqn.q_values(np.arange(16).reshape(1, 16))[0], rtol=1e-6)
    tab.q[0, 3, 2] = 7.0
    table = tab.q_table()
    assert table[3, 2] == 7.0
    table[3, 2] = 0.0  # a copy: the agent's table is untouched
    assert tab.q[0, 3, 2] == 7.0
    two = DQNAgent.for_env(lake, DQNConfig(**SMALL), seeds=(0, 1))
    assert two.q_table(agent=None).shape == (2, 16, 4)


def test_q_table_on_continuous_observations_raises():
    env = make_env("CartPole-v1")
    agent = DQNAgent.for_env(env, DQNConfig(**SMALL))
    with pytest.raises(QlearnError):
        agent.q_table()
    with pytest.raises(QlearnError):
        TabularQAgent.for_env(env)


# ------------------------------------------------------------------ checkpoints


def test_dqn_save_load_round_trip(lake, tmp_path):
    agent = make_dqn(lake, seed=4, learning_starts=20, train_freq=1)
    play(agent, lake, 80)
    assert agent.updates > 0
    path = agent.save(tmp_path / "sub" / "dqn.pt")
    assert path.is_file()
    back = DQNAgent.load(path, env=lake)
    np.testing.assert_array_equal(back.q_table(), agent.q_table())
    assert [back.get_action(s, greedy=True) for s in range(16)] == [agent.get_action(s, greedy=True) for s in range(16)]
    assert (back.steps, back.updates, back.config, back.seeds) == (agent.steps, agent.updates, agent.config, agent.seeds)
    assert back.epsilon == agent.epsilon
    for a, b in zip(back.target.parameters(), agent.target.parameters()):
        assert torch.equal(a, b)
    # optimizer state (Adam moments and step counts) comes back
    s_new, s_old = back.optimizer.state_dict()["state"], agent.optimizer.state_dict()["state"]
    assert s_old and s_new.keys() == s_old.keys()
    for key in s_old:
        for name, val in s_old[key].items():
            assert torch.equal(torch.as_tensor(s_new[key][name]), torch.as_tensor(val)), name
    # and the generic loader finds the kind
    assert isinstance(load_agent(path), DQNAgent)


def test_tabular_save_load_round_trip(lake, tmp_path):
    agent = TabularQAgent.for_env(lake, TabularConfig(alpha=0.3, alpha_end=0.2), seed=2)
    play(agent, lake, 3000)
    assert np.count_nonzero(agent.q) > 0
    path = agent.save(tmp_path / "tab.pt")
    back = TabularQAgent.load(path, env=lake)
    np.testing.assert_array_equal(back.q_table(), agent.q_table())
    assert [back.get_action(s, greedy=True) for s in range(16)] == [agent.get_action(s, greedy=True) for s in range(16)]
    assert (back.steps, back.updates, back.config, back.seeds) == (agent.steps, agent.updates, agent.config, agent.seeds)
    assert isinstance(load_agent(path, env=lake), TabularQAgent)


@pytest.mark.parametrize("kind", ["dqn", "tabular"])
def test_loading_into_mismatched_env_raises(lake, lake8, tmp_path, kind):
    agent = make_dqn(lake8) if kind == "dqn" else TabularQAgent.for_env(lake8)
    path = agent.save(tmp_path / "a.pt")
    with pytest.raises(QlearnError, match="64"):
        load_agent(path, env=lake)
    cls = DQNAgent if kind == "dqn" else TabularQAgent
    with pytest.raises(QlearnError):
        cls.load(path, env=lake)


def test_loading_dqn_into_env_with_other_box_size_raises(tmp_path):
    agent = DQNAgent.for_env(make_env("MountainCar-v0"), DQNConfig(**SMALL))  # 2 features, 3 actions
    path = agent.save(tmp_path / "mc.pt")
    with pytest.raises(QlearnError):
        DQNAgent.load(path, env=make_env("Acrobot-v1"))  # 6 features, 3 actions


def test_loading_the_wrong_kind_raises(lake, tmp_path):
    path = TabularQAgent.for_env(lake).save(tmp_path / "t.pt")
    with pytest.raises(QlearnError, match="tabular"):
        DQNAgent.load(path)
    path = make_dqn(lake).save(tmp_path / "d.pt")
    with pytest.raises(QlearnError, match="dqn"):
        TabularQAgent.load(path)


@pytest.mark.parametrize("loader", [load_agent, DQNAgent.load, TabularQAgent.load])
def test_corrupt_and_missing_files_raise(tmp_path, loader):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(QlearnError, match="corrupt"):
        loader(bad)
    with pytest.raises(QlearnError, match="no checkpoint"):
        loader(tmp_path / "missing.pt")
    with pytest.raises(QlearnError):
        loader(tmp_path)  # a folder is not a checkpoint
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)  # a valid torch file, but not ours
    with pytest.raises(QlearnError, match="not a qlearn checkpoint"):
        loader(other)


# ------------------------------------------------------------------ reproducibility


def _trained_weights(seed: int) -> list[torch.Tensor]:
    env = make_env("FrozenLake-v1")
    agent = make_dqn(env, seed=seed, learning_starts=100, train_freq=4)
    play(agent, env, 2_000, seed=seed)
    assert agent.updates > 400
    return [p.detach().clone() for p in agent.net.parameters()]


def test_same_seed_gives_bit_identical_dqn():
    a, b = _trained_weights(1), _trained_weights(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = _trained_weights(2)
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_dqn_takes_tensors_as_a_gpu_rollout_passes_them(lake):
    """Tensor observations (what a batched env on the GPU returns) store the same transitions as numpy
    ones, and the tensor acting path picks the greedy action where it does not explore."""
    cfg = DQNConfig(learning_starts=10**6, epsilon_start=0.3, epsilon_end=0.3)
    a, b = (DQNAgent.for_env(lake, cfg, seeds=(1, 2)) for _ in range(2))
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, nxt = rng.integers(0, 16, (2, 3)), rng.integers(0, 16, (2, 3))
        act, rew = rng.integers(0, 4, (2, 3)), rng.random((2, 3))
        te, tr = rng.random((2, 3)) < 0.2, np.zeros((2, 3), dtype=bool)
        a.observe(obs, act, rew, nxt, te, tr)
        b.observe(*(torch.as_tensor(x) for x in (obs, act, rew, nxt, te, tr)))
    for name in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(a.buffer, name), getattr(b.buffer, name)), name
    obs = torch.as_tensor(rng.integers(0, 16, (2, 400)))
    greedy = a._act_on_device(obs, greedy=True)
    assert torch.equal(greedy, torch.as_tensor(a.act(obs.numpy(), greedy=True)))
    acts = a._act_on_device(obs, greedy=False)
    share = (acts == greedy).float().mean().item()
    assert 0.7 < share < 0.85  # explores 30% of the time, a quarter of which land on the greedy action
