"""Replay memory for K agents, preallocated.

Arrays have shape ``[K, capacity, ...]`` and are filled in lockstep: every call to :meth:`store` adds
``n`` transitions for each agent at the same ring positions, overwriting the oldest once full. Each agent
samples its own indices, so agents never share experience. ``terminated`` is kept apart from
``truncated``: a time-limit cut is not a terminal state, and its target still bootstraps.
"""

from __future__ import annotations

from typing import NamedTuple

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

    def __len__(self) -> int:
        return self.size

    def store(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
              terminated: torch.Tensor, truncated: torch.Tensor | None = None) -> None:
        """Add ``n`` transitions per agent; each argument is ``[K, n, ...]``."""
        n = actions.shape[1]
        if n > self.capacity:
            raise ValueError(f"cannot store {n} transitions at once in a buffer of capacity {self.capacity}")
        idx = (self.pos + torch.arange(n, device=self.device)) % self.capacity if n > 1 or \
            self.pos + n > self.capacity else slice(self.pos, self.pos + n)
        self.obs[:, idx] = obs.to(self.device)
        self.next_obs[:, idx] = next_obs.to(self.device)
        self.actions[:, idx] = actions.to(self.device, torch.long)
        self.rewards[:, idx] = rewards.to(self.device, torch.float32)
        self.terminated[:, idx] = terminated.to(self.device, torch.float32)
        self.truncated[:, idx] = (torch.zeros_like(self.rewards[:, idx]) if truncated is None
                                  else truncated.to(self.device, torch.float32))
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
