"""Pixel environments: MinAtar and Atari (ale-py), registered when an id asks for them, built the way the
papers train on them.

Neither package registers its ids with Gymnasium on import: MinAtar only through
``minatar.gym.register_envs()``, ale-py through ``gymnasium.register_envs(ale_py)``. :func:`ensure_registered`
does that the first time an id of theirs is asked for (so ``import qlearn`` stays fast), with a one-line
error naming the ``pip install`` when the package is missing.

Atari is built from Gymnasium's own wrappers: ``AtariPreprocessing`` (no-op starts, frame skip with
max-pooling over the last two frames, 84x84 grayscale; it needs the base env made with ``frameskip=1``)
and ``FrameStackObservation`` (which pads a new episode with its first frame). Between them qlearn adds
only what Gymnasium has no piece for: FIRE on reset for games that wait for it, and the training signals
of :class:`TrainingSignals` (a life lost and the clipped reward, in ``info``: the game itself goes on and
its raw score is what evaluation counts). Which protocol was used is explicit (:class:`AtariProtocol`)
and written into each run's ``config.json``.

MinAtar observations are ``(10, 10, C)`` booleans (whatever the space says); they are turned into
``(C, 10, 10)`` uint8, channels first as the convolutional networks read them.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from qlearn.errors import QlearnError

PIXELS_EXTRA = "pip install -e '.[pixels]'"


def family(env_id: str) -> str | None:
    """``"minatar"``, ``"atari"`` or None for an id of neither."""
    if env_id.startswith("MinAtar/"):
        return "minatar"
    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        return "atari"
    return None


def ensure_registered(env_id: str) -> None:
    """Register MinAtar's or ale-py's ids if ``env_id`` is one of theirs and they are not registered yet."""
    kind = family(env_id)
    if kind is None or env_id in gym.registry:
        return
    package = {"minatar": "minatar", "atari": "ale_py"}[kind]
    try:
        module = importlib.import_module(package if kind == "atari" else "minatar.gym")
    except ImportError:
        pip = {"minatar": "minatar", "atari": "ale-py"}[kind]
        raise QlearnError(
            f"{env_id} needs the {pip} package, which is not installed: pip install {pip} (or {PIXELS_EXTRA})"
        ) from None
    if kind == "minatar":
        module.register_envs()
    else:
        gym.register_envs(module)


@dataclass(frozen=True)
class AtariProtocol:
    """How an Atari game is played and scored; every field is a ``--env-arg`` of the same name.

    The defaults follow the DQN papers as CleanRL and the RL Zoo run them: 30 no-op starts, 4 frames
    per action, 84x84 grayscale, 4 frames stacked, FIRE on reset, episodes cut at 108,000 frames (30
    minutes of play), rewards clipped to their sign and a lost life ending the return for learning only.
    ``sticky`` is the probability that the emulator repeats the last action: 0.25 for the ``ALE/*-v5``
    ids (Machado et al. 2018), 0 for ``*NoFrameskip-v4`` (the ids behind CleanRL's and SB3's published
    numbers). ``vector``: which vector env steps many games at once, ``gymnasium`` (a ``SyncVectorEnv`` of
    this pipeline) or ``ale`` (ale-py's C++ vector env, :mod:`qlearn.envs.ale_vector`: same protocol, no
    checkpoints)."""

    sticky: float | None = None
    noop_max: int = 30
    frame_skip: int = 4
    screen_size: int = 84
    frame_stack: int = 4
    fire_reset: bool = True
    max_frames: int = 108_000
    clip_rewards: bool = True
    life_loss: bool = True
    vector: str = "gymnasium"

    def resolved(self, env_id: str) -> AtariProtocol:
        """With ``sticky`` filled in from the id's version when it was not given."""
        if self.sticky is not None:
            return self
        return AtariProtocol(**{**asdict(self), "sticky": 0.0 if env_id.endswith("NoFrameskip-v4") else 0.25})


def _protocol(env_id: str, kwargs: dict[str, Any]) -> AtariProtocol:
    fields = AtariProtocol.__dataclass_fields__
    mine = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
    try:
        protocol = AtariProtocol(**mine).resolved(env_id)
    except TypeError as exc:
        raise QlearnError(f"bad Atari option for {env_id}: {exc}") from None
    if not 0.0 <= float(protocol.sticky or 0.0) <= 1.0:
        raise QlearnError(f"bad Atari option sticky={protocol.sticky}: must be a probability in [0, 1]")
    if protocol.vector not in ("gymnasium", "ale"):
        raise QlearnError(f"bad Atari option vector={protocol.vector!r}: use gymnasium or ale")
    if protocol.frame_skip < 1 or protocol.frame_stack < 1 or protocol.noop_max < 0:
        raise QlearnError(
            f"bad Atari options for {env_id}: frame_skip and frame_stack must be >= 1 and noop_max >= 0 "
            f"(got {protocol.frame_skip}, {protocol.frame_stack}, {protocol.noop_max})"
        )
    return protocol


class FireReset(gym.Wrapper):
    """Press FIRE after every reset in games that wait for it (Breakout's ball, say); a reset that ends
    the game at once is reset again."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.fire = _action_meanings(env).index("FIRE")

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:
            obs, info = self.env.reset()
        return obs, info


class TrainingSignals(gym.Wrapper):
    """Adds what learning sees, while the game and its raw score go on unchanged: ``info["life_loss"]``
    (a life was lost and the game continues: a terminal state for the TD target only) and
    ``info["train_reward"]`` (the reward's sign, with ``clip_rewards``)."""

    def __init__(self, env: gym.Env, clip_rewards: bool, life_loss: bool) -> None:
        super().__init__(env)
        self.clip_rewards, self.life_loss = clip_rewards, life_loss
        self.lives = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.lives = int(info.get("lives", 0))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, raw, terminated, truncated, info = self.env.step(action)
        reward = float(raw)
        lives = int(info.get("lives", 0))
        info["life_loss"] = bool(self.life_loss and lives < self.lives and not terminated)
        self.lives = lives
        info["train_reward"] = float(np.sign(reward)) if self.clip_rewards else reward
        return obs, reward, terminated, truncated, info


def make_atari(env_id: str, render_mode: str | None, kwargs: dict[str, Any]) -> gym.Env:
    """The Atari pipeline for ``env_id`` under the protocol in ``kwargs`` (the rest go to ``gym.make``)."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    protocol = _protocol(env_id, kwargs)
    base = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=float(protocol.sticky or 0.0),
        max_num_frames_per_episode=protocol.max_frames,
        render_mode=render_mode,
        **kwargs,
    )
    try:
        env: gym.Env = AtariPreprocessing(
            base,
            noop_max=protocol.noop_max,
            frame_skip=protocol.frame_skip,
            screen_size=protocol.screen_size,
            terminal_on_life_loss=False,
            grayscale_obs=True,
            scale_obs=False,
        )
    except gym.error.DependencyNotInstalled:
        base.close()
        raise QlearnError(
            f"Atari preprocessing needs opencv: pip install opencv-python-headless (or {PIXELS_EXTRA})"
        ) from None
    if protocol.fire_reset and "FIRE" in _action_meanings(base):
        env = FireReset(env)
    env = TrainingSignals(env, protocol.clip_rewards, protocol.life_loss)
    env = FrameStackObservation(env, protocol.frame_stack)
    env.protocol = {"family": "atari", **asdict(protocol)}  # type: ignore[attr-defined]
    return env


def make_minatar(env_id: str, render_mode: str | None, kwargs: dict[str, Any]) -> gym.Env:
    """A MinAtar game with ``(C, 10, 10)`` uint8 observations (``kwargs``: e.g. ``sticky_action_prob``)."""
    from gymnasium.wrappers import TransformObservation

    base = gym.make(env_id, render_mode=render_mode, **kwargs)
    h, w, c = cast(tuple[int, int, int], base.observation_space.shape)
    space = spaces.Box(0, 1, (c, h, w), dtype=np.uint8)
    env = TransformObservation(base, lambda obs: np.ascontiguousarray(np.moveaxis(obs, -1, 0), dtype=np.uint8), space)
    sticky = kwargs.get("sticky_action_prob", 0.1)
    env.protocol = {"family": "minatar", "sticky_action_prob": sticky, "channels_first": True}  # type: ignore[attr-defined]
    return env


def _action_meanings(env: gym.Env) -> list[str]:
    """The emulator's names of the actions (``NOOP``, ``FIRE``, ...)."""
    return list(cast(Any, env.unwrapped).get_action_meanings())


def game_name(env_id: str) -> str:
    """``ALE/SpaceInvaders-v5`` and ``SpaceInvadersNoFrameskip-v4`` -> ``space_invaders``."""
    name = env_id.removeprefix("ALE/").split("-")[0].removesuffix("NoFrameskip")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def human_normalized(env_id: str, score: float) -> float | None:
    """``(score - random) / (human - random)`` from the standard table (``qlearn/data/atari_human.json``);
    None for a game not in it or an id that is not Atari."""
    if family(env_id) != "atari":
        return None
    games = json.loads(resources.files("qlearn").joinpath("data/atari_human.json").read_text())["games"]
    ref = games.get(game_name(env_id))
    return None if ref is None else (float(score) - ref["random"]) / (ref["human"] - ref["random"])


def horizon_of(env: gym.Env) -> int | None:
    """The most agent steps an episode can last: the time limit, or for Atari the frame cap over the skip."""
    if env.spec is not None and env.spec.max_episode_steps:
        return int(env.spec.max_episode_steps)
    proto = protocol_of(env)
    if proto is not None and proto.get("family") == "atari":
        return -(-int(proto["max_frames"]) // int(proto["frame_skip"])) + 1
    return None


def protocol_of(env: gym.Env) -> dict[str, Any] | None:
    """The pixel protocol an env was built with (None for other envs)."""
    return getattr(env, "protocol", None)


def frame_stack_of(env: gym.Env) -> int:
    """How many frames an observation stacks (``FrameStackObservation``'s count; 1 without one)."""
    from gymnasium.wrappers import FrameStackObservation

    layer: Any = env
    while True:
        if isinstance(layer, FrameStackObservation):
            return int(layer.stack_size)
        if not hasattr(layer, "env"):
            return 1
        layer = layer.env
