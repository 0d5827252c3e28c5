"""What every agent shares: the protocol, schedules, the seed's per-step API, and checkpoint files.

Agents are batched: ``act`` and ``observe`` take arrays shaped ``[K, N, ...]`` (K independent agents,
N environments each). The course's per-step API, ``get_action(state)`` and ``update(state, action,
reward, next_state, terminated)``, is :class:`SingleStepAPI`: a thin layer that wraps one transition
as K=1, N=1 and calls the same batched code.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from qlearn.envs.make import discrete_size
from qlearn.errors import QlearnError
from qlearn.fileio import atomic_write

CHECKPOINT_FORMAT = "qlearn-agent"
CHECKPOINT_VERSION = 2  # 2: the body carries a SHA-256 digest, so a damaged file is refused, not loaded


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """Value that moves linearly from ``start`` to ``end`` over ``duration`` steps, then stays at ``end``."""
    frac = min(max(t, 0) / max(duration, 1), 1.0)
    return start + frac * (end - start)


@runtime_checkable
class Agent(Protocol):
    """The small protocol both agents satisfy; every function and CLI command takes either."""

    kind: str
    k: int
    n_actions: int
    steps: int
    greedy: bool

    def act(self, obs: np.ndarray, *, greedy: bool = False) -> np.ndarray: ...
    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None: ...
    def q_values(self, obs: np.ndarray) -> np.ndarray: ...
    def q_table(self, agent: int = 0) -> np.ndarray: ...
    def get_action(self, state: Any, *, greedy: bool | None = None) -> int: ...
    def update(
        self, state: Any, action: int, reward: float, next_state: Any, terminated: bool, truncated: bool = False
    ) -> float | None: ...
    def metrics(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def save(self, path: str | os.PathLike) -> Path: ...


class SingleStepAPI:
    """The seed's one-transition API over the batched engine (valid for K=1)."""

    k: int
    greedy: bool

    if TYPE_CHECKING:  # provided by the agent class (declared for the type checker only)

        def act(self, obs: Any, *, greedy: bool = False) -> Any: ...
        def observe(
            self, obs: Any, actions: Any, rewards: Any, next_obs: Any, terminated: Any, truncated: Any
        ) -> None: ...
        def metrics(self) -> dict[str, float]: ...

    def _one(self, x: Any) -> np.ndarray:
        if self.k != 1:
            raise QlearnError(f"get_action/update handle one agent; this one holds K={self.k}: use act/observe")
        return np.asarray(x)[None, None]

    def get_action(self, state: Any, *, greedy: bool | None = None) -> int:
        """Epsilon-greedy action for one state (greedy when ``agent.greedy`` is set or ``greedy=True``)."""
        return int(self.act(self._one(state), greedy=self.greedy if greedy is None else greedy)[0, 0])

    def update(
        self, state: Any, action: int, reward: float, next_state: Any, terminated: bool, truncated: bool = False
    ) -> float | None:
        """Learn from one transition: store it and, when due, train. Returns the loss if it trained."""
        before = getattr(self, "updates", None)
        self.observe(
            self._one(state),
            self._one(action),
            self._one(float(reward)),
            self._one(next_state),
            self._one(bool(terminated)),
            self._one(bool(truncated)),
        )
        if before is not None and getattr(self, "updates", None) != before:
            return self.metrics().get("loss")
        return None


def write_checkpoint(path: str | os.PathLike, kind: str, meta: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write atomically (temporary file, then rename): a crash never leaves a half-written checkpoint. The
    agent is serialised once into a body whose SHA-256 digest is stored beside it: a file damaged later
    (a flipped bit in a weight) fails the digest instead of loading different weights."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"kind": kind, "meta": meta, "state": state}, buf)
    body = buf.getvalue()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "body": body,
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write_checkpoint`, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise QlearnError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise QlearnError(f"checkpoint {path} is corrupt or not a qlearn checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise QlearnError(f"{path} is not a qlearn checkpoint")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise QlearnError(f"{path} is a malformed qlearn checkpoint (no format version)")
    if version > CHECKPOINT_VERSION:
        raise QlearnError(f"{path} was written by a newer qlearn (format {version}); upgrade qlearn")
    if version >= 2:
        body, digest = payload.get("body"), payload.get("sha256")
        if not isinstance(body, bytes) or not isinstance(digest, str) or hashlib.sha256(body).hexdigest() != digest:
            raise QlearnError(f"checkpoint {path} is corrupt (its contents do not match their SHA-256 digest)")
        try:
            payload = {**payload, **torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)}
        except Exception as exc:  # torch raises many types for a damaged body
            raise QlearnError(f"checkpoint {path} is corrupt ({type(exc).__name__})") from None
    if not (
        isinstance(payload.get("kind"), str)
        and isinstance(payload.get("meta"), dict)
        and isinstance(payload.get("state"), dict)
    ):
        raise QlearnError(f"{path} is a malformed qlearn checkpoint (kind, meta or state missing)")
    return payload


def check_fits(meta: dict[str, Any], env: gym.Env, path: Any) -> None:
    """Refuse a checkpoint whose state or action counts differ from ``env``'s."""
    space = env.observation_space
    n_states = getattr(space, "n", None)
    saved_states = meta.get("encoder", {}).get("n_states", meta.get("n_states"))
    env_name = env.spec.id if env.spec else "this env"
    saved_dim, dim = meta.get("encoder", {}).get("dim"), int(np.prod(space.shape)) if space.shape else None
    if saved_states is None and n_states is None and saved_dim is not None and dim is not None and saved_dim != dim:
        raise QlearnError(
            f"checkpoint {path} was trained on {meta.get('env_id')} with {saved_dim} observation "
            f"features; {env_name} has {dim}"
        )
    if discrete_size(env.action_space) != meta["n_actions"] or (saved_states is not None and saved_states != n_states):
        raise QlearnError(
            f"checkpoint {path} was trained on {meta.get('env_id')} ({saved_states} states, "
            f"{meta['n_actions']} actions); {env_name} has {n_states} states and "
            f"{discrete_size(env.action_space)} actions"
        )
