"""Property-based tests (Hypothesis) of the replay buffers and the sum tree.

Every transition carries a unique id (its observation), so a plain Python model (a deque of the last
``capacity`` transitions per agent, in insertion order) says exactly what the ring buffer must hold, which
ids a sample may return, and what each n-step return must be.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlearn.buffers import PrioritizedReplayBuffer, ReplayBuffer, SumTree

SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def uid(t: int, env: int, agent: int, n_envs: int, k: int) -> int:
    """Unique id >= 1 of the transition stored by call ``t`` for ``env`` and ``agent`` (exact in float32)."""
    return 1 + (t * n_envs + env) * k + agent


class Model:
    """Reference: per agent, a deque of the last ``capacity`` transitions as dicts, oldest first."""

    def __init__(self, capacity: int, k: int, n_envs: int) -> None:
        self.capacity, self.n_envs = capacity, n_envs
        self.agents = [deque(maxlen=capacity) for _ in range(k)]
        self.count = 0  # transitions stored per agent so far (global index of the next one)

    def by_global(self, agent: int) -> dict[int, dict]:
        return {tr["g"]: tr for tr in self.agents[agent]}


def fill(buf: ReplayBuffer, model: Model, stores: int, k: int, n_envs: int, seed: int, p_end: float) -> None:
    """``stores`` calls of ``store`` with random rewards and episode ends; the model mirrors them."""
    rng = np.random.default_rng(seed)
    for t in range(stores):
        ids = np.array([[uid(t, e, a, n_envs, k) for e in range(n_envs)] for a in range(k)])
        rewards = rng.integers(-8, 9, size=(k, n_envs)).astype(np.float32) / 4  # exact in float32
        ends = rng.random((k, n_envs, 2)) < p_end
        term, trunc = ends[..., 0] & ~ends[..., 1], ends[..., 1]
        buf.store(ids[..., None].astype(np.float32), ids, rewards, -ids[..., None].astype(np.float32),
                  term.astype(np.float32), trunc.astype(np.float32))
        for a in range(k):
            for e in range(n_envs):
                model.agents[a].append({"g": model.count + e, "id": int(ids[a, e]), "env": e,
                                        "reward": float(rewards[a, e]), "term": bool(term[a, e]),
                                        "trunc": bool(trunc[a, e])})
        model.count += n_envs


def chronological(buf: ReplayBuffer, agent: int) -> list[int]:
    """Ids in the ring, oldest first."""
    ids = buf.obs[agent, :, 0].long().tolist()
    if buf.size < buf.capacity:
        return ids[: buf.size]
    return ids[buf.pos:] + ids[: buf.pos]


def nstep_reference(model: Model, agent: int, g: int, n_step: int, gamma: float) -> tuple[float, int, int, bool, bool]:
    """(return, newest id used, steps used m, terminated, truncated) for the transition with global index ``g``."""
    table = model.by_global(agent)
    first = table[g]
    total, used, last = 0.0, 0, first
    newest = model.count - 1
    # the same env's next steps are n_envs global indices apart (transitions are stored one per env per call)
    for j in range(n_step):
        gj = g + model.n_envs * j
        if gj > newest:
            break
        tr = table[gj]
        assert tr["env"] == first["env"]
        total += gamma ** j * tr["reward"]
        used, last = j + 1, tr
        if tr["term"] or tr["trunc"]:
            break
    return total, last["id"], used, last["term"], last["trunc"]


capacities = st.integers(1, 64)
n_envs_s = st.integers(1, 4)
ks = st.integers(1, 3)
stores_s = st.integers(0, 150)


@SETTINGS
@given(capacity=capacities, n_envs=n_envs_s, k=ks, stores=stores_s, batch=st.integers(1, 64),
       seed=st.integers(0, 2**31 - 1), p_end=st.sampled_from([0.0, 0.1, 0.5]))
def test_ring_buffer_matches_a_deque_of_the_last_capacity_transitions(capacity, n_envs, k, stores, batch, seed, p_end):
    buf = ReplayBuffer(capacity, 1, k=k, n_envs=n_envs)
    rounded = -(-capacity // n_envs) * n_envs
    assert buf.capacity == rounded and buf.capacity % n_envs == 0 and buf.capacity >= capacity
    model = Model(rounded, k, n_envs)
    fill(buf, model, stores, k, n_envs, seed, p_end)

    assert len(buf) == buf.size == min(stores * n_envs, rounded)
    assert buf.pos == (stores * n_envs) % rounded
    for a in range(k):
        assert chronological(buf, a) == [tr["id"] for tr in model.agents[a]]
        # every field of a slot belongs to the same transition
        for slot in range(buf.size):
            i = int(buf.obs[a, slot, 0])
            tr = next(tr for tr in model.agents[a] if tr["id"] == i)
            assert int(buf.actions[a, slot]) == i and int(buf.next_obs[a, slot, 0]) == -i
            assert float(buf.rewards[a, slot]) == tr["reward"]
            assert bool(buf.terminated[a, slot]) == tr["term"] and bool(buf.truncated[a, slot]) == tr["trunc"]

    if stores == 0:
        with pytest.raises(ValueError, match="empty"):
            buf.sample(batch)
        return
    gen = torch.Generator().manual_seed(seed)
    b = buf.sample(batch, generator=gen)
    for field in (b.obs, b.next_obs):
        assert field.shape == (k, batch, 1)
    for field in (b.actions, b.rewards, b.terminated, b.truncated, b.discounts, b.weights, b.indices):
        assert field.shape == (k, batch)
    assert torch.all(b.weights == 1)
    assert torch.all((b.indices >= 0) & (b.indices < buf.size))
    for a in range(k):
        own = {tr["id"] for tr in model.agents[a]}
        got = b.obs[a, :, 0].long().tolist()
        assert set(got) <= own, "a sample holds an id this agent does not currently store"
        assert all((i - 1) % k == a for i in got), "an agent sampled another agent's transition"
        assert b.actions[a].tolist() == got and (-b.next_obs[a, :, 0]).long().tolist() == got


@SETTINGS
@given(capacity=capacities, n_envs=n_envs_s, k=ks, stores=st.integers(1, 150), n_step=st.integers(1, 4),
       gamma=st.floats(0.05, 1.0) | st.just(1.0), seed=st.integers(0, 2**31 - 1),
       p_end=st.sampled_from([0.0, 0.15, 0.5]))
def test_nstep_returns_match_a_reference_computed_per_env_stream(capacity, n_envs, k, stores, n_step, gamma, seed,
                                                                  p_end):
    buf = ReplayBuffer(capacity, 1, k=k, n_envs=n_envs, n_step=n_step, gamma=gamma)
    model = Model(buf.capacity, k, n_envs)
    fill(buf, model, stores, k, n_envs, seed, p_end)

    # every stored slot, for every agent, then a random sample as well
    idx = torch.arange(buf.size).expand(k, buf.size).contiguous()
    full = buf.gather(idx, torch.ones(k, buf.size))
    gen = torch.Generator().manual_seed(seed)
    for b in (full, buf.sample(16, generator=gen)):
        for a in range(k):
            ids = {tr["id"]: tr["g"] for tr in model.agents[a]}
            for j in range(b.indices.shape[1]):
                i = int(b.obs[a, j, 0])
                assert i in ids, "sampled id not stored by this agent"
                ret, last_id, m, term, trunc = nstep_reference(model, a, ids[i], n_step, gamma)
                assert float(b.rewards[a, j]) == pytest.approx(ret, rel=1e-5, abs=1e-5)
                assert int(-b.next_obs[a, j, 0]) == last_id
                assert float(b.discounts[a, j]) == pytest.approx(gamma ** m, rel=1e-5, abs=1e-7)
                assert bool(b.terminated[a, j]) == term and bool(b.truncated[a, j]) == trunc
                assert int(b.actions[a, j]) == i


# ------------------------------------------------------------------------------------------- sum tree
priorities = st.one_of(st.just(0.0), st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False),
                       st.floats(1e-9, 1.0), st.integers(0, 10).map(float))


@st.composite
def tree_updates(draw):
    capacity, k = draw(st.integers(1, 64)), draw(st.integers(1, 3))
    updates = []
    for _ in range(draw(st.integers(0, 12))):
        m = draw(st.integers(1, min(capacity, 16)))
        idx = [draw(st.lists(st.integers(0, capacity - 1), min_size=m, max_size=m, unique=True)) for _ in range(k)]
        prio = [draw(st.lists(priorities, min_size=m, max_size=m)) for _ in range(k)]
        updates.append((np.array(idx), np.array(prio)))
    return capacity, k, updates


@SETTINGS
@given(tree_updates(), st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20))
def test_sumtree_total_is_the_sum_of_leaves_and_find_lands_in_the_right_range(spec, fractions):
    capacity, k, updates = spec
    tree = SumTree(capacity, k)
    leaves = np.zeros((k, capacity))
    for idx, prio in updates:
        tree.update(idx, prio)
        for a in range(k):
            leaves[a, idx[a]] = prio[a]
        assert np.array_equal(tree.leaves(), leaves)
        np.testing.assert_allclose(tree.total, leaves.sum(axis=1), rtol=1e-9, atol=1e-12)
        # every inner node is the sum of its two children, padding leaves stay zero
        inner = np.arange(1, tree.leaf0)
        assert np.array_equal(tree.tree[:, inner], tree.tree[:, 2 * inner] + tree.tree[:, 2 * inner + 1])
        assert not tree.tree[:, tree.leaf0 + capacity:].any()

    total = tree.total.copy()
    values = np.array([[f * total[a] for f in fractions] for a in range(k)])
    found = tree.find(values)
    assert found.shape == values.shape
    assert np.all((found >= 0) & (found < capacity))
    for a in range(k):
        if total[a] == 0:
            continue
        cum = np.concatenate([[0.0], np.cumsum(leaves[a])])
        for v, leaf in zip(values[a], found[a]):
            tol = 1e-9 * total[a]
            assert cum[leaf] - tol <= v < cum[leaf + 1] + tol, (v, leaf, cum)
            assert leaves[a, leaf] > 0, "find returned a leaf of zero priority"


@SETTINGS
@given(spec=tree_updates(), batch=st.integers(1, 200), seed=st.integers(0, 2**31 - 1))
def test_sumtree_stratified_sample_follows_priorities(spec, batch, seed):
    capacity, k, updates = spec
    tree = SumTree(capacity, k)
    for idx, prio in updates:
        tree.update(idx, prio)
    if not np.all(tree.total > 0):
        return
    idx = tree.sample(batch, np.random.default_rng(seed))
    assert idx.shape == (k, batch)
    leaves = tree.leaves()
    for a in range(k):
        assert np.all(leaves[a, idx[a]] > 0), "sampled a leaf of zero priority"
        assert np.all(np.diff(cumulative_position(leaves[a], idx[a])) >= 0)  # one draw per slice, in order
        # stratified: each leaf is drawn within 2 of batch * its share of the total
        counts = np.bincount(idx[a], minlength=capacity)
        expected = batch * leaves[a] / leaves[a].sum()
        assert np.all(np.abs(counts - expected) <= 2 + 1e-9), (counts, expected)


def cumulative_position(leaves: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(leaves)])[idx]


# ----------------------------------------------------------------------------------- prioritized buffer
@SETTINGS
@given(capacity=st.integers(1, 48), n_envs=n_envs_s, k=ks, stores=st.integers(1, 60),
       alpha=st.sampled_from([0.0, 0.3, 0.6, 1.0]) | st.floats(0.0, 1.0), beta=st.floats(0.0, 1.0),
       rounds=st.integers(0, 4), batch=st.integers(1, 64), seed=st.integers(0, 2**31 - 1))
def test_prioritized_probabilities_are_proportional_to_priority_to_the_alpha(capacity, n_envs, k, stores, alpha, beta,
                                                                              rounds, batch, seed):
    buf = PrioritizedReplayBuffer(capacity, 1, k=k, n_envs=n_envs, alpha=alpha, seed=seed)
    buf.beta = beta
    model = Model(buf.capacity, k, n_envs)
    raw = np.zeros((k, buf.capacity))  # the priority (before **alpha) of each slot, as the model tracks it
    max_p = np.ones(k)
    rng = np.random.default_rng(seed)
    done = 0
    for r in range(rounds + 1):
        share = stores // (rounds + 1) + (1 if r < stores % (rounds + 1) else 0)
        for _ in range(share):
            slots = (np.arange(n_envs) + buf.storage.pos) % buf.capacity
            fill_one(buf, model, done, k, n_envs)
            done += 1
            raw[:, slots] = max_p[:, None]
        if buf.size == 0:
            continue
        m = int(rng.integers(1, buf.size + 1))
        idx = np.stack([rng.choice(buf.size, m, replace=False) for _ in range(k)])
        td = rng.normal(0, 3, size=(k, m)) * (rng.random((k, m)) < 0.8)  # some exact zeros
        buf.update_priorities(torch.as_tensor(idx), torch.as_tensor(td, dtype=torch.float32))
        p = np.abs(td.astype(np.float32)).astype(np.float64) + buf.eps
        for a in range(k):
            raw[a, idx[a]] = p[a]
        max_p = np.maximum(max_p, p.max(axis=1))

    assert len(buf) == min(stores * n_envs, buf.capacity)
    stored = np.zeros(buf.capacity, dtype=bool)
    stored[: buf.size] = True
    expected = np.where(stored, raw, 0.0) ** np.where(stored, alpha, 1.0)
    np.testing.assert_allclose(buf.tree.leaves(), expected, rtol=1e-5, atol=1e-12)
    probs = expected / expected.sum(axis=1, keepdims=True)

    b = buf.sample(batch)
    idx = b.indices.numpy()
    for a in range(k):
        own = {tr["id"] for tr in model.agents[a]}
        assert set(b.obs[a, :, 0].long().tolist()) <= own
        assert np.all(stored[idx[a]]), "sampled a slot that holds no transition"
        # importance weights: (size * P(i))^-beta, normalised by the batch maximum
        w = (buf.size * probs[a, idx[a]]) ** (-beta)
        np.testing.assert_allclose(b.weights[a].numpy(), w / w.max(), rtol=1e-4, atol=1e-6)
        counts = np.bincount(idx[a], minlength=buf.capacity)
        assert np.all(np.abs(counts - batch * probs[a]) <= 2 + 1e-6), (counts, batch * probs[a])


def fill_one(buf: PrioritizedReplayBuffer, model: Model, t: int, k: int, n_envs: int) -> None:
    ids = np.array([[uid(t, e, a, n_envs, k) for e in range(n_envs)] for a in range(k)])
    zeros = np.zeros((k, n_envs), dtype=np.float32)
    buf.store(ids[..., None].astype(np.float32), ids, zeros, -ids[..., None].astype(np.float32), zeros, zeros)
    for a in range(k):
        for e in range(n_envs):
            model.agents[a].append({"g": model.count + e, "id": int(ids[a, e]), "env": e, "reward": 0.0,
                                    "term": False, "trunc": False})
    model.count += n_envs
