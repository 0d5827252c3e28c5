"""A sum tree per agent, vectorised over agents and batch: O(log capacity) updates and sampling.

Leaves hold priorities; each inner node holds the sum of its children, so the root is the total and a
uniform draw in ``[0, total)`` descends to a leaf with probability proportional to its priority.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qlearn.rng import Stream


class SumTree:
    """``k`` independent sum trees over ``capacity`` leaves (node 1 is the root; leaves start at ``size``)."""

    def __init__(self, capacity: int, k: int = 1) -> None:
        self.capacity, self.k = int(capacity), int(k)
        self.leaf0 = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaf0.bit_length() - 1
        self.tree = np.zeros((self.k, 2 * self.leaf0))
        self._rows = np.arange(self.k)[:, None]

    @property
    def total(self) -> np.ndarray:
        return self.tree[:, 1]

    def leaves(self) -> np.ndarray:
        return self.tree[:, self.leaf0 : self.leaf0 + self.capacity]

    def update(self, idx: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaves ``idx[K, M]`` to ``priorities[K, M]`` and refresh their ancestors."""
        idx = np.asarray(idx).reshape(self.k, -1)
        node = idx + self.leaf0
        self.tree[self._rows, node] = np.asarray(priorities, dtype=float).reshape(self.k, -1)
        for _ in range(self.depth):
            node = node // 2
            self.tree[self._rows, node] = self.tree[self._rows, 2 * node] + self.tree[self._rows, 2 * node + 1]

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index for each cumulative value ``values[K, B]`` in ``[0, total)``."""
        values = np.array(values, dtype=float)
        node = np.ones(values.shape, dtype=np.int64)
        rows = np.broadcast_to(self._rows, values.shape)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.tree[rows, left]
            go_right = values >= left_sum
            values = np.where(go_right, values - left_sum, values)
            node = np.where(go_right, left + 1, left)
        return np.minimum(node - self.leaf0, self.capacity - 1)

    def sample(self, batch_size: int, rng: Any) -> np.ndarray:
        """Stratified draw: one leaf per equal slice of the total, per agent ``[K, B]``. ``rng``: a numpy
        Generator, or a :class:`~qlearn.rng.Stream` (one stream per agent)."""
        total = self.total[:, None]
        draws = rng.uniform(batch_size) if isinstance(rng, Stream) else rng.random((self.k, batch_size))
        u = (np.arange(batch_size) + draws) / batch_size * total
        return self.find(np.minimum(u, np.nextafter(total, 0)))
