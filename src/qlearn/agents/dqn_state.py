"""A DQN agent's state as its files hold it: weights, target, optimiser, counters, replay memory, where
each random stream is, and the metadata to rebuild it; :class:`~qlearn.agents.dqn.DQNAgent` inherits
this from :class:`DQNState` (its ``load`` is on the agent class)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import torch

from qlearn.agents.base import write_checkpoint
from qlearn.agents.engine import GradientEngine
from qlearn.agents.guard import DivergenceGuard
from qlearn.agents.numpy_step import init_adam_state
from qlearn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from qlearn.config import DQNConfig, to_dict
from qlearn.envs.encoding import Encoder
from qlearn.errors import QlearnError
from qlearn.nets import StackedCNN, StackedMLP
from qlearn.rng import Stream


class DQNState:
    """``state_dict``/``load_state_dict``, ``rng_state``/``set_rng_state``, ``meta`` and ``save`` of a DQN
    agent (what the agent class sets in ``__init__`` is declared here)."""

    kind: str
    config: DQNConfig
    encoder: Encoder
    n_actions: int
    seeds: tuple[int, ...]
    env_id: str | None
    net: StackedMLP | StackedCNN
    target: StackedMLP | StackedCNN
    optimizer: torch.optim.Optimizer
    engine: GradientEngine
    guard: DivergenceGuard
    explore_rng: Stream
    sample_rng: Stream
    steps: int
    updates: int
    _since_train: int
    _last_loss: torch.Tensor | None
    _buffer_envs: int

    @property
    def compact(self) -> bool:
        raise NotImplementedError

    def _make_buffer(self, n_envs: int) -> ReplayBuffer | PrioritizedReplayBuffer:
        raise NotImplementedError

    @property
    def buffer(self) -> ReplayBuffer | PrioritizedReplayBuffer:
        raise NotImplementedError

    @buffer.setter
    def buffer(self, value: ReplayBuffer | PrioritizedReplayBuffer | None) -> None:
        raise NotImplementedError

    @buffer.deleter
    def buffer(self) -> None:
        raise NotImplementedError

    def _guarded(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def state_dict(self, *, include_buffer: bool = False) -> dict[str, Any]:
        state = {
            "net": self.net.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "updates": self.updates,
            "since_train": self._since_train,
            "last_loss": self._last_loss,
        }
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("net", "target"):
            mine = getattr(self, name).state_dict()
            for key, val in state[name].items():
                if key not in mine or mine[key].shape != val.shape:
                    raise QlearnError(
                        f"checkpoint network does not fit this agent: {name}.{key} has shape "
                        f"{tuple(val.shape)}, expected {tuple(mine[key].shape) if key in mine else 'none'}"
                    )
        self.net.load_state_dict(state["net"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.engine.invalidate()
        if not self.optimizer.state:
            init_adam_state(self.optimizer)
        self.guard.rebind(self._guarded())  # the optimiser's moment tensors were replaced
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self._since_train = int(state.get("since_train", 0))
        self._last_loss = state.get("last_loss")
        if "buffer" in state:
            n_envs = int(state["buffer"].get("n_envs", 1))
            if n_envs != self._buffer_envs or getattr(self, "_buffer", None) is None:
                del self.buffer  # free the old memory first, as observe() does
                self._buffer_envs = n_envs  # allocated for the saved memory's envs on the next line
            self.buffer.load_state_dict(self._legacy_buffer(state["buffer"]))

    def _legacy_buffer(self, state: dict[str, Any]) -> dict[str, Any]:
        """A replay memory saved with one-hot features (before compact storage): back to state numbers."""
        obs = state.get("obs")
        if self.compact and torch.is_tensor(obs) and obs.dim() == 3 and obs.shape[-1] == self.encoder.dim:
            return {
                **state,
                "obs": obs.argmax(-1, keepdim=True).float(),
                "next_obs": state["next_obs"].argmax(-1, keepdim=True).float(),
            }
        return state

    def rng_state(self) -> dict[str, Any]:
        """Where each random stream is (exploration, minibatches, priorities), and the frozen agents."""
        state = {
            "explore": self.explore_rng.state_dict(),
            "sample": self.sample_rng.state_dict(),
            "guard": self.guard.state_dict(self._guarded),
        }
        if self.config.prioritized:  # the memory is a PrioritizedReplayBuffer (the agent's _make_buffer)
            state["per"] = cast(PrioritizedReplayBuffer, self.buffer).rng.state_dict()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        if "explore" not in state:
            raise QlearnError(
                "this training checkpoint was written by an earlier qlearn (its random generators "
                "are not per agent): start the run again with qlearn train --config RUN_DIR"
            )
        self.explore_rng.load_state_dict(state["explore"])
        self.sample_rng.load_state_dict(state["sample"])
        self.guard.load_state_dict(state.get("guard"), self._guarded)
        if "per" in state:  # (on a uniform memory: AttributeError, which a trainer reports as malformed)
            cast(PrioritizedReplayBuffer, self.buffer).rng.load_state_dict(state["per"])

    def meta(self) -> dict[str, Any]:
        e = self.encoder
        return {
            "config": to_dict(self.config),
            "encoder": e.to_dict(),
            "n_actions": self.n_actions,
            "seeds": list(self.seeds),
            "env_id": self.env_id,
        }

    def save(self, path: str | os.PathLike, *, include_buffer: bool = False) -> Path:
        """Weights, target weights, optimiser, counters and config in one file (atomic write)."""
        return write_checkpoint(path, self.kind, self.meta(), self.state_dict(include_buffer=include_buffer))
