"""Observation encoders: how an environment's observation becomes the network's input vector.

Discrete states are one-hot by default. The course feeds the state number itself through a
normalisation layer (``scalar``); it is kept as an option so a user can see why one-hot learns better:
with one number in, neighbouring states share almost all of the network's features.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def __post_init__(self) -> None:
        # Discrete states map through a lookup table of features (one row per state).
        if self.kind == "onehot":
            table = torch.eye(self.n_states)
        elif self.kind == "scalar":
            states = torch.arange(self.n_states, dtype=torch.float32)
            table = ((states - states.mean()) / (states.std(unbiased=False) or 1.0)).unsqueeze(1)
        else:
            table = None
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_np_table", None if table is None else table.numpy())

    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        if self._table is not None:
            return self._table[torch.as_tensor(np.asarray(obs), dtype=torch.long)]
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32)

    def np(self, obs: np.ndarray) -> np.ndarray:
        """Same as calling the encoder, in numpy (cheaper per call on the CPU hot path)."""
        if self._np_table is not None:
            return self._np_table[np.asarray(obs, dtype=np.int64)]
        return np.asarray(obs, dtype=np.float32)

    def all_states(self) -> torch.Tensor:
        """Features of every discrete state ``[n_states, dim]`` (for ``q_table()``)."""
        if self.n_states is None:
            raise QlearnError("this environment has continuous observations: there is no finite Q-table")
        return self(np.arange(self.n_states))


def make_encoder(space: spaces.Space, kind: str = "onehot") -> Encoder:
    """Choose the encoder for an observation space (``kind`` applies to discrete spaces)."""
    if isinstance(space, spaces.Discrete):
        if kind not in ("onehot", "scalar"):
            raise QlearnError(f"unknown encoding {kind!r}: use onehot or scalar")
        n = int(space.n)
        return Encoder(kind, n if kind == "onehot" else 1, n)
    if isinstance(space, spaces.Box):
        return Encoder("box", int(np.prod(space.shape)))
    raise QlearnError(f"unsupported observation space {space}")
