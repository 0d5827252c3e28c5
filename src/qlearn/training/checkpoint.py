"""Resumable training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the agent (weights, target, optimiser, replay memory, counters), every random
generator (the agent's numpy and torch generators, the environment's), the environment's own state
(position, time-limit counter) and the loop's state (step, current observation, episode return, best
agent so far, evaluation history). It is written to a temporary file and renamed, so a kill at any
moment leaves the previous complete checkpoint in place. On the CPU, a resumed run ends bit for bit
where an uninterrupted one would.
"""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym

from qlearn.errors import QlearnError

FORMAT = "qlearn-train-checkpoint"
VERSION = 1
FILENAME = "checkpoint.pkl"
_SKIP = {"screen", "clock", "window", "surf", "viewer", "render_mode"}  # rendering handles: not state


def env_state(env: gym.Env) -> list[dict[str, Any]]:
    """Picklable attributes of the env and each wrapper around it, outermost first."""
    states, layer = [], env
    while True:
        states.append({k: copy.deepcopy(v) for k, v in vars(layer).items()
                       if k not in _SKIP and not isinstance(v, gym.Env) and _picklable(v)})
        if not hasattr(layer, "env"):
            return states
        layer = layer.env


def set_env_state(env: gym.Env, states: list[dict[str, Any]]) -> None:
    layer = env
    for state in states:
        vars(layer).update(copy.deepcopy(state))
        if not hasattr(layer, "env"):
            break
        layer = layer.env


def _picklable(v: Any) -> bool:
    try:
        pickle.dumps(v)
        return True
    except Exception:  # noqa: BLE001 - anything that does not pickle is not part of the saved state
        return False


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write: a temporary file in the same folder, fsync, then rename over the old checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump({"format": FORMAT, "version": VERSION, **payload}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise QlearnError(f"cannot write checkpoint {path}: {exc.strerror}; the previous checkpoint is intact") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`, with a one-line error for anything else."""
    if not path.is_file():
        raise QlearnError(f"no training checkpoint at {path} (runs write one every checkpoint_every steps)")
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files raise many types
        raise QlearnError(f"training checkpoint {path} is corrupt or not qlearn's ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise QlearnError(f"{path} is not a qlearn training checkpoint")
    if int(payload.get("version", 0)) > VERSION:
        raise QlearnError(f"{path} was written by a newer qlearn (checkpoint format {payload['version']})")
    return payload
