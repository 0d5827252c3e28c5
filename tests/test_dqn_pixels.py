"""DQN on pixels end to end: MinAtar and Atari through the one trainer, uint8 frame memory, every variant
flag on the convolutional networks, life-loss flags in replay memory, save/load and bit-exact resume."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import kill_after_checkpoint, play

from qlearn.agents.base import read_checkpoint
from qlearn.agents.dqn import DQNAgent
from qlearn.buffers import FrameReplayBuffer, PrioritizedReplayBuffer
from qlearn.config import DQNConfig
from qlearn.envs.make import make_env
from qlearn.nets import StackedCNN
from qlearn.training.trainer import train

SMALL = dict(network="minatar", hidden=(32,), batch_size=8, buffer_size=2_000, learning_starts=100, train_freq=1,
             target_update_interval=50, loss="huber")


def test_minatar_trains_on_the_one_trainer_with_a_uint8_frame_memory():
    env = make_env("MinAtar/Breakout-v1")
    agent = DQNAgent.for_env(env, DQNConfig(**SMALL), seed=0)
    assert isinstance(agent.net, StackedCNN) and agent.engine.name == "numpy"  # MinAtar-sized convolutions
    result = train(agent, env, 600, eval_every=300, eval_episodes=2, progress=False)
    buf = agent.buffer
    assert isinstance(buf, FrameReplayBuffer) and buf.frames.dtype == torch.uint8 and buf.size == 600
    assert agent.updates == 501 and np.isfinite(agent.metrics()["loss"])
    assert len(result.eval_scores) == 2


@pytest.mark.parametrize(
    "flags",
    [dict(dueling=True, double=True), dict(n_step=3, double=True), dict(prioritized=True, dueling=True, n_step=2)],
    ids=["dueling+double", "n_step", "prioritized"],
)
def test_variant_flags_work_on_convolutional_networks(flags):
    env = make_env("MinAtar/Breakout-v1")
    agent = DQNAgent.for_env(env, DQNConfig(**{**SMALL, **flags}), seed=1)
    play(agent, env, 300, seed=1)
    assert agent.updates == 201 and np.isfinite(agent.metrics()["loss"])
    if flags.get("prioritized"):
        assert isinstance(agent.buffer, PrioritizedReplayBuffer)
        assert isinstance(agent.buffer.storage, FrameReplayBuffer)


def test_life_loss_is_terminal_in_replay_memory_while_the_frame_stack_goes_on():
    env = make_env("ALE/Breakout-v5", sticky=0.0)
    cfg = DQNConfig(network="nature", hidden=(16,), buffer_size=1_000, batch_size=4, learning_starts=10_000)
    agent = DQNAgent.for_env(env, cfg, seed=0)
    train(agent, env, 400, eval_every=0, progress=False)  # no gradient step: acting and storing only
    buf = agent.buffer
    term = buf.terminated[0, :400].numpy()
    ep = buf.ep[0, :400].numpy()  # steps into the game of each slot, capped at the stack size
    lives_lost = [i for i in np.flatnonzero(term) if i + 1 < 400 and ep[i + 1] > 0]
    assert lives_lost, "a life should have been lost within 400 steps of random play"
    # after a lost life the stack still holds the previous frames: the game did not restart
    batch = buf.gather(torch.tensor([[lives_lost[0] + 1]]), torch.ones(1, 1))
    assert not torch.equal(batch.obs[0, 0, 0], batch.obs[0, 0, 3])
    clipped = buf.rewards[0, :400].numpy()
    assert set(np.unique(clipped)) <= {0.0, 1.0}  # clipped for learning


def test_cnn_agent_save_load_round_trip(tmp_path):
    env = make_env("MinAtar/Breakout-v1")
    agent = DQNAgent.for_env(env, DQNConfig(**SMALL), seeds=(3, 4))
    agent.save(tmp_path / "a.pt")
    back = DQNAgent.load(tmp_path / "a.pt", env)
    obs = np.stack([env.reset(seed=s)[0] for s in range(6)]).reshape(2, 3, 4, 10, 10)
    np.testing.assert_array_equal(agent.q_values(obs), back.q_values(obs))
    assert back.encoder.image and back.encoder.shape == (4, 10, 10)
    alone = agent.select(1)
    # the same weights; a grouped convolution over 2 agents may round differently from a plain one
    np.testing.assert_allclose(alone.q_values(obs[1:]), agent.q_values(obs)[1:], rtol=1e-5, atol=1e-7)


def test_minatar_run_killed_then_resumed_matches_an_uninterrupted_one(tmp_path):
    env = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}

    def cmd(out):
        return [sys.executable, "-m", "qlearn", "train", "MinAtar/Breakout-v1", "--steps", "1000", "--seed", "5",
                "--out", str(out), "--no-progress", "--no-plots", "--set", "checkpoint_every=300",
                "--set", "eval_every=500", "--set", "eval_episodes=2", "--set", "learning_starts=150",
                "--set", "batch_size=8", "--set", "hidden=32", "--set", "buffer_size=3000"]

    full = subprocess.run(cmd(tmp_path / "full"), env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    (ref,) = (tmp_path / "full").iterdir()
    ck = kill_after_checkpoint(cmd(tmp_path / "killed"), tmp_path / "killed", 300, env)
    resumed = subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(ck.parent), "--no-progress",
                              "--no-plots"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = read_checkpoint(ref / "last.pt")["state"], read_checkpoint(ck.parent / "last.pt")["state"]
    for part in ("net", "target"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    assert (ref / "evals.csv").read_text() == (ck.parent / "evals.csv").read_text()


@pytest.mark.slow
def test_minatar_breakout_learns_with_its_preset():
    """The MinAtar preset, seed 0, 100k env steps: the greedy agent well above random play (~0.5 a game)."""
    from qlearn.presets import preset

    over, _ = preset("MinAtar/Breakout-v1", "dqn")
    env = make_env("MinAtar/Breakout-v1")
    agent = DQNAgent.for_env(env, DQNConfig(**over), seed=0)
    result = train(agent, env, 100_000, eval_every=25_000, eval_episodes=20, progress=False)
    assert result.best_scores.max() >= 4.0


def test_render_shows_each_frame_with_the_q_value_of_each_action():
    from qlearn.render import action_names, play_frames

    env = make_env("MinAtar/Breakout-v1", render_mode="rgb_array")
    agent = DQNAgent.for_env(env, DQNConfig(**SMALL), seed=0)
    frames, episodes = play_frames(agent, env, 1, max_frames=5)
    assert action_names(env, 3) == ["noop", "left", "right"]
    assert len(frames) >= 5 and all(f.dtype == np.uint8 and f.shape == frames[0].shape for f in frames)
    h, w, _ = frames[0].shape
    assert h >= 160 and w == h + 170  # the game enlarged to 160 pixels, the Q-value panel beside it
    assert episodes[0]["steps"] >= 1


def test_replay_memory_is_checked_at_construction_and_allocated_only_when_used(tmp_path):
    from qlearn.errors import QlearnError

    env = make_env("ALE/Pong-v5")
    with pytest.raises(QlearnError, match="buffer_size=100000000 needs"):
        DQNAgent.for_env(env, DQNConfig(network="nature", buffer_size=100_000_000), seed=0)
    agent = DQNAgent.for_env(env, DQNConfig(network="nature", hidden=(16,), buffer_size=5_000), seed=0)
    agent.save(tmp_path / "a.pt")
    loaded = DQNAgent.load(tmp_path / "a.pt", env)  # to act or be evaluated: no replay memory
    assert loaded._buffer is None and agent.select(0)._buffer is None
    obs, _ = env.reset(seed=0)
    agent.observe(obs[None, None], np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32), obs[None, None],
                  np.zeros((1, 1)), np.zeros((1, 1)))
    assert isinstance(agent.buffer, FrameReplayBuffer) and len(agent.buffer) == 1
