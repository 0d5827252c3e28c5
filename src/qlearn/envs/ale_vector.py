"""K x N Atari games in ale-py's own vector env (``--env-arg vector=ale``): the emulators step in C++
threads, with no Python wrapper per game per frame.

It plays the same protocol as the Gymnasium pipeline of :mod:`qlearn.envs.pixels` (sticky actions, no-op
starts, frame skip with max-pooling, 84x84 grayscale, FIRE on reset, the frame cap) through
``AtariVectorEnv``'s own options, in its same-step autoreset mode (``info["final_obs"]`` is the true next
observation of an ended game, so every step is a transition, as the trainer expects). Two things are done
here rather than by ale-py, so that the agent sees what the Gymnasium pipeline would give it:

- frames are stacked here: ale-py pads a new game's stack with zeros, ``FrameStackObservation`` (and so
  the frame replay memory, which rebuilds stacks) with the game's first frame;
- rewards come raw (evaluation scores whole games with the game's score) and the learning signals are
  computed here as :class:`~qlearn.envs.pixels.TrainingSignals` does: the reward's sign, and a life lost
  while the game goes on (from ``info["lives"]``).

ale-py cannot save an emulator's state, so such runs write no checkpoints (:meth:`state_dict` says so).
Agent k's games are seeded from its own seed (``seeds[k] * 100_003 + j``), as for every batched env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qlearn.envs.batched import agent_seeds
from qlearn.envs.make import make_env
from qlearn.envs.pixels import game_name, horizon_of, protocol_of
from qlearn.errors import QlearnError
from qlearn.threads import default_threads

NO_CHECKPOINT = (
    "vector=ale runs cannot be checkpointed or resumed: ale-py's vector env cannot save its emulators' "
    "state (set checkpoint_every=0, or use vector=gymnasium for a resumable run)"
)


class AleVectorBatched:
    """``env_id``'s games, K x N of them, in one ``AtariVectorEnv``; the batched-env interface of
    :mod:`qlearn.envs.vector` (``[K, N]`` tensors on the CPU)."""

    def __init__(
        self,
        env_id: str,
        k: int,
        n: int,
        *,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        from ale_py.vector_env import AtariVectorEnv

        self.k, self.n = int(k), int(n)
        self.device = torch.device("cpu")
        self.seeds = agent_seeds(k, seed, seeds)
        single = make_env(env_id, **kwargs)  # the Gymnasium pipeline: spaces, protocol, horizon as the agent sees them
        self.observation_space, self.action_space = single.observation_space, single.action_space
        self.spec = single.spec
        self.horizon = horizon_of(single)
        proto = protocol_of(single) or {}
        single.close()
        self.protocol = proto
        self.stack = int(proto["frame_stack"])
        self.clip, self.life_loss = bool(proto["clip_rewards"]), bool(proto["life_loss"])
        self.vec = AtariVectorEnv(
            game_name(env_id),
            self.k * self.n,
            num_threads=int(threads or default_threads()),
            autoreset_mode="SameStep",
            repeat_action_probability=float(proto["sticky"]),
            noop_max=int(proto["noop_max"]),
            frameskip=int(proto["frame_skip"]),
            img_height=int(proto["screen_size"]),
            img_width=int(proto["screen_size"]),
            stack_num=1,
            grayscale=True,
            maxpool=True,
            use_fire_reset=bool(proto["fire_reset"]),
            max_num_frames_per_episode=int(proto["max_frames"]),
            reward_clipping=False,
            episodic_life=False,
        )
        if self.vec.single_action_space.n != self.action_space.n:  # type: ignore[attr-defined]
            raise QlearnError(
                f"ale-py's vector env gives {env_id} {self.vec.single_action_space.n} actions, its Gymnasium "  # type: ignore[attr-defined]
                f"env {self.action_space.n}: use vector=gymnasium"  # type: ignore[attr-defined]
            )
        frame = tuple(self.observation_space.shape or ())[1:]  # (84, 84)
        self.frames = np.zeros((self.k * self.n, self.stack, *frame), np.uint8)
        self.lives = np.zeros(self.k * self.n, dtype=np.int64)
        self.obs: torch.Tensor | None = None
        self._seeded = False
        self._learning: tuple[np.ndarray, np.ndarray] | None = None

    def _shape(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x).reshape(self.k, self.n, *x.shape[1:])

    def reset(self) -> torch.Tensor:
        """Seeded on the first call; later calls go on from each game's own generator (fresh games)."""
        if self._seeded:
            first, info = self.vec.reset()
        else:
            first, info = self.vec.reset(seed=np.array([s * 100_003 + j for s in self.seeds for j in range(self.n)]))
            self._seeded = True
        self.frames[:] = first  # (a new game's stack: its first frame, stack times)
        self.lives[:] = info["lives"]
        self.obs = self._shape(self.frames.copy())
        return self.obs

    def step(self, actions: Any) -> tuple[torch.Tensor, ...]:
        acts = np.asarray(torch.as_tensor(actions).cpu(), dtype=np.int64).reshape(-1)
        frame, raw, term, trunc, info = self.vec.step(acts)
        done = np.logical_or(term, trunc)
        self.frames[:, :-1] = self.frames[:, 1:]
        self.frames[:, -1] = frame[:, 0]
        final = self.frames.copy()
        if done.any():
            ended = np.flatnonzero(done)
            final[ended, -1] = info["final_obs"][ended, 0]
            self.frames[ended] = frame[ended]  # ``frame`` there is the next game's first frame
        lives = np.asarray(info["lives"], dtype=np.int64)
        lost = self.life_loss & (lives < self.lives) & ~done
        self.lives = lives
        reward = np.asarray(raw, dtype=np.float32)
        train = np.sign(reward) if self.clip else reward
        shape = (self.k, self.n)
        self._learning = (train.reshape(shape), lost.reshape(shape))
        self.obs = self._shape(self.frames.copy())
        return self.obs, self._shape(reward), self._shape(term), self._shape(trunc), self._shape(final)

    def learning_signals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The last step's reward and terminal flag for learning, ``[K, N]`` (see the module's docstring)."""
        return self._learning

    def state_dict(self) -> dict[str, Any]:
        raise QlearnError(NO_CHECKPOINT)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise QlearnError(NO_CHECKPOINT)

    def close(self) -> None:
        self.vec.close()
