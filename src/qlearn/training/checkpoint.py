"""Resumable training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the agent (weights, target, optimiser, replay memory, counters), where each of its
random streams is, the environments' own state (``state_dict()`` of the batched or single env) and the
trainer's (step, current observations, episode returns, best weights so far, evaluation history).
It is written to a temporary file and renamed, so a kill at any moment leaves the previous complete
checkpoint in place. On the CPU, a resumed run ends bit for bit where an uninterrupted one would.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qlearn.errors import QlearnError
from qlearn.fileio import atomic_write

FORMAT = "qlearn-train-checkpoint"
VERSION = 2  # 2: one trainer for every run, per-agent random streams
FILENAME = "checkpoint.pkl"

# The only globals a qlearn training checkpoint refers to. Anything else in the file (a crafted pickle
# that would call os.system, say) is refused before it can run: loading never executes foreign code.
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "deque"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random.bit_generator", "SeedSequence"),
}


class _Forbidden(pickle.UnpicklingError):
    pass


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise _Forbidden(f"refers to {module}.{name}, which a qlearn checkpoint never contains")


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
    if version < VERSION:
        raise QlearnError(
            f"{path} was written by an earlier qlearn (checkpoint format {version}) and cannot be "
            f"continued by this one: start the run again with qlearn train --config "
            f"{path.parent / 'config.json'}"
        )
    if not (
        isinstance(payload.get("agent"), dict)
        and isinstance(payload.get("agent_rng"), dict)
        and isinstance(payload.get("env"), (list, dict))
        and isinstance(payload.get("loop"), dict)
        and isinstance(payload["loop"].get("step"), int)
    ):
        raise QlearnError(f"{path} is a malformed training checkpoint (agent, env or loop state missing)")
    return _from_plain(payload)


def capture(t: Any) -> dict[str, Any]:
    """What :class:`~qlearn.training.trainer.Trainer` ``t`` saves to continue exactly where it is: the
    agents (with replay memory) and their streams, the envs, the scorer's envs, and the loop's state."""
    res = t.result
    return {
        "agent": t.agent.state_dict(include_buffer=True),
        "agent_rng": t.agent.rng_state(),
        "env": t.venv.state_dict(),
        "eval_env": None if t.scorer is None else t.scorer.state_dict(),
        "loop": {
            "step": t.step,
            "next_eval": t.next_eval,
            "obs": t.obs,
            "ep_ret": t.ep_ret,
            "ep_len": t.ep_len,
            "best": t.best.state_dict(),
            "eval_steps": res.eval_steps,
            "eval_scores": res.eval_scores,
            "eval_success": res.eval_success,
            "eval_ci95": res.eval_ci95,
            "eval_lower": res.eval_lower,
            "eval_exact": res.eval_exact,
            "eval_q_error": res.eval_q_error,
            "episodes": t.logs.episodes,
            "wall_time": t.spent + time.perf_counter() - t.start,
            "scoring_time": 0.0 if t.scorer is None else t.scorer.seconds,
        },
    }


def restore(t: Any, payload: dict[str, Any]) -> Any:
    """Put :func:`capture`'s state back into trainer ``t``; the observation the agents act on next."""
    res = t.result
    try:  # a checkpoint in the right format but with missing or misshapen parts
        t.agent.load_state_dict(payload["agent"])
        t.agent.set_rng_state(payload["agent_rng"])
        t.venv.load_state_dict(payload["env"])
        if t.scorer is not None:
            t.scorer.load_state_dict(payload.get("eval_env"))
            t.scorer.seconds = float(payload["loop"].get("scoring_time", 0.0))
        loop = payload["loop"]
        t.step, t.next_eval, t.spent = int(loop["step"]), int(loop["next_eval"]), float(loop["wall_time"])
        t.ep_ret, t.ep_len = np.array(loop["ep_ret"]), np.array(loop["ep_len"])
        t.best.load_state_dict(loop["best"])
        res.eval_steps, res.eval_scores = list(loop["eval_steps"]), list(loop["eval_scores"])
        res.eval_success = list(loop["eval_success"])
        res.eval_ci95 = [None if ci is None else tuple(ci) for ci in loop["eval_ci95"]]
        res.eval_exact, res.eval_q_error = list(loop.get("eval_exact", [])), list(loop.get("eval_q_error", []))
        res.eval_lower = list(loop.get("eval_lower", []))
        t.logs.episodes[:] = loop["episodes"]
        obs = loop["obs"]
    except QlearnError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise QlearnError(f"the training checkpoint is malformed ({type(exc).__name__}: {exc})") from None
    t.obs = obs
    return obs.to(t.venv.device) if isinstance(obs, torch.Tensor) else obs
