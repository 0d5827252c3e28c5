"""Observation encoders: how an environment's observation becomes the network's input vector.

Discrete states are one-hot by default (a joint index of discrete parts, e.g. Blackjack's, as each part
one-hot side by side: ``factored``). The course feeds the state number itself through a
normalisation layer (``scalar``); it is kept as an option so a user can see why one-hot learns better:
with one number in, neighbouring states share almost all of the network's features.

Images (``image``: a uint8 or boolean Box of shape ``(C, H, W)``) are not turned into features here: they
stay uint8 through replay memory and are scaled by ``scale`` inside the convolutional network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from gymnasium import spaces

from qlearn.errors import QlearnError


@dataclass(frozen=True)
class Encoder:
    """Maps raw observations of shape ``[..., *obs_shape]`` to float features ``[..., dim]``."""

    kind: str
    dim: int
    n_states: int | None = None
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    """Box bounds: dimensions with finite bounds are scaled to [-1, 1] (MountainCar's velocity lives in
    ±0.07, its position in [-1.2, 0.6]: unscaled, the network barely sees the velocity)."""
    shape: tuple[int, ...] | None = None
    """Images: the observation's shape ``(C, H, W)``, channels first."""
    scale: float = 1.0
    """Images: the factor the network multiplies pixels by (1/255 for Atari's 0-255 frames)."""
    stack: int = 1
    """Images: how many of the C channels are stacked frames (4 for Atari; 1: the observation is one frame)."""
    radices: tuple[int, ...] | None = None
    """``factored``: the parts of a joint discrete state (:class:`~qlearn.envs.spaces.JointDiscrete`), each
    one-hot, side by side."""
    # Derived in __post_init__ (not arguments, not compared): the feature table, and the box scaling.
    _table: torch.Tensor | None = field(init=False, repr=False, compare=False, default=None)
    _np_table: np.ndarray | None = field(init=False, repr=False, compare=False, default=None)
    _scale: np.ndarray | None = field(init=False, repr=False, compare=False, default=None)
    _shift: np.ndarray | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Discrete states map through a lookup table of features (one row per state).
        n_states = cast(int, self.n_states)  # a discrete kind without n_states: torch's TypeError, as ever
        if self.kind == "onehot":
            table = torch.eye(n_states)
        elif self.kind == "factored":
            digits = np.unravel_index(np.arange(n_states), cast(tuple, self.radices))
            table = torch.cat([torch.eye(r)[torch.as_tensor(d)] for r, d in zip(cast(tuple, self.radices), digits)], 1)
        elif self.kind == "scalar":
            states = torch.arange(n_states, dtype=torch.float32)
            table = ((states - states.mean()) / (states.std(unbiased=False) or 1.0)).unsqueeze(1)
        else:
            table = None
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_np_table", None if table is None else table.numpy())
        scale = shift = None
        if self.kind == "box" and self.low is not None and self.high is not None:
            low, high = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
            finite = np.isfinite(low) & np.isfinite(high) & (high > low)
            low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)  # unbounded dims: unchanged
            scale = (2.0 / (high - low)).astype(np.float32)
            shift = ((high + low) / 2).astype(np.float32)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "_shift", shift)

    @property
    def table_np(self) -> np.ndarray | None:
        """Features of every discrete state ``[n_states, dim]`` as a numpy array (None for a Box)."""
        return self._np_table

    @property
    def image(self) -> bool:
        """Whether observations are images (kept uint8, read by a convolutional network)."""
        return self.kind == "image"

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The shape of one observation as the network takes it: ``(C, H, W)`` for images, else ``(dim,)``."""
        return tuple(self.shape) if self.image and self.shape else (self.dim,)

    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.np(np.asarray(obs))))

    def tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """Features of observations already in a tensor, on its device (GPU rollouts never leave the GPU)."""
        if self.image:
            return obs if obs.dtype == torch.uint8 else obs.to(torch.uint8)
        table, shift, scale = self._on(obs.device)
        if table is not None:
            return table[obs.long()]
        x = obs.to(torch.float32)
        return x if scale is None else (x - shift) * scale

    def _on(self, device: torch.device) -> tuple:
        """The feature table and box scaling as tensors on ``device``, copied there once (not per step)."""
        cache = self.__dict__.setdefault("_device_copies", {})
        if device not in cache:
            as_t = lambda a: None if a is None else torch.as_tensor(a, device=device)  # noqa: E731
            cache[device] = (as_t(self._table), as_t(self._shift), as_t(self._scale))
        return cache[device]

    def np(self, obs: np.ndarray) -> np.ndarray:
        """Features as a float32 numpy array (cheap per call on the CPU hot path)."""
        if self._np_table is not None:
            return self._np_table[np.asarray(obs, dtype=np.int64)]
        if self.image:
            return np.asarray(obs, dtype=np.uint8)
        x = np.asarray(obs, dtype=np.float32)
        shift, scale = self._shift, self._scale
        if scale is not None and shift is not None:  # (set together)
            x = (x - shift) * scale
        return x

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "n_states": self.n_states,
            "low": None if self.low is None else list(self.low),
            "high": None if self.high is None else list(self.high),
            **(
                {"shape": list(self.shape), "scale": self.scale, "stack": self.stack}
                if self.image and self.shape
                else {}
            ),
            **({"radices": list(self.radices)} if self.radices is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Encoder:
        low, high = d.get("low"), d.get("high")
        return cls(
            d["kind"],
            d["dim"],
            d.get("n_states"),
            None if low is None else tuple(low),
            None if high is None else tuple(high),
            None if d.get("shape") is None else tuple(d["shape"]),
            float(d.get("scale", 1.0)),
            int(d.get("stack", 1)),
            None if d.get("radices") is None else tuple(int(r) for r in d["radices"]),
        )

    def all_states(self) -> torch.Tensor:
        """Features of every discrete state ``[n_states, dim]`` (for ``q_table()``)."""
        if self.n_states is None:
            what = "image" if self.image else "continuous"
            raise QlearnError(f"this environment has {what} observations: there is no finite Q-table")
        return self(np.arange(self.n_states))


def is_image(space: spaces.Space) -> bool:
    """A Box of uint8 or booleans with three dimensions (``(C, H, W)``): read by a convolutional network."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype in (np.uint8, np.bool_)


def make_encoder(space: spaces.Space, kind: str = "onehot", scale_box: bool = True, stack: int = 1) -> Encoder:
    """Choose the encoder for an observation space (``kind`` applies to discrete spaces; ``scale_box``
    maps finite Box bounds to [-1, 1]; ``stack``: frames stacked in an image's channels)."""
    if is_image(space):
        box = cast(spaces.Box, space)
        high = float(np.max(box.high)) if np.all(np.isfinite(box.high)) else 255.0
        return Encoder(
            "image", int(np.prod(box.shape)), shape=tuple(box.shape), scale=1.0 / max(high, 1.0), stack=stack
        )
    if isinstance(space, spaces.Discrete):
        if kind not in ("onehot", "scalar"):
            raise QlearnError(f"unknown encoding {kind!r}: use onehot or scalar")
        n = int(space.n)
        radices = getattr(space, "radices", None)  # a joint index of discrete parts: one-hot per part
        if kind == "onehot" and radices is not None:
            return Encoder("factored", int(sum(radices)), n, radices=tuple(radices))
        return Encoder(kind, n if kind == "onehot" else 1, n)
    if isinstance(space, spaces.Box):
        if not scale_box:
            return Encoder("box", int(np.prod(space.shape)))
        return Encoder(
            "box",
            int(np.prod(space.shape)),
            None,
            tuple(map(float, space.low.reshape(-1))),
            tuple(map(float, space.high.reshape(-1))),
        )
    raise QlearnError(f"unsupported observation space {space}")
