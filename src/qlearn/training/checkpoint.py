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
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from qlearn.errors import QlearnError
from qlearn.fileio import atomic_write

FORMAT = "qlearn-train-checkpoint"
VERSION = 1
FILENAME = "checkpoint.pkl"
_SKIP = {"screen", "clock", "window", "surf", "viewer", "render_mode", "P"}  # rendering handles, constants

# The only globals a qlearn training checkpoint refers to. Anything else in the file (a crafted pickle
# that would call os.system, say) is refused before it can run: loading never executes foreign code.
_ALLOWED = {
    ("collections", "OrderedDict"), ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._philox", "Philox"), ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), ("numpy.random.bit_generator", "SeedSequence"),
}


class _Forbidden(pickle.UnpicklingError):
    pass


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise _Forbidden(f"refers to {module}.{name}, which a qlearn checkpoint never contains")


def _plain(v: Any) -> bool:
    """Values a checkpoint may hold: numbers, text, numpy arrays and generators, containers of those."""
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.generic, np.random.Generator)):
        return True
    if isinstance(v, np.ndarray):
        return v.dtype != object
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


def _to_plain(obj: Any) -> Any:
    """Tensors become numpy arrays (torch's own pickling would load through torch.load again)."""
    if isinstance(obj, torch.Tensor):
        return {"__tensor__": obj.detach().cpu().numpy(), "dtype": str(obj.dtype).removeprefix("torch.")}
    if isinstance(obj, dict):
        return type(obj)((k, _to_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj)
    return obj


def _from_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj and set(obj) == {"__tensor__", "dtype"}:
            return torch.from_numpy(np.array(obj["__tensor__"])).to(getattr(torch, obj["dtype"]))
        return type(obj)((k, _from_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_plain(v) for v in obj)
    return obj


def env_state(env: gym.Env) -> list[dict[str, Any]]:
    """The plain-data attributes of the env and each wrapper around it, outermost first: positions,
    counters, random generators (spaces, specs and rendering handles are rebuilt, not saved)."""
    states, layer = [], env
    while True:
        states.append({k: copy.deepcopy(v) for k, v in vars(layer).items() if k not in _SKIP and _plain(v)})
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


def batched_env_state(venv: Any) -> dict[str, Any]:
    """A batched env's state: native (states, time counters, generator) or Gymnasium vector (each env's)."""
    if hasattr(venv, "vec"):
        return {"kind": "gym", "envs": [env_state(e) for e in venv.vec.envs]}
    return {"kind": "native", "state": venv.state, "t": venv.t, "gen": venv.gen.get_state()}


def set_batched_env_state(venv: Any, state: dict[str, Any]) -> None:
    """Put back what :func:`batched_env_state` took (on the env's own device)."""
    if state["kind"] == "gym":
        for env, st in zip(venv.vec.envs, state["envs"], strict=True):
            set_env_state(env, st)
        return
    venv.state = state["state"].to(venv.device)
    venv.t = state["t"].to(venv.device)
    venv.gen.set_state(state["gen"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (:func:`qlearn.fileio.atomic_write`): a kill mid-write keeps the previous checkpoint."""
    with atomic_write(path, what="checkpoint") as fh:
        pickle.dump(_to_plain({"format": FORMAT, "version": VERSION, **payload}), fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`, with a one-line error for anything else."""
    if not path.is_file():
        raise QlearnError(f"no training checkpoint at {path} (runs write one every checkpoint_every steps)")
    try:
        with open(path, "rb") as fh:
            payload = _SafeUnpickler(fh).load()
    except _Forbidden as exc:
        raise QlearnError(f"training checkpoint {path} is not qlearn's: it {exc}") from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files raise many types
        raise QlearnError(f"training checkpoint {path} is corrupt or not qlearn's ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise QlearnError(f"{path} is not a qlearn training checkpoint")
    version = payload.get("version")
    if not isinstance(version, int):
        raise QlearnError(f"{path} is a malformed training checkpoint (no format version)")
    if version > VERSION:
        raise QlearnError(f"{path} was written by a newer qlearn (checkpoint format {version})")
    if not (isinstance(payload.get("agent"), dict) and isinstance(payload.get("agent_rng"), dict)
            and isinstance(payload.get("env"), (list, dict)) and isinstance(payload.get("loop"), dict)
            and isinstance(payload["loop"].get("step"), int)):
        raise QlearnError(f"{path} is a malformed training checkpoint (agent, env or loop state missing)")
    return _from_plain(payload)
