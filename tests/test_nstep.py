"""n-step returns of ReplayBuffer on hand-made episodes (every expected number worked out by hand).

With ``n_step=n`` a sample at ring position i returns ``R = sum_{j<m} gamma^j r_{i+j}``, the next
observation of step ``i+m-1``, its terminated/truncated flags, and the discount ``gamma^m``, where
``m <= n`` stops early at the end of an episode (terminated or truncated, that step included) and at the
newest stored transition. Steps of one env are ``n_envs`` slots apart.
"""

from __future__ import annotations

import pytest
import torch

from qlearn.buffers import Batch, ReplayBuffer

GAMMA = 0.5


def _put(buf: ReplayBuffer, obs, reward, term=0.0, trunc=0.0, action=0, next_obs=None) -> None:
    """Store one step of every env (lists of length n_envs, or scalars for one env); K=1, obs_dim=1.

    By default ``next_obs = obs + 1`` so the observation m steps ahead is easy to predict."""
    n = len(obs) if isinstance(obs, list) else 1

    def row(v):
        return torch.tensor([v if isinstance(v, list) else [v] * n], dtype=torch.float32)

    o = row(obs)
    nxt = o + 1 if next_obs is None else row(next_obs)
    buf.store(o.unsqueeze(-1), row(action).long(), row(reward), nxt.unsqueeze(-1), row(term), row(trunc))


def _gather(buf: ReplayBuffer, indices) -> Batch:
    idx = torch.tensor([indices])
    return buf.gather(idx, torch.ones(idx.shape))


def _hand_episodes() -> ReplayBuffer:
    """Three episodes, one env, gamma=0.5, n=3 (obs = 100 * episode + step, next_obs = obs + 1):

    slot: 0    1    2    3          4    5    6           7    8
    ep:   1    1    1    1          2    2    2           3    3
    obs:  100  101  102  103        200  201  202         300  301
    r:    1    2    4    8 (term)   16   32   64 (trunc)  128  256 (newest, episode still running)
    """
    buf = ReplayBuffer(20, obs_dim=1, n_step=3, gamma=GAMMA)
    for t, r in enumerate([1.0, 2.0, 4.0, 8.0]):
        _put(buf, 100 + t, r, term=float(t == 3), action=t)
    for t, r in enumerate([16.0, 32.0, 64.0]):
        _put(buf, 200 + t, r, trunc=float(t == 2), action=t)
    for t, r in enumerate([128.0, 256.0]):
        _put(buf, 300 + t, r, action=t)
    return buf


def test_full_window_sums_three_discounted_rewards():
    buf = _hand_episodes()
    b = _gather(buf, [0, 1])
    # slot 0: 1 + 0.5*2 + 0.25*4 = 1 + 1 + 1 = 3; window ends at slot 2, next_obs = 102 + 1 = 103 (obs 3 steps ahead)
    # slot 1: 2 + 0.5*4 + 0.25*8 = 2 + 2 + 2 = 6; the window's last step (slot 3) terminates -> terminated = 1,
    #         next_obs = 104 (the terminal state), discount still gamma^3 (the agent zeroes it via 1 - terminated)
    assert b.rewards.tolist() == [[3.0, 6.0]]
    assert b.next_obs[0, :, 0].tolist() == [103.0, 104.0]
    assert b.terminated.tolist() == [[0.0, 1.0]]
    assert b.truncated.tolist() == [[0.0, 0.0]]
    assert b.discounts.tolist() == [[0.125, 0.125]]
    # obs and actions are those of the first step of the window
    assert b.obs[0, :, 0].tolist() == [100.0, 101.0]
    assert b.actions.tolist() == [[0, 1]]
    assert b.indices.tolist() == [[0, 1]]
    assert b.weights.tolist() == [[1.0, 1.0]]


def test_window_cut_by_terminated_does_not_enter_next_episode():
    buf = _hand_episodes()
    b = _gather(buf, [2, 3])
    # slot 2: 4 + 0.5*8 = 8 (slot 4, the next episode's 16, is not added: it would give 8 + 0.25*16 = 12);
    #         m = 2 -> discount 0.25, terminated = 1, next_obs = 104
    # slot 3: 8, m = 1 -> discount 0.5, terminated = 1, next_obs = 104
    assert b.rewards.tolist() == [[8.0, 8.0]]
    assert b.discounts.tolist() == [[0.25, 0.5]]
    assert b.terminated.tolist() == [[1.0, 1.0]]
    assert b.next_obs[0, :, 0].tolist() == [104.0, 104.0]


def test_window_cut_by_truncated_still_bootstraps():
    buf = _hand_episodes()
    b = _gather(buf, [4, 5, 6])
    # slot 4: 16 + 0.5*32 + 0.25*64 = 16 + 16 + 16 = 48, m = 3 ends exactly on the truncated step 6
    # slot 5: 32 + 0.5*64 = 64, m = 2 (slot 7, episode 3's 128, is not added: it would give 64 + 32 = 96)
    # slot 6: 64, m = 1
    # all end at slot 6: next_obs = 203, truncated = 1, terminated = 0 -> the target bootstraps with gamma^m
    assert b.rewards.tolist() == [[48.0, 64.0, 64.0]]
    assert b.discounts.tolist() == [[0.125, 0.25, 0.5]]
    assert b.terminated.tolist() == [[0.0, 0.0, 0.0]]
    assert b.truncated.tolist() == [[1.0, 1.0, 1.0]]
    assert b.next_obs[0, :, 0].tolist() == [203.0, 203.0, 203.0]


def test_window_cut_at_newest_stored_transition():
    buf = _hand_episodes()
    b = _gather(buf, [7, 8])
    # slot 7: 128 + 0.5*256 = 256, m = 2 (slot 9 is empty), next_obs = 302, discount 0.25
    # slot 8: 256, m = 1, next_obs = 302, discount 0.5; neither ended: both bootstrap
    assert b.rewards.tolist() == [[256.0, 256.0]]
    assert b.discounts.tolist() == [[0.25, 0.5]]
    assert b.next_obs[0, :, 0].tolist() == [302.0, 302.0]
    assert b.terminated.tolist() == [[0.0, 0.0]]
    assert b.truncated.tolist() == [[0.0, 0.0]]


def test_window_grows_when_the_episode_continues():
    # One env, n=3: after 1 step slot 0 has m = 1; after 2 steps m = 2; after 3 steps the full window.
    buf = ReplayBuffer(10, obs_dim=1, n_step=3, gamma=GAMMA)
    expected = [(1.0, 0.5), (1.0 + 0.5 * 2, 0.25), (1.0 + 0.5 * 2 + 0.25 * 4, 0.125)]  # (R, gamma^m)
    for t, r in enumerate([1.0, 2.0, 4.0, 8.0]):
        _put(buf, t, r)
        b = _gather(buf, [0])
        R, d = expected[min(t, 2)]
        assert (b.rewards.item(), b.discounts.item()) == (R, d)
        assert b.next_obs.item() == min(t, 2) + 1  # next_obs of the last step used


def test_n_envs_two_windows_follow_one_env():
    """Slots alternate env0, env1: env0's steps are slots 0, 2, 4, 6, env1's are 1, 3, 5, 7.

    slot:  0   1    2   3          4   5    6   7
    env:   0   1    0   1          0   1    0   1
    r:     1   10   2   20 (term)  4   40   8   80
    obs:   0   10   1   11         2   20   3   21       (env1 restarts at obs 20 after terminating)
    """
    buf = ReplayBuffer(16, obs_dim=1, n_envs=2, n_step=3, gamma=GAMMA)
    _put(buf, [0, 10], [1.0, 10.0])
    _put(buf, [1, 11], [2.0, 20.0], term=[0.0, 1.0])
    _put(buf, [2, 20], [4.0, 40.0])
    _put(buf, [3, 21], [8.0, 80.0])
    b = _gather(buf, [0, 2, 4, 6, 1, 3, 5, 7])
    # env0 slot 0: slots 0, 2, 4 -> 1 + 0.5*2 + 0.25*4 = 3 (consecutive slots 0, 1, 2 would give 1 + 5 + 0.5 = 6.5)
    # env0 slot 2: slots 2, 4, 6 -> 2 + 2 + 2 = 6
    # env0 slot 4: slots 4, 6 (slot 8 not stored) -> 4 + 4 = 8, m = 2
    # env0 slot 6: 8, m = 1
    # env1 slot 1: slots 1, 3, and slot 3 terminates -> 10 + 0.5*20 = 20, m = 2, terminated
    # env1 slot 3: 20, m = 1, terminated
    # env1 slot 5: slots 5, 7 (slot 9 not stored) -> 40 + 0.5*80 = 80, m = 2
    # env1 slot 7: 80, m = 1
    assert b.rewards.tolist() == [[3.0, 6.0, 8.0, 8.0, 20.0, 20.0, 80.0, 80.0]]
    assert b.discounts.tolist() == [[0.125, 0.125, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5]]
    assert b.terminated.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    # next_obs is that env's obs after the window's last step: env0 -> 3, 4, 4, 4; env1 -> 12, 12, 22, 22
    assert b.next_obs[0, :, 0].tolist() == [3.0, 4.0, 4.0, 4.0, 12.0, 12.0, 22.0, 22.0]


def test_after_wrap_around_windows_never_read_stale_slots():
    # Capacity 5, one env, no episode ends, rewards 1..7 at steps 0..6: steps 5 and 6 overwrote slots 0, 1.
    #   slot:     0  1  2  3  4      pos = 2, so slot 2 (reward 3) is the oldest and slot 1 the newest
    #   reward:   6  7  3  4  5
    buf = ReplayBuffer(5, obs_dim=1, n_step=3, gamma=GAMMA)
    for t in range(7):
        _put(buf, t, float(t + 1))
    assert buf.pos == 2
    b = _gather(buf, [2, 3, 4, 0, 1])
    # slot 2: 3 + 0.5*4 + 0.25*5 = 6.25   (slots 2, 3, 4)
    # slot 3: 4 + 0.5*5 + 0.25*6 = 8.0    (slots 3, 4, 0: across the end of the ring)
    # slot 4: 5 + 0.5*6 + 0.25*7 = 9.75   (slots 4, 0, 1)
    # slot 0: 6 + 0.5*7 = 9.5, m = 2      (slot 2 holds the older step 2: 6 + 3.5 + 0.75 = 10.25 would be stale)
    # slot 1: 7, m = 1
    assert b.rewards.tolist() == [[6.25, 8.0, 9.75, 9.5, 7.0]]
    assert b.discounts.tolist() == [[0.125, 0.125, 0.125, 0.25, 0.5]]
    # next_obs = obs of the last step + 1: steps 4, 5, 6, 6, 6
    assert b.next_obs[0, :, 0].tolist() == [5.0, 6.0, 7.0, 7.0, 7.0]


def test_after_wrap_around_with_two_envs():
    # Capacity 6, n_envs=2 (3 steps per env), 4 steps: step 3 overwrote step 0 in slots 0, 1.
    #   slot:  0      1       2      3       4      5
    #   step:  3      3       1      1       2      2
    #   r:     8(e0)  80(e1)  2(e0)  20(e1)  4(e0)  40(e1)        pos = 2
    buf = ReplayBuffer(6, obs_dim=1, n_envs=2, n_step=3, gamma=GAMMA)
    for t, (r0, r1) in enumerate([(1.0, 10.0), (2.0, 20.0), (4.0, 40.0), (8.0, 80.0)]):
        _put(buf, [t, 10 + t], [r0, r1])
    assert buf.pos == 2
    b = _gather(buf, [2, 4, 0, 3, 5, 1])
    # env0 slot 2 (step 1): slots 2, 4, 0 -> 2 + 0.5*4 + 0.25*8 = 6
    # env0 slot 4 (step 2): slots 4, 0 -> 4 + 4 = 8, m = 2 (slot 2 is the older step 1: 8.5 would be stale)
    # env0 slot 0 (step 3): 8, m = 1
    # env1 slot 3: 20 + 20 + 20 = 60; slot 5: 40 + 40 = 80, m = 2; slot 1: 80, m = 1
    assert b.rewards.tolist() == [[6.0, 8.0, 8.0, 60.0, 80.0, 80.0]]
    assert b.discounts.tolist() == [[0.125, 0.25, 0.5, 0.125, 0.25, 0.5]]
    assert b.next_obs[0, :, 0].tolist() == [4.0, 4.0, 4.0, 14.0, 14.0, 14.0]


def test_agents_cut_windows_at_their_own_episode_ends():
    # K=2, one env, gamma 0.5, n=3, rewards 1, 2, 4 for both; agent 0 terminates at step 0, agent 1 never.
    #   agent 0, slot 0: 1, m = 1, terminated;   agent 1, slot 0: 1 + 1 + 1 = 3, m = 3
    buf = ReplayBuffer(8, obs_dim=1, k=2, n_step=3, gamma=GAMMA)
    for t, r in enumerate([1.0, 2.0, 4.0]):
        o = torch.full((2, 1, 1), float(t))
        term = torch.tensor([[float(t == 0)], [0.0]])
        buf.store(o, torch.zeros(2, 1, dtype=torch.long), torch.full((2, 1), r), o + 1, term)
    b = buf.gather(torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1))
    assert b.rewards.tolist() == [[1.0], [3.0]]
    assert b.discounts.tolist() == [[0.5], [0.125]]
    assert b.terminated.tolist() == [[1.0], [0.0]]
    assert b.next_obs[:, 0, 0].tolist() == [1.0, 3.0]


def test_sample_returns_the_windows_gather_gives():
    buf = _hand_episodes()
    b = buf.sample(200, torch.Generator().manual_seed(0))
    assert set(b.indices.flatten().tolist()) == set(range(9))
    again = buf.gather(b.indices, torch.ones_like(b.weights))
    for name, x, y in zip(Batch._fields, b, again):
        assert torch.equal(x, y), name
    assert torch.equal(b.weights, torch.ones(1, 200))
    # per slot (from the tests above): R = 3, 6, 8, 8, 48, 64, 64, 256, 256
    table = torch.tensor([3.0, 6.0, 8.0, 8.0, 48.0, 64.0, 64.0, 256.0, 256.0])
    assert torch.equal(b.rewards, table[b.indices])


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_one_step_discount_is_gamma(gamma):
    buf = ReplayBuffer(10, obs_dim=1, n_step=1, gamma=gamma)
    for t, r in enumerate([1.0, 2.0, 4.0]):
        _put(buf, t, r, term=float(t == 2))
    b = buf.sample(50, torch.Generator().manual_seed(1))
    torch.testing.assert_close(b.discounts, torch.full((1, 50), gamma))
    # plain one-step fields: reward and next_obs of the sampled step itself
    assert torch.equal(b.rewards, torch.tensor([1.0, 2.0, 4.0])[b.indices])
    assert torch.equal(b.next_obs[..., 0], b.obs[..., 0] + 1)
    assert torch.equal(b.terminated, (b.indices == 2).float())


def test_n_step_must_be_positive():
    with pytest.raises(ValueError, match="n_step"):
        ReplayBuffer(10, obs_dim=1, n_step=0)
