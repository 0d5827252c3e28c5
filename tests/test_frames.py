"""Image replay memory (qlearn.buffers.frames): stacks rebuilt from single frames equal the observations
Gymnasium's FrameStackObservation gave, at episode boundaries, after truncations and after the ring
wraps; n-step, prioritized replay and checkpoints work on it; the memory it needs is what it says."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import FrameStackObservation

from qlearn.buffers import FrameReplayBuffer, PrioritizedReplayBuffer, ReplayBuffer
from qlearn.errors import QlearnError


class Frames(gym.Env):
    """Frames whose pixels tell (episode, step) apart; episodes end at random, or are cut after ``limit``."""

    observation_space = gym.spaces.Box(0, 255, (2, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, seed: int, p_end: float = 0.08, limit: int = 9) -> None:
        self.rng, self.p_end, self.limit = np.random.default_rng(seed), p_end, limit
        self.episode, self.t = 0, 0

    def _frame(self) -> np.ndarray:
        f = np.zeros((2, 3), np.uint8)
        f[0] = self.episode % 256
        f[1] = self.t
        f[1, 2] = self.rng.integers(256)
        return f

    def reset(self, seed=None, options=None):
        self.episode, self.t = self.episode + 1, 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        terminated = bool(self.rng.random() < self.p_end)
        truncated = not terminated and self.t >= self.limit
        return self._frame(), float(self.rng.normal()), terminated, truncated, {}


def play(buffer, k: int, n: int, steps: int, stack: int, seed: int = 0):
    """Step K x N stacked envs with same-step resets, storing into ``buffer``; every transition kept."""
    envs = [[FrameStackObservation(Frames(seed * 100 + ki * n + j), stack) if stack > 1 else Frames(ki * n + j)
             for j in range(n)] for ki in range(k)]
    obs = np.array([[e.reset()[0] for e in row] for row in envs])
    seen = {}
    for _ in range(steps):
        nxt, rew, term, trunc = (np.empty_like(obs), np.zeros((k, n), np.float32), np.zeros((k, n)), np.zeros((k, n)))
        after = np.empty_like(obs)
        for ki in range(k):
            for j in range(n):
                o, r, te, tr, _ = envs[ki][j].step(0)
                nxt[ki, j], rew[ki, j], term[ki, j], trunc[ki, j] = o, r, te, tr
                after[ki, j] = envs[ki][j].reset()[0] if te or tr else o
        actions = np.zeros((k, n), np.int64)
        pos = buffer.store(obs, actions, rew, nxt, term.astype(np.float32), trunc.astype(np.float32))
        for j, p in enumerate(pos):
            for ki in range(k):
                seen[(ki, int(p))] = (obs[ki, j].copy(), nxt[ki, j].copy(), term[ki, j], trunc[ki, j], rew[ki, j])
        obs = after
    return seen


@pytest.mark.parametrize("stack,k,n", [(4, 2, 3), (4, 1, 1), (1, 2, 2)])
def test_stacks_match_frame_stack_observation_across_episodes_truncations_and_wraparound(stack, k, n):
    capacity = 60
    buf = FrameReplayBuffer(capacity, (stack, 2, 3) if stack > 1 else (2, 3), stack=stack, k=k, n_envs=n)
    seen = play(buf, k, n, steps=200, stack=stack)  # the ring wraps several times
    assert buf.size == buf.capacity
    idx = torch.arange(buf.capacity).repeat(k, 1)
    batch = buf.gather(idx, torch.ones(idx.shape))
    checked_cut = 0
    for ki in range(k):
        for p in range(buf.capacity):
            obs, nxt, term, trunc, rew = seen[(ki, p)]
            np.testing.assert_array_equal(batch.obs[ki, p].numpy(), obs)
            assert batch.rewards[ki, p].item() == pytest.approx(rew)
            if not term:  # after a termination the next observation is never used
                np.testing.assert_array_equal(batch.next_obs[ki, p].numpy(), nxt)
                checked_cut += int(trunc)
    assert checked_cut > 0  # time-limit cuts were among them, bootstrapped from their true last frame
    # the numpy engine's minibatch (the same reconstruction on numpy views) is the same batch
    batch_np = buf.gather_numpy(idx.numpy())
    live = batch.terminated.numpy() == 0
    np.testing.assert_array_equal(batch_np.obs, batch.obs.numpy())
    np.testing.assert_array_equal(batch_np.next_obs[live], batch.next_obs.numpy()[live])
    np.testing.assert_array_equal(batch_np.rewards, batch.rewards.numpy())


def test_frame_memory_n_step_returns_equal_the_plain_memory():
    """Same transitions in a float memory and a frame memory: the same n-step returns, discounts and flags."""
    k, n, cap = 2, 2, 40
    frames = FrameReplayBuffer(cap, (4, 2, 3), stack=4, k=k, n_envs=n, n_step=3, gamma=0.9)
    plain = ReplayBuffer(cap, 4 * 2 * 3, k=k, n_envs=n, n_step=3, gamma=0.9)
    seen = play(frames, k, n, steps=50, stack=4, seed=3)
    # replay the same transitions into the plain memory, in the order they were written (oldest first)
    order = [(frames.pos + i) % cap for i in range(0, cap, n)]
    for start in order:
        slots = [start + j for j in range(n)]
        o = np.stack([[seen[(ki, s)][0] for s in slots] for ki in range(k)]).reshape(k, n, -1)
        x = np.stack([[seen[(ki, s)][1] for s in slots] for ki in range(k)]).reshape(k, n, -1)
        te = np.array([[seen[(ki, s)][2] for s in slots] for ki in range(k)], np.float32)
        tr = np.array([[seen[(ki, s)][3] for s in slots] for ki in range(k)], np.float32)
        r = np.array([[seen[(ki, s)][4] for s in slots] for ki in range(k)], np.float32)
        plain.store(o.astype(np.float32), np.zeros((k, n), np.int64), r, x.astype(np.float32), te, tr)
    # the plain memory's slot i holds frames' slot (pos + i) % cap
    idx = torch.randint(0, cap, (k, 16), generator=torch.Generator().manual_seed(0))
    a = frames.gather((idx + frames.pos) % cap, torch.ones(idx.shape))
    b = plain.gather(idx, torch.ones(idx.shape))
    torch.testing.assert_close(a.rewards, b.rewards)
    torch.testing.assert_close(a.discounts, b.discounts)
    torch.testing.assert_close(a.terminated, b.terminated)
    torch.testing.assert_close(a.obs.reshape(k, 16, -1).float(), b.obs)
    live = a.terminated == 0
    torch.testing.assert_close(a.next_obs.reshape(k, 16, -1).float()[live], b.next_obs[live])
    c = frames.gather_numpy(((idx + frames.pos) % cap).numpy())  # the numpy engine's view of the same windows
    np.testing.assert_allclose(c.rewards, a.rewards.numpy(), rtol=1e-6)
    np.testing.assert_allclose(c.discounts, a.discounts.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(c.obs, a.obs.numpy())
    np.testing.assert_array_equal(c.next_obs[live.numpy()], a.next_obs.numpy()[live.numpy()])


def test_prioritized_replay_on_frame_storage_samples_stacks_with_weights():
    storage = FrameReplayBuffer(50, (4, 2, 3), stack=4, k=2, n_envs=1)
    per = PrioritizedReplayBuffer(50, 0, k=2, seeds=[0, 1], storage=storage)
    play(per, 2, 1, steps=30, stack=4)
    batch = per.sample(8)
    assert batch.obs.shape == (2, 8, 4, 2, 3) and batch.obs.dtype == torch.uint8
    assert torch.all(batch.weights > 0) and torch.all(batch.weights <= 1)
    per.update_priorities(batch.indices, torch.ones(2, 8))


def test_state_dict_round_trip_keeps_stacks_and_cut_frames():
    a = FrameReplayBuffer(30, (4, 2, 3), stack=4, k=1, n_envs=2)
    play(a, 1, 2, steps=40, stack=4)
    b = FrameReplayBuffer(30, (4, 2, 3), stack=4, k=1, n_envs=2)
    b.load_state_dict({key: (v.clone() if isinstance(v, torch.Tensor) else v) for key, v in a.state_dict().items()})
    idx = torch.arange(30).unsqueeze(0)
    for x, y in zip(a.gather(idx, torch.ones(1, 30)), b.gather(idx, torch.ones(1, 30))):
        torch.testing.assert_close(x, y)
    assert a.final.keys() == b.final.keys()


def test_atari_memory_is_one_frame_per_transition():
    """100k Atari transitions (4x84x84) in at most 0.75 GB; a million in at most 7.1 GB."""
    shape = (4, 84, 84)
    assert FrameReplayBuffer.bytes_needed(100_000, shape, stack=4) <= 0.75e9
    assert FrameReplayBuffer.bytes_needed(1_000_000, shape, stack=4) <= 7.1e9
    buf = FrameReplayBuffer(1_000, shape, stack=4)
    assert buf.frames.dtype == torch.uint8 and buf.frames.shape == (1, 1_000 + 4, 84, 84)
    assert buf.obs.numel() == 0 and buf.next_obs.numel() == 0  # no float observations, no next_obs copies


def test_a_memory_that_does_not_fit_is_refused_before_allocating():
    with pytest.raises(QlearnError, match=r"buffer_size=100000000 needs .* GB .* lower buffer_size"):
        FrameReplayBuffer(100_000_000, (4, 84, 84), stack=4, k=4)
    with pytest.raises(QlearnError, match="lower buffer_size"):
        ReplayBuffer(10**12, 100)
