"""Uniform replay memory for K agents, preallocated, with n-step returns computed at sample time.

Arrays have shape ``[K, capacity, ...]`` and are filled in lockstep: every :meth:`store` adds ``n_envs``
transitions per agent at the same ring positions, overwriting the oldest once full. Each agent samples
its own indices, so agents never share experience. ``terminated`` is kept apart from ``truncated``: a
time-limit cut is not a terminal state, and its target still bootstraps.

n-step returns (``n_step > 1``) follow SB3's design: the buffer hands back, per sample, the discounted
sum of up to n rewards, the observation to bootstrap from, whether that last step terminated, and the
discount ``gamma**m`` for the m steps actually used. The window stops early at the end of an episode
(terminated: no bootstrap; truncated: bootstrap from the last observation) and at the newest stored
transition. The agent's TD target just uses ``rewards + discounts * (1 - terminated) * V(next_obs)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from qlearn.buffers.memory import check_memory
from qlearn.rng import Stream

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")

# A minibatch field: a torch tensor (``sample``, ``gather``) or a numpy array (``sample_numpy``, whose
# one-step ``discounts`` is a numpy float32 scalar), as the gradient engine that reads it wants.
Field = Any


class Batch(NamedTuple):
    """A sampled minibatch, each field ``[K, B, ...]``. ``rewards`` is the (n-step) return, ``discounts``
    the factor in front of the bootstrap value, ``weights`` the importance-sampling weights (ones for
    uniform sampling), ``indices`` the ring positions (for priority updates)."""

    obs: Field
    actions: Field
    rewards: Field
    next_obs: Field
    terminated: Field
    truncated: Field
    discounts: Field
    weights: Field
    indices: Field


class ReplayBuffer:
    """Bounded ring buffer of transitions for ``k`` agents with ``obs_dim`` features each.

    ``n_envs`` transitions are stored per call (one per environment); ``capacity`` is rounded up to a
    multiple of it so that each environment's steps stay ``n_envs`` slots apart.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        *,
        k: int = 1,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        device: str | torch.device = "cpu",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.n_envs = int(n_envs)
        self.capacity = -(-int(capacity) // self.n_envs) * self.n_envs
        self.k, self.n_step, self.gamma = int(k), int(n_step), float(gamma)
        self.device = torch.device(device)
        shape = (self.k, self.capacity)
        check_memory(self._needed(capacity, obs_dim, k, n_envs), self.device, "buffer_size", capacity)
        self.obs = torch.zeros(*shape, obs_dim, device=self.device)
        self.next_obs = torch.zeros(*shape, obs_dim, device=self.device)
        self.actions = torch.zeros(shape, dtype=torch.long, device=self.device)
        self.rewards = torch.zeros(shape, device=self.device)
        self.terminated = torch.zeros(shape, device=self.device)
        self.truncated = torch.zeros(shape, device=self.device)
        self.pos = 0
        self.size = 0
        self._rows = torch.arange(self.k, device=self.device).unsqueeze(1)
        self._np_rows = np.arange(self.k)[:, None]
        # On the CPU, numpy views of the same memory make per-step writes several times cheaper.
        self._np = {name: getattr(self, name).numpy() for name in FIELDS} if self.device.type == "cpu" else None
        self._powers = self.gamma ** torch.arange(self.n_step + 1, dtype=torch.float32, device=self.device)

    @staticmethod
    def bytes_needed(capacity: int, obs_dim: int, *, k: int = 1, n_envs: int = 1) -> int:
        """Bytes this memory allocates: observations and next observations as float32, plus the
        action (int64), reward, terminated and truncated (float32) of each transition."""
        slots = k * -(-int(capacity) // int(n_envs)) * int(n_envs)
        return slots * (2 * 4 * int(obs_dim) + 8 + 3 * 4)

    def _needed(self, capacity: int, obs_dim: int, k: int, n_envs: int) -> int:
        """What this memory will allocate (checked against the machine before anything is)."""
        return ReplayBuffer.bytes_needed(capacity, obs_dim, k=k, n_envs=n_envs)

    def __len__(self) -> int:
        return self.size

    def store(self, obs, actions, rewards, next_obs, terminated, truncated=None) -> np.ndarray:
        """Add one transition per env and agent; each argument is ``[K, n_envs, ...]`` (numpy or torch).

        Returns the ring positions written (for priority bookkeeping)."""
        n = np.shape(actions)[1]
        if n != self.n_envs:
            raise ValueError(f"this buffer stores {self.n_envs} transitions per call (one per env), got {n}")
        positions = np.arange(self.pos, self.pos + n)
        idx: slice | np.ndarray = slice(self.pos, self.pos + n)
        if truncated is None:
            truncated = np.zeros(np.shape(actions), dtype=np.float32)
        values = (obs, actions, rewards, next_obs, terminated, truncated)
        if self._np is not None:
            for name, val in zip(FIELDS, values):
                if isinstance(val, torch.Tensor):
                    val = val.detach().cpu().numpy()
                self._np[name][:, idx] = val
        else:
            for name, val in zip(FIELDS, values):
                dst = getattr(self, name)
                dst[:, idx] = torch.as_tensor(val).to(self.device, dst.dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return positions

    def sample(self, batch_size: int, generator: Stream | torch.Generator | None = None) -> Batch:
        """``batch_size`` transitions per agent, drawn uniformly with replacement from what is stored.

        With a :class:`~qlearn.rng.Stream` (what agents pass) each agent's indices come from its own
        stream, the same ones :meth:`sample_numpy` draws from it."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if isinstance(generator, Stream):
            idx = self._indices(batch_size, generator)
        else:
            idx = torch.randint(0, self.size, (self.k, batch_size), device=self.device, generator=generator)
        return self.gather(idx, torch.ones(self.k, batch_size, device=self.device))

    def _indices(self, batch_size: int, stream: Stream) -> torch.Tensor:
        if self.device.type == "cpu":
            return torch.from_numpy(stream.integers(self.size, batch_size))
        return stream.integers_torch(self.size, batch_size).to(self.device)

    def gather(self, idx: torch.Tensor, weights: torch.Tensor) -> Batch:
        """The batch at ring positions ``idx[K, B]`` (n-step windows looked up from there)."""
        r = self._rows
        if self.n_step == 1:
            return Batch(
                self._obs_at(idx),
                self.actions[r, idx],
                self.rewards[r, idx],
                self._next_obs_at(idx),
                self.terminated[r, idx],
                self.truncated[r, idx],
                self._powers[1].expand(idx.shape),
                weights,
                idx,
            )
        steps = torch.arange(self.n_step, device=self.device)
        window = (idx.unsqueeze(-1) + self.n_envs * steps) % self.capacity  # [K, B, n]
        newer = (self.pos - 1 - idx) % self.capacity  # slots written after idx
        valid = newer.unsqueeze(-1) >= self.n_envs * steps
        rr = r.unsqueeze(-1)
        ended = torch.maximum(self.terminated[rr, window], self.truncated[rr, window])
        ended_before = torch.cumsum(ended, -1) - ended
        used = valid & (ended_before == 0)  # step i is in the return
        m = used.sum(-1)  # >= 1
        rewards = (self.rewards[rr, window] * self._powers[: self.n_step] * used).sum(-1)
        last = window.gather(-1, (m - 1).unsqueeze(-1)).squeeze(-1)
        return Batch(
            self._obs_at(idx),
            self.actions[r, idx],
            rewards,
            self._next_obs_at(last),
            self.terminated[r, last],
            self.truncated[r, last],
            self._powers[m],
            weights,
            idx,
        )

    def _obs_at(self, idx: torch.Tensor) -> torch.Tensor:
        """Observations of the transitions at ring positions ``idx[K, B]``."""
        return self.obs[self._rows, idx]

    def _next_obs_at(self, idx: torch.Tensor) -> torch.Tensor:
        """Next observations of the transitions at ring positions ``idx[K, B]``."""
        return self.next_obs[self._rows, idx]

    def sample_numpy(self, batch_size: int, rng: Stream | np.random.Generator) -> Batch:
        """As :meth:`sample`, as numpy arrays read from the CPU memory's views (the numpy training step's
        input); from a :class:`~qlearn.rng.Stream`, the same indices :meth:`sample` would draw."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self._np is None:
            raise ValueError("numpy sampling needs replay memory on the CPU")
        if isinstance(rng, Stream):
            idx = rng.integers(self.size, batch_size)
        else:
            idx = rng.integers(0, self.size, (self.k, batch_size))
        return self.gather_numpy(idx)

    def gather_numpy(self, idx: np.ndarray) -> Batch:
        """:meth:`gather` in numpy (same n-step windows), weights all ones."""
        a = self._np
        if a is None:
            raise ValueError("numpy sampling needs replay memory on the CPU")
        r = self._np_rows
        ones = np.ones(idx.shape, dtype=np.float32)
        if self.n_step == 1:
            return Batch(
                self._obs_np(idx),
                a["actions"][r, idx],
                a["rewards"][r, idx],
                self._next_obs_np(idx),
                a["terminated"][r, idx],
                a["truncated"][r, idx],
                np.float32(self.gamma),
                ones,
                idx,
            )
        powers = self._powers.numpy()
        steps = np.arange(self.n_step)
        window = (idx[..., None] + self.n_envs * steps) % self.capacity  # [K, B, n]
        newer = (self.pos - 1 - idx) % self.capacity  # slots written after idx
        valid = newer[..., None] >= self.n_envs * steps
        rr = r[..., None]
        ended = np.maximum(a["terminated"][rr, window], a["truncated"][rr, window])
        ended_before = np.cumsum(ended, -1) - ended
        used = valid & (ended_before == 0)  # step i is in the return
        m = used.sum(-1)  # >= 1
        rewards = (a["rewards"][rr, window] * powers[: self.n_step] * used).sum(-1, dtype=np.float32)
        last = np.take_along_axis(window, (m - 1)[..., None], -1)[..., 0]
        return Batch(
            self._obs_np(idx),
            a["actions"][r, idx],
            rewards,
            self._next_obs_np(last),
            a["terminated"][r, last],
            a["truncated"][r, last],
            powers[m],
            ones,
            idx,
        )

    def _rows_np(self, name: str, idx: np.ndarray) -> np.ndarray:
        arr = self._np[name]  # type: ignore[index]
        flat = (idx + self._np_rows * self.capacity).ravel()  # one take() along rows is ~2x faster than [r, idx]
        return np.take(arr.reshape(-1, arr.shape[-1]), flat, axis=0).reshape(*idx.shape, arr.shape[-1])

    def _obs_np(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`_obs_at` on the CPU memory's numpy views."""
        return self._rows_np("obs", idx)

    def _next_obs_np(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`_next_obs_at` on the CPU memory's numpy views."""
        return self._rows_np("next_obs", idx)

    def update_priorities(self, indices: torch.Tensor, td_errors: torch.Tensor) -> None:
        """Uniform replay keeps no priorities (same interface as the prioritized buffer)."""

    def state_dict(self) -> dict:
        """The stored transitions (only the filled slots until the ring is full: a checkpoint at 10k of 50k
        slots writes a fifth of the memory), the write position and the count."""
        filled = self.size if self.size < self.capacity else self.capacity
        state = {name: getattr(self, name)[:, :filled].clone() for name in FIELDS}
        return {**state, "pos": self.pos, "size": self.size, "n_envs": self.n_envs}

    def load_state_dict(self, state: dict) -> None:
        """Put back what :meth:`state_dict` gave (a whole memory or its filled slots)."""
        for key in FIELDS:
            saved = state[key]
            getattr(self, key)[:, : saved.shape[1]].copy_(saved)
        self.pos, self.size = int(state["pos"]), int(state["size"])
