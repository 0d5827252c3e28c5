"""Proportional prioritized experience replay (Schaul et al. 2016) for K agents.

Transition i is drawn with probability ``P(i) = p_i^alpha / sum_j p_j^alpha``, where ``p_i`` is its last
absolute TD error (plus a small epsilon); new transitions get the largest priority seen so far, so each
is replayed at least once. The bias this sampling introduces is corrected with importance-sampling
weights ``w_i = (size * P(i))^-beta / max_j w_j``; ``beta`` is annealed to 1 by the agent over training.
Storage and n-step windows are the uniform buffer's; only the choice of indices differs.
"""

from __future__ import annotations

import numpy as np
import torch

from qlearn.buffers.replay import Batch, ReplayBuffer
from qlearn.buffers.sumtree import SumTree
from qlearn.rng import Stream


class PrioritizedReplayBuffer:
    """Same interface as :class:`ReplayBuffer`, with ``sample(..., beta=)`` and ``update_priorities``."""

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        *,
        k: int = 1,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        alpha: float = 0.6,
        eps: float = 1e-6,
        seed: int = 0,
        seeds: list[int] | None = None,
        device: str | torch.device = "cpu",
        storage: ReplayBuffer | None = None,
    ) -> None:
        # ``storage``: the memory the transitions live in (a FrameReplayBuffer for images), else a uniform one.
        if storage is None:
            storage = ReplayBuffer(capacity, obs_dim, k=k, n_envs=n_envs, n_step=n_step, gamma=gamma, device=device)
        self.storage = storage
        self.k, self.capacity, self.device = self.storage.k, self.storage.capacity, self.storage.device
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(self.capacity, self.k)
        self.max_priority = np.ones(self.k)
        # Each agent's draws from its own stream (``seeds``, one per agent), else all from ``seed``'s.
        self.rng = Stream(seeds if seeds is not None else [seed] * self.k, salt=3)
        self.beta = 0.4

    def __len__(self) -> int:
        return len(self.storage)

    @property
    def n_envs(self) -> int:
        return self.storage.n_envs

    @property
    def size(self) -> int:
        return self.storage.size

    def store(self, *transition, **extra) -> np.ndarray:
        positions = self.storage.store(*transition, **extra)
        prio = np.repeat(self.max_priority[:, None] ** self.alpha, len(positions), axis=1)
        self.tree.update(np.broadcast_to(positions, (self.k, len(positions))), prio)
        return positions

    def sample(self, batch_size: int, generator: Stream | torch.Generator | None = None) -> Batch:
        """Draw proportionally to priority; weights use the current ``self.beta``. The draws come from the
        buffer's own per-agent streams (``self.rng``): ``generator`` is taken for the uniform interface."""
        if self.storage.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.tree.sample(batch_size, self.rng)
        probs = self.tree.tree[self.tree._rows, idx + self.tree.leaf0] / self.tree.total[:, None]
        w = (self.storage.size * np.maximum(probs, 1e-12)) ** (-self.beta)
        w = w / w.max(axis=1, keepdims=True)
        return self.storage.gather(
            torch.as_tensor(idx, device=self.device), torch.as_tensor(w, dtype=torch.float32, device=self.device)
        )

    def update_priorities(self, indices: torch.Tensor, td_errors: torch.Tensor) -> None:
        """Priorities of the sampled transitions become ``(|td| + eps) ** alpha``."""
        p = np.abs(td_errors.detach().cpu().numpy()) + self.eps
        self.max_priority = np.maximum(self.max_priority, p.max(axis=1))
        self.tree.update(indices.cpu().numpy(), p**self.alpha)

    def state_dict(self) -> dict:
        return {
            **self.storage.state_dict(),
            "tree": torch.from_numpy(self.tree.tree.copy()),
            "max_priority": torch.from_numpy(self.max_priority.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.storage.load_state_dict(state)
        self.tree.tree[:] = state["tree"].numpy()
        self.max_priority[:] = state["max_priority"].numpy()
