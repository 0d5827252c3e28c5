"""What a DQN's replay memory keeps of its observations, and which memory it gets.

Discrete observations with a feature table (one-hot) are stored as their state number and turned into
features when a minibatch is drawn: 32 agents x 100k one-hot FrozenLake transitions took 410 MB of
observations as 16 floats, twice, and take 26 MB as one number. Images stay uint8, each frame stored once
(:class:`~qlearn.buffers.FrameReplayBuffer`). Box observations are stored as their features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qlearn.buffers import FrameReplayBuffer, PrioritizedReplayBuffer, ReplayBuffer
from qlearn.config import DQNConfig
from qlearn.envs.encoding import Encoder


class DQNMemory:
    """The replay-memory half of a DQN agent (what it uses of the agent is declared here)."""

    config: DQNConfig
    encoder: Encoder
    k: int
    seeds: tuple[int, ...]
    device: torch.device

    def _np_features(self, obs: np.ndarray) -> np.ndarray:
        x = self.encoder.np(obs)
        return x.reshape(x.shape[0], x.shape[1], *self.encoder.feature_shape)

    _buffer: ReplayBuffer | PrioritizedReplayBuffer | None
    _buffer_envs: int

    @property
    def buffer(self) -> ReplayBuffer | PrioritizedReplayBuffer:
        """The replay memory, allocated on first use for ``_buffer_envs`` envs per step."""
        if self._buffer is None:
            self._buffer = self._make_buffer(n_envs=self._buffer_envs)
        return self._buffer

    @buffer.setter
    def buffer(self, value: ReplayBuffer | PrioritizedReplayBuffer | None) -> None:
        self._buffer = value
        if value is not None:
            self._buffer_envs = value.n_envs

    @buffer.deleter
    def buffer(self) -> None:
        self._buffer = None

    def replay_bytes(self, n_envs: int) -> int:
        """Bytes the replay memory of these K agents takes for ``n_envs`` envs per step (before allocating)."""
        cfg, enc = self.config, self.encoder
        if enc.image:
            return FrameReplayBuffer.bytes_needed(
                cfg.buffer_size, enc.feature_shape, stack=enc.stack, k=self.k, n_envs=n_envs
            )
        return ReplayBuffer.bytes_needed(cfg.buffer_size, self._stored_dim, k=self.k, n_envs=n_envs)

    def _make_buffer(self, n_envs: int) -> ReplayBuffer | PrioritizedReplayBuffer:
        cfg, enc = self.config, self.encoder
        common: dict[str, Any] = dict(k=self.k, n_envs=n_envs, n_step=cfg.n_step, gamma=cfg.gamma, device=self.device)
        storage = None
        if enc.image:  # uint8 frames, each stored once (qlearn.buffers.frames)
            storage = FrameReplayBuffer(cfg.buffer_size, enc.feature_shape, stack=enc.stack, **common)
            if not cfg.prioritized:
                return storage
        if cfg.prioritized:
            return PrioritizedReplayBuffer(
                cfg.buffer_size,
                self._stored_dim,
                alpha=cfg.per_alpha,
                seeds=list(self.seeds),
                storage=storage,
                **common,
            )
        return ReplayBuffer(cfg.buffer_size, self._stored_dim, **common)

    @property
    def compact(self) -> bool:
        """Whether replay memory keeps discrete observations as their state number (see above)."""
        return self.encoder.table_np is not None and self.encoder.dim > 1

    @property
    def _stored_dim(self) -> int:
        return 1 if self.compact else self.encoder.dim

    def _stored(self, obs: np.ndarray) -> np.ndarray:
        """What the replay memory keeps of raw observations ``[K, N, ...]``."""
        if self.encoder.image:
            return obs  # uint8 as it came: the frame memory keeps each frame once
        if isinstance(obs, torch.Tensor):
            k, n = obs.shape[:2]
            return obs.reshape(k, n, 1) if self.compact else self.encoder.tensor(obs).reshape(k, n, self.encoder.dim)
        if self.compact:
            return np.asarray(obs, dtype=np.float32).reshape(*np.shape(obs)[:2], 1)
        return self._np_features(obs)

    def decode(self, batch):
        """Features of a sampled minibatch's stored observations (numpy or torch, as the batch is)."""
        if not self.compact:
            return batch
        features = self.encoder.np if isinstance(batch.obs, np.ndarray) else self.encoder.tensor
        return batch._replace(obs=features(batch.obs[..., 0]), next_obs=features(batch.next_obs[..., 0]))
