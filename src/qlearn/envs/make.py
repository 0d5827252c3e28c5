"""Build Gymnasium environments with one-line errors instead of registry tracebacks."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from qlearn.envs.info import env_info
from qlearn.envs.pixels import ensure_registered, family, make_atari, make_minatar
from qlearn.envs.spaces import adapt_observations
from qlearn.errors import QlearnError, did_you_mean


@dataclass(frozen=True)
class EnvSpec:
    """What is needed to rebuild an environment: its registry id and keyword arguments."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def make(self, render_mode: str | None = None) -> gym.Env:
        return make_env(self.env_id, render_mode=render_mode, **self.kwargs)


def _registered_ids() -> list[str]:
    return sorted(gym.registry.keys())


def make_env(env_id: str, *, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Create a Gymnasium environment and check that qlearn can drive it.

    ``env_id`` may be ``"module:EnvId"`` to import a user's module that registers its env first.
    ``kwargs`` go to ``gym.make`` (for FrozenLake: ``map_name="8x8"``, ``desc=[...]``,
    ``is_slippery=False``; for Atari the :class:`~qlearn.envs.pixels.AtariProtocol` fields). MinAtar's and
    ale-py's ids are registered when first asked for, and built with their pixel pipelines
    (:mod:`qlearn.envs.pixels`). An unknown id suggests close registered names; an action space that is not
    ``Discrete`` is refused, since Q-learning needs to take a max over actions.
    """
    if ":" in env_id:  # "my_package.envs:MyEnv-v0": import the module that registers the env (Gymnasium's syntax)
        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise QlearnError(f"cannot import module {module!r} to register {env_id}: {exc}") from None
    ensure_registered(env_id)
    if env_id not in gym.registry:
        raise QlearnError(
            f"unknown environment {env_id!r}{did_you_mean(env_id, _registered_ids())}; "
            "list them with: python -c 'import gymnasium; gymnasium.pprint_registry()'"
        )
    given = dict(kwargs)
    try:
        kind = family(env_id)
        if kind == "atari":
            env = make_atari(env_id, render_mode, kwargs)
        elif kind == "minatar":
            env = make_minatar(env_id, render_mode, kwargs)
        else:
            if render_mode is not None:
                kwargs["render_mode"] = render_mode
            env = gym.make(env_id, **kwargs)
    except TypeError as exc:
        raise QlearnError(f"bad option for {env_id}: {exc}") from None
    except KeyError as exc:  # e.g. FrozenLake's map_name="5x5"
        option_hint = env_info(env_id).option_hint
        hint = f" ({option_hint})" if option_hint else ""
        raise QlearnError(f"bad option for {env_id}: unknown value {exc}{hint}") from None
    except (gym.error.Error, ValueError) as exc:
        raise QlearnError(f"cannot build {env_id}: {exc}") from None
    if not isinstance(env.action_space, spaces.Discrete):
        env.close()
        raise QlearnError(
            f"{env_id} has a {type(env.action_space).__name__} action space; Q-learning needs "
            "discrete actions (choose an env with Discrete actions, e.g. CartPole-v1, MountainCar-v0)"
        )
    # What rebuilds this env (evaluation envs): the id and options given here, not the base env's spec, which
    # holds what a pixel pipeline passed to gym.make and none of the wrappers' options.
    env = adapt_observations(env, env_id)  # Tuple, Dict, MultiDiscrete: as Discrete (a joint index) or Box
    env.make_kwargs = given  # type: ignore[attr-defined]
    return env


def success_of(env_id: str, episode_return: float, terminated: bool, truncated: bool) -> bool:
    """Whether an episode counts as a success, by the environment's own notion of it (its :func:`env_info`).

    FrozenLake, CliffWalking, Taxi: a goal reward was collected (return > 0). MountainCar, Acrobot: the
    goal state was reached (terminated). CartPole: the pole stayed up until the time limit (truncated, not
    terminated). Anything else: a positive return at a true termination.
    """
    return bool(success_array(env_id, np.asarray(episode_return), np.asarray(terminated), np.asarray(truncated)))


def success_array(env_id: str, returns: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """:func:`success_of` for arrays of episodes (boolean, same shape)."""
    return env_info(env_id).succeeded(returns, terminated, truncated)


def obs_size(env: gym.Env) -> int:
    """Number of discrete observations (tabular case) or raise."""
    space = env.observation_space
    if not isinstance(space, spaces.Discrete):
        raise QlearnError(
            f"{env.spec.id if env.spec else 'this env'} has a continuous "
            f"{type(space).__name__}{space.shape} observation space; the tabular agent needs "
            "discrete states (use --agent dqn)"
        )
    return int(space.n)


def discrete_size(space: spaces.Space) -> int:
    """``int(space.n)``: the number of actions (or states) of a Discrete space; qlearn's envs have Discrete
    actions (:func:`make_env` checks), and another space without ``n`` raises AttributeError, as before."""
    return int(cast(spaces.Discrete, space).n)


def as_index(obs: Any) -> int:
    return int(np.asarray(obs).item())
