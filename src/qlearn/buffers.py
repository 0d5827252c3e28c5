"""Replay memory for K agents, preallocated.

Arrays have shape ``[K, capacity, ...]`` and are filled in lockstep: every call to :meth:`store` adds
``n`` transitions for each agent at the same ring positions, overwriting the oldest once full. Each agent
samples its own indices, so agents never share experience. ``terminated`` is kept apart from
``truncated``: a time-limit cut is not a terminal state, and its target still bootstraps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A sampled minibatch, each field ``[K, B, ...]``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor


class ReplayBuffer:
    """Bounded ring buffer of transitions for ``k`` agents with ``obs_dim`` features each."""

    def __init__(self, capacity: int, obs_dim: int, *, k: int = 1, device: str | torch.device = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.k, self.device = int(capacity), int(k), torch.device(device)
        shape = (self.k, self.capacity)
        self.obs = torch.zeros(*shape, obs_dim, device=self.device)
        self.next_obs = torch.zeros(*shape, obs_dim, device=self.device)
        self.actions = torch.zeros(shape, dtype=torch.long, device=self.device)
        self.rewards = torch.zeros(shape, device=self.device)
        self.terminated = torch.zeros(shape, device=self.device)
        self.truncated = torch.zeros(shape, device=self.device)
        self.pos = 0
        self.size = 0
        self._rows = torch.arange(self.k, device=self.device).unsqueeze(1)
        # On the CPU, numpy views of the same memory make per-step writes several times cheaper.
        self._np = ({name: getattr(self, name).numpy() for name in self._FIELDS}
                    if self.device.type == "cpu" else None)

    _FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")

    def __len__(self) -> int:
        return self.size

    def store(self, obs, actions, rewards, next_obs, terminated, truncated=None) -> None:
        """Add ``n`` transitions per agent; each argument is ``[K, n, ...]`` (numpy arrays or tensors)."""
        n = np.shape(actions)[1]
        if n > self.capacity:
            raise ValueError(f"cannot store {n} transitions at once in a buffer of capacity {self.capacity}")
        if self.pos + n <= self.capacity:
            idx: slice | np.ndarray = slice(self.pos, self.pos + n)
        else:
            idx = (self.pos + np.arange(n)) % self.capacity
        if truncated is None:
            truncated = np.zeros(np.shape(actions), dtype=np.float32)
        values = (obs, actions, rewards, next_obs, terminated, truncated)
        if self._np is not None:
            for name, val in zip(self._FIELDS, values):
                if isinstance(val, torch.Tensor):
                    val = val.detach().cpu().numpy()
                self._np[name][:, idx] = val
        else:
            t_idx = idx if isinstance(idx, slice) else torch.as_tensor(idx, device=self.device)
            for name, val in zip(self._FIELDS, values):
                dst = getattr(self, name)
                dst[:, t_idx] = torch.as_tensor(val).to(self.device, dst.dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` transitions per agent, drawn uniformly with replacement from what is stored."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (self.k, batch_size), device=self.device, generator=generator)
        r = self._rows
        return Batch(self.obs[r, idx], self.actions[r, idx], self.rewards[r, idx], self.next_obs[r, idx],
                     self.terminated[r, idx], self.truncated[r, idx])

    def state_dict(self) -> dict:
        return {"obs": self.obs, "next_obs": self.next_obs, "actions": self.actions, "rewards": self.rewards,
                "terminated": self.terminated, "truncated": self.truncated, "pos": self.pos, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        for key in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
            getattr(self, key).copy_(state[key])
        self.pos, self.size = int(state["pos"]), int(state["size"])
