"""Uniform bins over a continuous observation space, so tabular Q-learning runs on MountainCar.

Each dimension's range ``[low, high]`` is cut into ``bins`` equal cells; values outside are clipped to
the edge cells. A state's index is the row-major index of its cell, so the Q-table has
``prod(bins)`` rows and ``q_table().reshape(*bins, n_actions)`` lays it over the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from qlearn.errors import QlearnError


@dataclass(frozen=True)
class Discretizer:
    """``obs[..., D] -> state index[...]`` over ``bins[d]`` uniform cells per dimension."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    bins: tuple[int, ...]

    @property
    def n_states(self) -> int:
        return int(np.prod(self.bins))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        low, high, bins = np.asarray(self.low), np.asarray(self.high), np.asarray(self.bins)
        cell = np.floor((x - low) / (high - low) * bins).astype(np.int64)
        cell = np.clip(cell, 0, bins - 1)
        return np.ravel_multi_index(tuple(np.moveaxis(cell, -1, 0)), self.bins)

    def centers(self) -> np.ndarray:
        """Observation at the centre of every cell, in state-index order ``[n_states, D]``."""
        axes = [lo + (np.arange(b) + 0.5) * (hi - lo) / b for lo, hi, b in zip(self.low, self.high, self.bins)]
        grid = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.reshape(-1) for g in grid], axis=-1)

    @classmethod
    def for_space(
        cls, space: spaces.Space, bins: Sequence[int], low: Sequence[float] = (), high: Sequence[float] = ()
    ) -> Discretizer:
        """Bins over a Box space; ``low``/``high`` override its bounds (needed where they are infinite)."""
        if not isinstance(space, spaces.Box):
            raise QlearnError(
                f"bins are for continuous (Box) observations; this space is {type(space).__name__}: drop --set bins"
            )
        dims = int(np.prod(space.shape))
        bins = tuple(int(b) for b in bins)
        if len(bins) == 1:
            bins = bins * dims
        if len(bins) != dims or min(bins) < 1:
            raise QlearnError(
                f"bins={bins}: give one positive count per observation dimension ({dims}), or one for all"
            )
        lo = np.asarray(low if len(low) else space.low.reshape(-1), dtype=float)
        hi = np.asarray(high if len(high) else space.high.reshape(-1), dtype=float)
        if lo.shape != (dims,) or hi.shape != (dims,):
            raise QlearnError(f"bin_low/bin_high need {dims} values each")
        bad = [i for i in range(dims) if not (np.isfinite(lo[i]) and np.isfinite(hi[i]) and hi[i] > lo[i])]
        if bad:
            raise QlearnError(
                f"observation dimension(s) {bad} have no finite range to bin; give them with "
                f"--set bin_low=... --set bin_high=... ({dims} comma-separated values each)"
            )
        return cls(tuple(map(float, lo)), tuple(map(float, hi)), bins)
