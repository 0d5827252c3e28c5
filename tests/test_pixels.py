"""Pixel environments (qlearn.envs.pixels): plain MinAtar and ale-py ids, the Atari pipeline built from
Gymnasium's wrappers, life loss and clipped rewards as training signals only, the protocol recorded."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

from qlearn.envs.make import make_env
from qlearn.envs.pixels import TrainingSignals, frame_stack_of, protocol_of
from qlearn.errors import QlearnError


def test_minatar_plain_id_registers_itself_with_channels_first_uint8():
    env = make_env("MinAtar/Breakout-v1")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (4, 10, 10) and env.observation_space.dtype == np.uint8
    assert obs.dtype == np.uint8 and obs.shape == (4, 10, 10) and set(np.unique(obs)) <= {0, 1}
    assert protocol_of(env) == {"family": "minatar", "sticky_action_prob": 0.1, "channels_first": True}
    assert env.action_space.n == 3  # v1: the minimal action set


def test_missing_package_is_a_one_line_error_naming_the_install(monkeypatch):
    monkeypatch.delitem(gym.registry, "MinAtar/Freeway-v1", raising=False)
    monkeypatch.setitem(sys.modules, "minatar.gym", None)  # as if minatar were not installed
    with pytest.raises(QlearnError, match=r"needs the minatar package.*pip install minatar"):
        make_env("MinAtar/Freeway-v1")


@pytest.mark.parametrize("env_id,sticky", [("ALE/Breakout-v5", 0.25), ("BreakoutNoFrameskip-v4", 0.0)])
def test_atari_pipeline_from_gymnasium_wrappers_and_its_protocol(env_id, sticky):
    env = make_env(env_id)
    assert env.unwrapped._frameskip == 1  # AtariPreprocessing does the frame skip, on a frameskip=1 base
    proto = protocol_of(env)
    assert proto["sticky"] == sticky and proto["frame_skip"] == 4 and proto["max_frames"] == 108_000
    assert frame_stack_of(env) == 4
    obs, info = env.reset(seed=1)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[0], obs[i]) for i in range(4))  # a new episode is padded with its first frame


def test_life_loss_is_a_learning_signal_while_the_game_goes_on():
    env = make_env("ALE/Breakout-v5", sticky=0.0)
    env.reset(seed=0)
    env.action_space.seed(0)
    losses, lives_seen = 0, []
    for _ in range(5_000):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["train_reward"] == np.sign(reward)
        if info["life_loss"]:
            losses += 1
            assert not terminated  # the game goes on after a lost life
        lives_seen.append(info["lives"])
        if terminated or truncated:
            break
    assert terminated and info["lives"] == 0  # the episode is the whole game: every life
    assert losses == 4  # five lives: four lost while playing on, the last ends the game


def test_training_signals_clip_the_learning_reward_only():
    class Big(gym.Env):
        observation_space = gym.spaces.Discrete(1)
        action_space = gym.spaces.Discrete(1)

        def reset(self, seed=None, options=None):
            return 0, {"lives": 3}

        def step(self, action):
            return 0, 7.0, False, False, {"lives": 2}

    env = TrainingSignals(Big(), clip_rewards=True, life_loss=True)
    env.reset()
    _, reward, *_, info = env.step(0)
    assert reward == 7.0 and info["train_reward"] == 1.0 and info["life_loss"]
    env = TrainingSignals(Big(), clip_rewards=False, life_loss=False)
    env.reset()
    *_, info = env.step(0)
    assert info["train_reward"] == 7.0 and not info["life_loss"]


def test_bad_atari_options_are_one_line_errors():
    with pytest.raises(QlearnError, match="frame_skip"):
        make_env("ALE/Pong-v5", frame_skip=0)
    with pytest.raises(QlearnError, match="sticky"):
        make_env("ALE/Pong-v5", sticky=1.5)


def test_evaluation_envs_are_rebuilt_with_the_same_protocol():
    from qlearn.training.scoring import single_scorer

    env = make_env("ALE/Pong-v5", sticky=0.0, noop_max=5)
    scorer = single_scorer(env, seed=0, episodes=1)
    (rebuilt,) = scorer.eval_env.vec.envs
    assert protocol_of(rebuilt)["sticky"] == 0.0 and protocol_of(rebuilt)["noop_max"] == 5
    assert scorer.eval_env.horizon == 108_000 // 4 + 1  # whole games, up to the frame cap
    scorer.close()
