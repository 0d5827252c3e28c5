"""Replay memory for image observations: uint8, each frame stored once, stacks rebuilt when sampled.

An Atari observation is 4 stacked 84x84 frames, and consecutive observations share 3 of them: storing
``obs`` and ``next_obs`` stacked keeps each frame 8 times (5.6 GB per 100k transitions). Here each
transition keeps only the newest frame of its observation (the whole observation when nothing is
stacked, as in MinAtar), in a frame ring ``[K, capacity + stack * n_envs, ...]`` that is a few frames
longer than the transition ring, so the history of the oldest stored transition is never overwritten.

An observation is rebuilt from the frames of the same env's previous steps. ``FrameStackObservation``
pads a new episode with its first frame, so the rebuilt stack does too: each slot remembers how many
steps its episode had run (``ep``, capped at the stack size), and frames before the episode's start are
replaced by its first one, never taken from the previous episode. The next observation's newest frame is
the next slot's frame of the same env (written ahead for the newest transition). Where an episode was cut
by a time limit the next observation is still needed for the bootstrap, and the next slot holds the new
episode's first frame: those few final frames are kept aside (``final``). After a true termination the
next observation is never used (the target does not bootstrap), so nothing is kept for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qlearn.buffers.replay import ReplayBuffer


class FrameReplayBuffer(ReplayBuffer):
    """:class:`ReplayBuffer` for uint8 images ``obs_shape``; ``stack`` frames per observation along its
    first axis (1: each observation is one frame)."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        *,
        stack: int = 1,
        k: int = 1,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        device: str | torch.device = "cpu",
    ) -> None:
        self.obs_shape, self.stack = tuple(int(x) for x in obs_shape), int(stack)
        if self.stack > 1 and self.obs_shape[0] != self.stack:
            raise ValueError(f"observations of shape {self.obs_shape} do not stack {self.stack} frames on axis 0")
        self.frame_shape = self.obs_shape[1:] if self.stack > 1 else self.obs_shape
        # (the base class checks the size, through _needed, before it allocates anything)
        super().__init__(capacity, 0, k=k, n_envs=n_envs, n_step=n_step, gamma=gamma, device=device)
        self.n_frames = self.capacity + self.stack * self.n_envs
        self.frames = torch.zeros(self.k, self.n_frames, *self.frame_shape, dtype=torch.uint8, device=self.device)
        self.frame_of = torch.zeros(self.capacity, dtype=torch.long, device=self.device)  # slot -> its frame
        self.ep = torch.zeros(self.k, self.capacity, dtype=torch.long, device=self.device)  # steps into episode
        self._ep_now = np.zeros((self.k, self.n_envs), dtype=np.int64)
        self.writes = 0  # frames written per agent so far (the frame ring's position)
        self.final: dict[tuple[int, int], torch.Tensor] = {}  # (agent, slot) -> final frame of a cut episode
        self._empty: dict[int, np.ndarray] = {}  # zero-width observations for the base class's fields

    @staticmethod
    def bytes_needed(  # type: ignore[override]
        capacity: int, obs_shape: tuple[int, ...], *, stack: int = 1, k: int = 1, n_envs: int = 1
    ) -> int:
        """Frames (uint8) plus each transition's action, reward, flags and bookkeeping."""
        frame = int(np.prod(obs_shape[1:] if stack > 1 else obs_shape))
        slots = -(-int(capacity) // int(n_envs)) * int(n_envs)
        return k * ((slots + stack * n_envs) * frame + slots * (8 + 3 * 4 + 8)) + slots * 8

    def _needed(self, capacity: int, obs_dim: int, k: int, n_envs: int) -> int:
        return self.bytes_needed(capacity, self.obs_shape, stack=self.stack, k=k, n_envs=n_envs)

    def _newest(self, obs: Any) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(obs) if not isinstance(obs, torch.Tensor) else obs)
        x = x.to(self.device, torch.uint8)
        return x[:, :, -1] if self.stack > 1 else x

    def store(self, obs, actions, rewards, next_obs, terminated, truncated=None, episode_end=None) -> np.ndarray:
        """As :meth:`ReplayBuffer.store`; ``episode_end[K, n_envs]``: the env reset after this step (a
        life lost in Atari is ``terminated`` for learning but not an episode end). Default: terminated
        or truncated."""
        n = np.shape(actions)[1]
        if truncated is None:
            truncated = np.zeros(np.shape(actions), dtype=np.float32)
        empty = self._empty.get(n)
        if empty is None:
            empty = self._empty[n] = np.zeros((self.k, n, 0), np.float32)
        positions = super().store(empty, actions, rewards, empty, terminated, truncated)
        at = slice(int(positions[0]), int(positions[0]) + n)  # the n slots written: consecutive
        first = self.writes
        newest_next = self._newest(next_obs)
        if first + 2 * n <= self.n_frames:  # contiguous frame positions (nearly always): slice writes
            self.frames[:, first : first + n] = self._newest(obs)
            self.frames[:, first + n : first + 2 * n] = newest_next  # ahead, for the newest slot
            self.frame_of[at] = torch.arange(first, first + n, device=self.device)
        else:
            frame_pos = (first + torch.arange(n, device=self.device)) % self.n_frames
            self.frames[:, frame_pos] = self._newest(obs)
            self.frames[:, (frame_pos + n) % self.n_frames] = newest_next
            self.frame_of[at] = frame_pos
        self.ep[:, at] = torch.from_numpy(np.minimum(self._ep_now, self.stack)).to(self.device)
        self.writes = (self.writes + n) % self.n_frames
        end = np.asarray(_np(episode_end) if episode_end is not None else (_np(terminated) + _np(truncated)) > 0)
        cut = (_np(truncated) > 0) & (_np(terminated) == 0)
        if self.final:
            written = set(positions.tolist())
            for key in [key for key in self.final if key[1] in written]:
                del self.final[key]  # those slots now hold new transitions
        if cut.any():
            for ki, j in zip(*np.nonzero(cut)):
                self.final[(int(ki), int(positions[j]))] = newest_next[ki, j].clone()
        self._ep_now += 1
        self._ep_now[end.astype(bool)] = 0
        return positions

    def _stack(self, newest_frame: torch.Tensor, ep: torch.Tensor) -> torch.Tensor:
        """The observation ending at frame positions ``newest_frame[K, B]`` whose episode had run ``ep``
        steps: ``stack`` frames of the same env, the episode's first frame standing in before it began."""
        r = self._rows.unsqueeze(-1)
        back = torch.arange(self.stack - 1, -1, -1, device=self.device)  # oldest first
        back = torch.minimum(back, ep.unsqueeze(-1))
        pos = (newest_frame.unsqueeze(-1) - back * self.n_envs) % self.n_frames
        frames = self.frames[r, pos]  # [K, B, stack, *frame]
        return frames if self.stack > 1 else frames.squeeze(2)

    def _obs_at(self, idx: torch.Tensor) -> torch.Tensor:
        return self._stack(self.frame_of[idx], self.ep[self._rows, idx])

    def _next_obs_at(self, idx: torch.Tensor) -> torch.Tensor:
        nxt = self._stack((self.frame_of[idx] + self.n_envs) % self.n_frames, self.ep[self._rows, idx] + 1)
        if self.final:
            for ki, b in zip(*torch.nonzero(self.truncated[self._rows, idx] > 0, as_tuple=True)):
                frame = self.final.get((int(ki), int(idx[ki, b])))
                if frame is not None:
                    if self.stack > 1:
                        nxt[ki, b, -1] = frame
                    else:
                        nxt[ki, b] = frame
        return nxt

    # The same reconstruction on the CPU memory's numpy views (the numpy gradient engine's minibatch).
    def _stack_np(self, newest_frame: np.ndarray, ep: np.ndarray) -> np.ndarray:
        back = np.minimum(np.arange(self.stack - 1, -1, -1), ep[..., None])
        pos = (newest_frame[..., None] - back * self.n_envs) % self.n_frames
        flat = (pos + self._np_rows[..., None] * self.n_frames).ravel()
        frames = np.take(self.frames.numpy().reshape(self.k * self.n_frames, -1), flat, axis=0)
        frames = frames.reshape(*newest_frame.shape, self.stack, *self.frame_shape)
        return frames if self.stack > 1 else frames[:, :, 0]

    def _obs_np(self, idx: np.ndarray) -> np.ndarray:
        return self._stack_np(self.frame_of.numpy()[idx], self.ep.numpy()[self._np_rows, idx])

    def _next_obs_np(self, idx: np.ndarray) -> np.ndarray:
        frame_of, ep = self.frame_of.numpy()[idx], self.ep.numpy()[self._np_rows, idx]
        nxt = self._stack_np((frame_of + self.n_envs) % self.n_frames, ep + 1)
        if self.final:
            for ki, b in zip(*np.nonzero(self.truncated.numpy()[self._np_rows, idx] > 0)):
                frame = self.final.get((int(ki), int(idx[ki, b])))
                if frame is not None:
                    if self.stack > 1:
                        nxt[ki, b, -1] = frame.numpy()
                    else:
                        nxt[ki, b] = frame.numpy()
        return nxt

    def state_dict(self) -> dict:
        state = super().state_dict()
        return {
            **state,
            "frames": self.frames,  # the live tensor: written out as it is, not copied first
            "frame_of": self.frame_of.clone(),
            "ep": self.ep.clone(),
            "ep_now": self._ep_now.copy(),
            "writes": self.writes,
            "final": {f"{k}:{s}": v.clone() for (k, s), v in self.final.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.frames.copy_(state["frames"])
        self.frame_of.copy_(state["frame_of"])
        self.ep.copy_(state["ep"])
        self._ep_now[:] = state["ep_now"]
        self.writes = int(state["writes"])
        self.final = {
            (int(key.split(":")[0]), int(key.split(":")[1])): v.to(self.device) for key, v in state["final"].items()
        }


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
