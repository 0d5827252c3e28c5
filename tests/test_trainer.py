"""The one trainer: per-agent divergence, per-agent random streams, and one trainer under every path."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from qlearn import DQNAgent, DQNConfig, TabularConfig, TabularQAgent, make_env
from qlearn.agents.base import read_checkpoint
from qlearn.envs.vector import make_batched
from qlearn.errors import DivergenceError
from qlearn.training import train, train_many

CURSED = 2  # the agent (seed) whose env pays a reward float32 cannot square


class BlowUp(gym.Env):
    """Four states in a ring; reward 1 per step, except that the envs of seed CURSED (reset with seed
    CURSED * 100_003 + j by the Gymnasium vector env) pay 1e30 from their 300th step on: the TD loss of that
    agent alone overflows float32."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.cursed, self.t = seed // 100_003 == CURSED, 0
        self.s = 0
        return self.s, {}

    def step(self, action):
        self.t += 1
        self.s = (self.s + 1 + int(action)) % 4
        reward = 1e30 if self.cursed and self.t >= 300 else 1.0
        return self.s, reward, False, False, {}


gym.register("BlowUp-v0", entry_point=BlowUp, max_episode_steps=20)


def test_one_diverging_agent_is_frozen_and_the_others_finish(tmp_path):
    seeds = [0, 1, CURSED, 3]
    agent = DQNAgent.for_env(make_env("BlowUp-v0"), DQNConfig(learning_starts=50, batch_size=16, hidden=(8,)),
                             seeds=seeds)
    frozen_rows = {}
    real_freeze = agent.guard.freeze

    def spy(bad, tensors, step):  # the cursed agent's weights and Adam moments at the moment it froze
        if bad[CURSED] and not agent.guard.frozen[CURSED]:
            frozen_rows["step"] = step
            frozen_rows["tensors"] = [t[CURSED].detach().clone() for t in tensors()]
        return real_freeze(bad, tensors, step)

    agent.guard.freeze = spy
    dirs = [tmp_path / f"seed_{s}" for s in seeds]
    venv = make_batched("BlowUp-v0", 4, 1, seeds=seeds)
    res = train_many(agent, venv, 1200, env_id="BlowUp-v0", eval_env=make_batched("BlowUp-v0", 4, 2, seeds=[9] * 4),
                     eval_every=400, eval_episodes=2, run_dirs=dirs, aggregate_dir=tmp_path, progress=False)
    step = frozen_rows["step"]
    assert 300 <= step < 1200 and res.steps == 1200 and not res.interrupted
    assert res.diverged == {CURSED: step}
    aggregate = json.loads((tmp_path / "aggregate.json").read_text())
    assert aggregate["diverged"] == [{"seed": CURSED, "step": step}]
    assert len(aggregate["scores"]) == 4 and all(np.isfinite(aggregate["scores"]))
    for s, d in zip(seeds, dirs):
        summary = json.loads((d / "summary.json").read_text())
        assert summary["diverged_at_step"] == (step if s == CURSED else None)
        assert summary["steps"] == 1200 and (d / "agent.pt").is_file()
    # the frozen agent's weights, target weights and moments are bit for bit those it froze with
    last = read_checkpoint(dirs[CURSED] / "last.pt")["state"]
    net = list(last["net"].values())
    target = list(last["target"].values())
    moments = [v for st in last["optimizer"]["state"].values() for key, v in st.items() if key != "step"]
    n = len(net)
    saved = frozen_rows["tensors"]
    for got, want in zip(net + target, saved[: 2 * n]):
        assert torch.equal(got[0], want)
    for got, want in zip(moments, saved[2 * n:]):
        assert torch.equal(got[0], want)
    # the others kept learning after it froze
    healthy = read_checkpoint(dirs[0] / "last.pt")["state"]
    assert healthy["updates"] == last["updates"] and healthy["updates"] > (step - 50) // 4


def test_a_lone_agent_that_diverges_stops_the_run_and_keeps_its_last_good_weights(tmp_path):
    env = make_env("BlowUp-v0")
    env.reset(seed=CURSED * 100_003)
    agent = DQNAgent.for_env(env, DQNConfig(learning_starts=50, batch_size=16, hidden=(8,)), seed=0)
    with pytest.raises(DivergenceError, match="run stopped"):
        train(agent, env, 2000, seed=CURSED * 100_003, run_dir=tmp_path, eval_every=0, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 300 <= summary["diverged_at_step"] < 2000 and summary["steps"] == summary["diverged_at_step"]
    saved = read_checkpoint(tmp_path / "agent.pt")["state"]["net"]
    assert all(torch.isfinite(v).all() for v in saved.values())


def test_a_tabular_agent_freezes_alone_too():
    agent = TabularQAgent.for_env(make_env("BlowUp-v0"), TabularConfig(alpha=1.0, alpha_end=1.0), seeds=[0, 1])
    s = np.zeros((2, 1), dtype=np.int64)
    agent.observe(s, s, np.array([[1.0], [np.inf]]), s + 1, np.zeros((2, 1)), np.zeros((2, 1)))
    assert agent.guard.frozen.tolist() == [False, True] and np.isfinite(agent.q).all()
    before = agent.q[1].copy()
    agent.observe(s, s, np.array([[1.0], [2.0]]), s + 1, np.zeros((2, 1)), np.zeros((2, 1)))
    np.testing.assert_array_equal(agent.q[1], before)
    assert agent.q[0, 0, 0] != 0


def _record_minibatches(agent):
    """Agent 0's... every agent's sampled replay indices, per gradient step."""
    seen = []
    for name in ("sample", "sample_numpy"):
        real = getattr(agent.buffer, name)

        def spy(batch_size, rng, _real=real):
            batch = _real(batch_size, rng)
            seen.append(np.asarray(batch.indices))
            return batch

        setattr(agent.buffer, name, spy)
    return seen


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_seed_draws_the_same_in_a_group_as_alone(engine):
    """Seed 5 trained beside seeds 3, 4 and 6 takes the same exploratory actions, sees the same env draws and
    samples the same minibatch indices as seed 5 trained alone."""
    cfg = DQNConfig(learning_starts=200, batch_size=32, engine=engine)
    runs = {}
    for seeds in ([3, 4, 5, 6], [5]):
        env = make_env("FrozenLake-v1")
        agent = DQNAgent.for_env(env, cfg, seeds=seeds)
        agent.observe(*(np.zeros((len(seeds), 2), dtype=np.int64),) * 6)  # size the replay memory for 2 envs
        agent.buffer.pos = agent.buffer.size = agent.steps = 0
        minibatches = _record_minibatches(agent)
        venv = make_batched("FrozenLake-v1", len(seeds), 2, seeds=seeds)
        train_many(agent, venv, 3000, env_id="FrozenLake-v1", eval_every=1000, progress=False)
        i = seeds.index(5)
        runs[len(seeds)] = (agent.buffer.actions[i].clone(), agent.buffer.obs[i].clone(),
                            np.stack([m[i] for m in minibatches]), agent.net.get_weights(i))
    group, alone = runs[4], runs[1]
    assert len(group[2]) > 100
    assert torch.equal(group[0], alone[0])  # exploration (and greedy choices)
    assert torch.equal(group[1], alone[1])  # the env's dynamics and starts
    np.testing.assert_array_equal(group[2], alone[2])  # minibatch indices
    for a, b in zip(group[3], alone[3]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_switching_engines_keeps_the_sample_stream():
    """engine=numpy and engine=torch draw the same minibatch indices and exploration from the same seed."""
    draws = {}
    for engine in ("numpy", "torch"):
        agent = DQNAgent.for_env(make_env("CartPole-v1"), DQNConfig(learning_starts=100, batch_size=16, engine=engine),
                                 seeds=[0, 1])
        seen = _record_minibatches(agent)
        explore = [agent.explore_rng.uniform(4, 2) for _ in range(3)]
        rng = np.random.default_rng(0)
        for _ in range(300):
            o = rng.standard_normal((2, 1, 4)).astype(np.float32)
            agent.observe(o, rng.integers(0, 2, (2, 1)), np.ones((2, 1), np.float32), o, np.zeros((2, 1)),
                          np.zeros((2, 1)))
        draws[engine] = (np.stack(seen), np.stack(explore))
    np.testing.assert_array_equal(draws["numpy"][0], draws["torch"][0])
    np.testing.assert_array_equal(draws["numpy"][1], draws["torch"][1])
