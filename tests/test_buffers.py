"""ReplayBuffer: ring storage for K agents, uniform sampling of what is stored, state round trip.

Each ``store`` call writes exactly ``n_envs`` transitions (one per environment), so a test that stores
chunks of n transitions builds its buffer with ``n_envs=n``."""

from __future__ import annotations

import pytest
import torch

from qlearn.buffers import ReplayBuffer


def _transitions(values, k: int = 1) -> dict[str, torch.Tensor]:
    """Transitions [K, n] whose every field encodes its value v (and agent k as 1000*k + v)."""
    v = torch.as_tensor(values, dtype=torch.float32)
    tag = torch.stack([1000.0 * a + v for a in range(k)])  # [K, n]
    return {
        "obs": tag.unsqueeze(-1).repeat(1, 1, 2),
        "actions": tag.long(),
        "rewards": tag,
        "next_obs": (tag + 0.5).unsqueeze(-1).repeat(1, 1, 2),
        "terminated": torch.zeros_like(tag),
    }


def _store(buf: ReplayBuffer, values, k: int = 1):
    t = _transitions(values, k)
    return buf.store(t["obs"], t["actions"], t["rewards"], t["next_obs"], t["terminated"])


def test_store_one_at_a_time_wraps_and_overwrites_oldest():
    buf = ReplayBuffer(5, obs_dim=2)
    for i in range(1, 8):  # values 1..7
        _store(buf, [i])
        assert len(buf) == min(i, 5)
        assert buf.pos == i % 5
    # 7 stores into 5 slots: 1 and 2 were overwritten by 6 and 7 at slots 0 and 1.
    assert buf.rewards[0].tolist() == [6.0, 7.0, 3.0, 4.0, 5.0]
    assert buf.obs[0, :, 0].tolist() == [6.0, 7.0, 3.0, 4.0, 5.0]
    assert buf.next_obs[0, :, 1].tolist() == [6.5, 7.5, 3.5, 4.5, 5.5]
    assert buf.actions[0].tolist() == [6, 7, 3, 4, 5]
    assert (buf.pos, buf.size) == (2, 5)


# Capacity 6; values 1..T stored in chunks of n_envs:
#   n=1, T=8: 1..6 fill the ring, 7 and 8 overwrite slots 0 and 1     -> [7, 8, 3, 4, 5, 6], pos 2
#   n=2, T=8: chunks [1,2] [3,4] [5,6] fill it, [7,8] goes to slots 0-1 -> [7, 8, 3, 4, 5, 6], pos 2
#   n=3, T=9: chunks [1,2,3] [4,5,6] fill it, [7,8,9] to slots 0-2      -> [7, 8, 9, 4, 5, 6], pos 3
@pytest.mark.parametrize("n_envs, total, ring, pos", [
    (1, 8, [7, 8, 3, 4, 5, 6], 2),
    (2, 8, [7, 8, 3, 4, 5, 6], 2),
    (3, 9, [7, 8, 9, 4, 5, 6], 3),
])
def test_store_in_chunks_wraps_like_one_at_a_time(n_envs, total, ring, pos):
    buf = ReplayBuffer(6, obs_dim=2, k=2, n_envs=n_envs)
    assert buf.capacity == 6
    for start in range(1, total + 1, n_envs):
        _store(buf, list(range(start, start + n_envs)), k=2)
    assert (buf.pos, buf.size, len(buf)) == (pos, 6, 6)
    assert buf.rewards[0].tolist() == [float(v) for v in ring]
    assert buf.rewards[1].tolist() == [1000.0 + v for v in ring]
    assert buf.obs[1, :, 0].tolist() == [1000.0 + v for v in ring]
    assert buf.next_obs[1, :, 1].tolist() == [1000.5 + v for v in ring]
    assert buf.actions[0].tolist() == ring


@pytest.mark.parametrize("capacity, n_envs, rounded", [(5, 1, 5), (5, 2, 6), (5, 3, 6), (5, 5, 5), (6, 4, 8), (2, 3, 3)])
def test_capacity_is_rounded_up_to_a_multiple_of_n_envs(capacity, n_envs, rounded):
    buf = ReplayBuffer(capacity, obs_dim=2, n_envs=n_envs)
    assert buf.capacity == rounded
    assert buf.rewards.shape == (1, rounded)


def test_partial_fill_position_and_size():
    buf = ReplayBuffer(6, obs_dim=2, n_envs=3)
    positions = _store(buf, [1, 2, 3])
    assert positions.tolist() == [0, 1, 2]
    assert (buf.pos, buf.size) == (3, 3)
    assert buf.rewards[0, :3].tolist() == [1.0, 2.0, 3.0]
    assert buf.rewards[0, 3:].tolist() == [0.0, 0.0, 0.0]
    assert _store(buf, [4, 5, 6]).tolist() == [3, 4, 5]
    assert (buf.pos, buf.size) == (0, 6)


@pytest.mark.parametrize("n_envs, chunk", [(1, 6), (1, 2), (3, 2), (3, 4)])
def test_chunk_of_other_size_than_n_envs_is_refused(n_envs, chunk):
    # Also covers a chunk larger than the capacity (6 transitions into 5 slots).
    buf = ReplayBuffer(5, obs_dim=2, n_envs=n_envs)
    with pytest.raises(ValueError, match="per call"):
        _store(buf, list(range(1, chunk + 1)))
    assert (buf.pos, buf.size) == (0, 0)
    assert not buf.rewards.any()


def test_sample_only_returns_stored_transitions():
    buf = ReplayBuffer(99, obs_dim=2, n_envs=3)
    _store(buf, [7, 8, 9])  # distinctive, nonzero; 96 rows stay zero
    gen = torch.Generator().manual_seed(0)
    batch = buf.sample(1000, gen)
    assert batch.obs.shape == (1, 1000, 2)
    assert batch.rewards.shape == (1, 1000)
    assert set(batch.rewards.flatten().tolist()) == {7.0, 8.0, 9.0}  # never 0, and all three reachable
    # Fields of one sampled row belong to the same transition.
    assert torch.equal(batch.obs[..., 0], batch.rewards)
    assert torch.equal(batch.next_obs[..., 0], batch.rewards + 0.5)
    assert torch.equal(batch.actions.float(), batch.rewards)


@pytest.mark.parametrize("n_envs", [1, 2])
def test_sample_after_wrap_covers_whole_ring_only_with_live_data(n_envs):
    # Capacity 6, values 1..8: 7 and 8 overwrote 1 and 2; the live data is 3..8.
    buf = ReplayBuffer(6, obs_dim=2, n_envs=n_envs)
    for start in range(1, 9, n_envs):
        _store(buf, list(range(start, start + n_envs)))
    batch = buf.sample(2000, torch.Generator().manual_seed(1))
    assert set(batch.rewards.flatten().tolist()) == {3.0, 4.0, 5.0, 6.0, 7.0, 8.0}


def test_agents_sample_only_their_own_data():
    k = 3
    buf = ReplayBuffer(60, obs_dim=2, k=k, n_envs=20)
    _store(buf, list(range(1, 21)), k=k)
    batch = buf.sample(500, torch.Generator().manual_seed(2))
    assert batch.rewards.shape == (k, 500)
    for a in range(k):
        own = set((1000.0 * a + torch.arange(1, 21.0)).tolist())
        assert set(batch.rewards[a].tolist()) <= own
        assert set(batch.obs[a, :, 0].tolist()) <= own
        assert set(batch.actions[a].float().tolist()) <= own
    # Each agent draws its own indices: the sampled positions differ between agents.
    positions = batch.rewards - 1000.0 * torch.arange(k).unsqueeze(1)
    assert not torch.equal(positions[0], positions[1])


def test_terminated_and_truncated_are_kept_apart():
    buf = ReplayBuffer(12, obs_dim=1, n_envs=4)
    obs = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    terminated = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    truncated = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    buf.store(obs, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), obs, terminated, truncated)
    assert buf.terminated[0, :4].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert buf.truncated[0, :4].tolist() == [0.0, 1.0, 0.0, 1.0]
    batch = buf.sample(400, torch.Generator().manual_seed(3))
    row = batch.obs[0, :, 0].long() - 1
    assert torch.equal(batch.terminated[0], terminated[0, row])
    assert torch.equal(batch.truncated[0], truncated[0, row])


def test_truncated_defaults_to_false():
    buf = ReplayBuffer(4, obs_dim=1)
    buf.truncated.fill_(1.0)  # stale value in the slot that will be written
    obs = torch.ones(1, 1, 1)
    buf.store(obs, torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1), obs, torch.zeros(1, 1))
    assert buf.truncated[0, 0].item() == 0.0


def test_sampling_from_empty_buffer_raises():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(5, obs_dim=2).sample(1)


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        ReplayBuffer(0, obs_dim=2)


def test_seeded_generator_gives_reproducible_samples():
    buf = ReplayBuffer(48, obs_dim=2, k=2, n_envs=8)
    for start in range(1, 41, 8):
        _store(buf, list(range(start, start + 8)), k=2)
    a = buf.sample(64, torch.Generator().manual_seed(123))
    b = buf.sample(64, torch.Generator().manual_seed(123))
    c = buf.sample(64, torch.Generator().manual_seed(124))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a.rewards, c.rewards)


# capacity 5, n=1: values 1..7 leave [6, 7, 3, 4, 5] at pos 2; one more store (8) goes to slot 2.
# capacity 6, n=2: values 1..8 leave [7, 8, 3, 4, 5, 6] at pos 2; one more store (9, 10) goes to slots 2-3.
@pytest.mark.parametrize("capacity, n_envs, after", [
    (5, 1, [6, 7, 8, 4, 5]),
    (6, 2, [7, 8, 9, 10, 5, 6]),
])
def test_state_dict_round_trip(tmp_path, capacity, n_envs, after):
    buf = ReplayBuffer(capacity, obs_dim=2, k=2, n_envs=n_envs)
    for start in range(1, capacity + 3, n_envs):
        _store(buf, list(range(start, start + n_envs)), k=2)
    assert (buf.pos, buf.size) == (2, capacity)
    path = tmp_path / "buf.pt"
    torch.save(buf.state_dict(), path)
    other = ReplayBuffer(capacity, obs_dim=2, k=2, n_envs=n_envs)
    other.load_state_dict(torch.load(path, weights_only=True))
    assert (other.pos, other.size, len(other)) == (buf.pos, buf.size, len(buf))
    for key in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(other, key), getattr(buf, key)), key
    x = buf.sample(32, torch.Generator().manual_seed(9))
    y = other.sample(32, torch.Generator().manual_seed(9))
    for u, v in zip(x, y):
        assert torch.equal(u, v)
    # The restored buffer carries on writing at the right slot.
    _store(other, list(range(capacity + 3, capacity + 3 + n_envs)), k=2)
    assert other.rewards[0].tolist() == [float(v) for v in after]
    assert other.rewards[1].tolist() == [1000.0 + v for v in after]


def test_a_partly_filled_memory_saves_only_its_filled_slots(tmp_path):
    buf = ReplayBuffer(1000, obs_dim=2, k=3, n_envs=2)
    for start in range(1, 21, 2):
        _store(buf, [start, start + 1], k=3)
    state = buf.state_dict()
    assert state["obs"].shape == (3, 20, 2) and state["rewards"].shape == (3, 20)
    path = tmp_path / "buf.pt"
    torch.save(state, path)
    assert path.stat().st_size < 10_000  # not the 1,000-slot arrays (a view would save its whole storage)
    other = ReplayBuffer(1000, obs_dim=2, k=3, n_envs=2)
    other.load_state_dict(torch.load(path, weights_only=True))
    for key in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(other, key), getattr(buf, key)), key
    x, y = (b.sample(16, torch.Generator().manual_seed(1)) for b in (buf, other))
    assert all(torch.equal(u, v) for u, v in zip(x, y))
