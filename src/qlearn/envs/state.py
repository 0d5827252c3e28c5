"""A Gymnasium env's state for training checkpoints, read from its attributes.

Gymnasium has no state API, so this is the one place that reads an env's attributes: the plain-data
attributes (numbers, text, arrays, random generators, deques and containers of those) of the env and of
each wrapper around it, outermost first. Spaces, specs and rendering handles are rebuilt, not saved. Two
kinds of env keep their state where attributes do not reach, and are read the way they allow: the
Atari emulator (ale-py's ``cloneState(include_rng=True)``, serialized) and MinAtar's game objects
(their own attributes, one level down).
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

# Attributes of a Gymnasium env (or wrapper) that are rebuilt, not saved: rendering handles, constants.
_SKIP = {"screen", "clock", "window", "surf", "viewer", "render_mode", "P"}


def _plain(v: Any) -> bool:
    """Values an env's checkpointed state may hold: numbers, text, arrays, generators, containers of those."""
    if v is None or isinstance(
        v, (bool, int, float, str, bytes, np.generic, np.random.Generator, np.random.RandomState)
    ):
        return True
    if isinstance(v, np.ndarray):
        return v.dtype != object
    if isinstance(v, (list, tuple, deque)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


def _attributes(obj: Any) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if k not in _SKIP and _plain(v)}


def _special(layer: Any) -> dict[str, Any]:
    """State an env keeps outside plain attributes (the Atari emulator, MinAtar's game)."""
    ale = getattr(layer, "ale", None)
    if ale is not None and hasattr(ale, "cloneState") and not hasattr(layer, "env"):  # the emulator's own env
        return {"__ale__": bytes(ale.cloneState(include_rng=True).serialize())}
    game = getattr(layer, "game", None)
    if game is not None and type(game).__module__.startswith("minatar"):
        return {"__minatar__": {"game": _attributes(game), "env": _attributes(game.env)}}
    return {}


def gym_env_state(env: gym.Env) -> list[dict[str, Any]]:
    """The state of ``env`` and each wrapper around it, outermost first (see the module docstring)."""
    states, layer = [], env
    while True:
        states.append({**_attributes(layer), **_special(layer)})
        if not hasattr(layer, "env"):
            return states
        layer = layer.env


def set_gym_env_state(env: gym.Env, states: list[dict[str, Any]]) -> None:
    """Put back what :func:`gym_env_state` took."""
    layer: Any = env
    for state in states:
        state = dict(state)
        ale_state, minatar = state.pop("__ale__", None), state.pop("__minatar__", None)
        vars(layer).update(copy.deepcopy(state))
        if ale_state is not None:
            import ale_py

            layer.ale.restoreState(ale_py.ALEState(ale_state))
        if minatar is not None:
            vars(layer.game).update(copy.deepcopy(minatar["game"]))
            vars(layer.game.env).update(copy.deepcopy(minatar["env"]))
            layer.game.env.random = layer.game.random  # one generator, shared, as MinAtar builds it
        if not hasattr(layer, "env"):
            break
        layer = layer.env
