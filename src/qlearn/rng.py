"""Per-agent random streams that do not depend on the group an agent trains in.

K agents trained in lockstep must each draw what they would draw alone: seed S's exploration,
minibatch indices and environment dynamics are a function of S, not of the other seeds beside it. A
stateful generator shared by the group cannot give that, and K generators stepped one by one cost K
kernel launches per draw on a GPU. A counter-based generator can: draw ``j`` of agent ``k`` in a stream
is a hash of (the agent's key, the draw's index), computed for all K agents in a handful of vector
operations, in numpy or in torch on any device, with the same bits either way.

The hash is SplitMix64's output function applied to ``key + index * golden_gamma`` (Steele, Lea and
Flood 2014), the construction behind Java's SplittableRandom: each agent's stream is a SplitMix64
sequence started at its own 64-bit key, which :class:`numpy.random.SeedSequence` derives from the
agent's seed and the stream's salt. A stream's only state is how many draws per agent it has handed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TWO53 = float(2**-53)


def _signed(x: int) -> int:
    """A 64-bit pattern as the int64 torch stores it."""
    return x - (1 << 64) if x >= 1 << 63 else x


_MASK = (1 << 64) - 1


def _mix_int(z: int) -> int:
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` on int64 is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix_torch(z: torch.Tensor) -> torch.Tensor:
    z = (z ^ _shr(z, 30)) * _signed(_M1)
    z = (z ^ _shr(z, 27)) * _signed(_M2)
    return z ^ _shr(z, 31)


class Stream:
    """Draws for K agents, agent ``k`` keyed by ``(seeds[k], salt)``: ``uniform(shape) -> [K, *shape]``.

    Every call hands each agent ``prod(shape)`` fresh draws; how many agents there are changes nothing in
    any one agent's values. ``device`` chooses where torch draws are made (numpy draws are on the CPU)."""

    def __init__(self, seeds: Sequence[int], salt: int, device: str | torch.device = "cpu") -> None:
        keys = [int(np.random.SeedSequence([int(s), int(salt)]).generate_state(1, np.uint64)[0]) for s in seeds]
        self.k = len(keys)
        self.count = 0  # draws handed to each agent so far
        self._keys_int = keys
        self._keys_np = np.array(keys, dtype=np.uint64)
        self._keys_t = torch.tensor([_signed(x) for x in keys], dtype=torch.int64, device=torch.device(device))
        self._idx: dict[Any, Any] = {}

    @property
    def device(self) -> torch.device:
        return self._keys_t.device

    def to(self, device: str | torch.device) -> Stream:
        self._keys_t = self._keys_t.to(torch.device(device))
        self._idx.clear()
        return self

    def _take(self, shape: tuple[int, ...]) -> tuple[int, int]:
        m = 1
        for d in shape:
            m *= int(d)
        start, self.count = self.count, self.count + m
        return start, m

    def bits_np(self, shape: tuple[int, ...]) -> np.ndarray:
        """64 random bits per draw, ``[K, *shape]`` uint64."""
        start, m = self._take(shape)
        return self._bits_np(start, m, shape)

    def _bits_np(self, start: int, m: int, shape: tuple[int, ...]) -> np.ndarray:
        j = self._idx.get(("np", m))
        if j is None:
            j = self._idx[("np", m)] = np.arange(m, dtype=np.uint64) * np.uint64(_GAMMA)
        with np.errstate(over="ignore"):
            base = self._keys_np + np.uint64((start * _GAMMA) % (1 << 64))
            z = base[:, None] + j[None, :]
            return _mix_np(z).reshape(self.k, *shape)

    def bits_torch(self, shape: tuple[int, ...]) -> torch.Tensor:
        """:meth:`bits_np` as int64 bit patterns on the stream's device (the same bits)."""
        start, m = self._take(shape)
        j = self._idx.get(("t", m))
        if j is None:
            j = self._idx[("t", m)] = torch.arange(m, dtype=torch.int64, device=self.device) * _signed(_GAMMA)
        z = (self._keys_t + _signed((start * _GAMMA) % (1 << 64))).unsqueeze(1) + j.unsqueeze(0)
        return _mix_torch(z).reshape(self.k, *shape)

    def uniform(self, *shape: int) -> np.ndarray:
        """Uniform floats in [0, 1), ``[K, *shape]`` float64, 53 random bits each."""
        start, m = self._take(shape)
        if self.k * m <= 8:  # a lone agent's step: Python ints are quicker than a dozen numpy calls
            out = [
                (_mix_int((key + (start + j) * _GAMMA) & _MASK) >> 11) * _TWO53
                for key in self._keys_int
                for j in range(m)
            ]
            return np.array(out, dtype=np.float64).reshape(self.k, *shape)
        return (self._bits_np(start, m, shape) >> np.uint64(11)).astype(np.float64) * _TWO53

    def uniform_torch(self, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """:meth:`uniform` in torch on the stream's device (bit for bit the same values in float64)."""
        u = _shr(self.bits_torch(shape), 11).to(torch.float64) * _TWO53
        return u if dtype == torch.float64 else u.to(dtype)

    def integers(self, high: int, *shape: int) -> np.ndarray:
        """Integers in ``[0, high)``, ``[K, *shape]`` int64."""
        return (self.uniform(*shape) * float(high)).astype(np.int64)  # u <= 1 - 2**-53, so u * high < high

    def integers_torch(self, high: int, *shape: int) -> torch.Tensor:
        """:meth:`integers` in torch on the stream's device (the same values)."""
        u = self.uniform_torch(*shape)
        return (u * float(high)).to(torch.int64).clamp_(max=int(high) - 1)

    def reserve(self, *shape: int) -> int:
        """Hand out ``prod(shape)`` draws per agent without computing them; returns where they start, for
        :meth:`uniform_at` to compute the few that are needed (e.g. resets of the envs that ended)."""
        return self._take(shape)[0]

    def uniform_at(self, start: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Draws ``start + cols`` of agents ``rows`` (arrays of one shape), as :meth:`uniform` gives them."""
        with np.errstate(over="ignore"):
            z = (
                self._keys_np[np.asarray(rows)]
                + np.uint64((start * _GAMMA) % (1 << 64))
                + np.asarray(cols).astype(np.uint64) * np.uint64(_GAMMA)
            )
            return (_mix_np(z) >> np.uint64(11)).astype(np.float64) * _TWO53

    def uniform_at_torch(self, start: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """:meth:`uniform_at` in torch on the stream's device."""
        z = self._keys_t[rows] + _signed((start * _GAMMA) % (1 << 64)) + cols.to(torch.int64) * _signed(_GAMMA)
        return _shr(_mix_torch(z), 11).to(torch.float64) * _TWO53

    def state_dict(self) -> dict[str, int]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])

    def select(self, index: int) -> Stream:
        """Agent ``index``'s stream alone, at the same position."""
        one = Stream.__new__(Stream)
        one.k, one.count, one._idx = 1, self.count, {}
        one._keys_int = self._keys_int[index : index + 1]
        one._keys_np = self._keys_np[index : index + 1].copy()
        one._keys_t = self._keys_t[index : index + 1].clone()
        return one
