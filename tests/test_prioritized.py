"""Prioritized replay: the sum tree, proportional sampling, priorities, IS weights, and the agent's use.

Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from qlearn.agents.dqn import DQNAgent
from qlearn.buffers import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from qlearn.config import DQNConfig
from qlearn.envs import make_env
from helpers import play as _play

# ------------------------------------------------------------------ SumTree


def _tree(priorities, capacity=None) -> SumTree:
    p = np.atleast_2d(np.asarray(priorities, dtype=float))  # [K, n]
    tree = SumTree(capacity or p.shape[1], k=p.shape[0])
    tree.update(np.broadcast_to(np.arange(p.shape[1]), p.shape), p)
    return tree


def test_sumtree_totals_and_inner_nodes():
    # leaves 1, 2, 3, 4 -> inner nodes (1+2)=3 and (3+4)=7 -> root 10
    t = _tree([1.0, 2.0, 3.0, 4.0])
    assert t.leaf0 == 4
    assert t.total.tolist() == [10.0]
    assert t.tree[0, 1:4].tolist() == [10.0, 3.0, 7.0]
    assert t.leaves().tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_sumtree_find_on_hand_example():
    # Cumulative boundaries 1, 3, 6, 10: leaf 0 owns [0, 1), leaf 1 [1, 3), leaf 2 [3, 6), leaf 3 [6, 10).
    t = _tree([1.0, 2.0, 3.0, 4.0])
    values = [[0.5, 1.0, 5.9, 9.99, 0.0, 0.999, 2.999, 3.0, 6.0]]
    assert t.find(values).tolist() == [[0, 1, 2, 3, 0, 0, 1, 2, 3]]


def test_sumtree_update_propagates_to_root():
    # leaf 1: 2 -> 10: node 2 becomes 1 + 10 = 11, root 11 + 7 = 18; boundaries now 1, 11, 14, 18
    t = _tree([1.0, 2.0, 3.0, 4.0])
    t.update(np.array([[1]]), np.array([[10.0]]))
    assert t.total.tolist() == [18.0]
    assert t.tree[0, 1:4].tolist() == [18.0, 11.0, 7.0]
    assert t.find([[0.5, 10.5, 11.0, 13.9, 14.0]]).tolist() == [[0, 1, 2, 2, 3]]
    # setting a leaf to 0 removes it from the draw: boundaries 1, 1, 4, 8 -> value 1.0 lands on leaf 2
    t.update(np.array([[1]]), np.array([[0.0]]))
    assert t.total.tolist() == [8.0]
    assert t.find([[0.99, 1.0, 3.99, 4.0]]).tolist() == [[0, 2, 2, 3]]


def test_sumtree_agents_are_independent():
    # agent 0: 1, 2, 3, 4 (boundaries 1, 3, 6, 10); agent 1: 4, 3, 2, 1 (boundaries 4, 7, 9, 10)
    t = _tree([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert t.total.tolist() == [10.0, 10.0]
    # 3.5 -> agent 0: leaf 2 ([3, 6)); agent 1: leaf 0 ([0, 4)).  8.5 -> agent 0: leaf 3; agent 1: leaf 2
    assert t.find([[3.5, 8.5], [3.5, 8.5]]).tolist() == [[2, 3], [0, 2]]
    # update agent 0's leaf 0 to 5; agent 1 rewrites its leaf 3 with its own value: agent 1 unchanged
    t.update(np.array([[0], [3]]), np.array([[5.0], [1.0]]))
    assert t.total.tolist() == [14.0, 10.0]
    assert t.leaves().tolist() == [[5.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]]


@pytest.mark.parametrize("capacity, leaf0", [(1, 1), (3, 4), (5, 8), (6, 8), (9, 16)])
def test_sumtree_non_power_of_two_capacity(capacity, leaf0):
    t = SumTree(capacity)
    assert t.leaf0 == leaf0
    assert t.leaves().shape == (1, capacity)
    p = np.arange(1.0, capacity + 1)  # 1, 2, ..., capacity; total capacity*(capacity+1)/2
    t.update(np.arange(capacity)[None], p[None])
    total = capacity * (capacity + 1) / 2
    assert t.total.tolist() == [total]
    # The last leaf owns [total - capacity, total); padding leaves (all 0) are never returned.
    assert t.find([[total - capacity, total - 1e-9, total - capacity - 1e-9]]).tolist() == [
        [capacity - 1, capacity - 1, max(capacity - 2, 0)]]
    assert t.tree[0, leaf0 + capacity:].sum() == 0.0


def test_sumtree_capacity_five_hand_example():
    # leaves 1, 1, 1, 1, 6 over 8 leaf slots: boundaries 1, 2, 3, 4, 10
    t = _tree([1.0, 1.0, 1.0, 1.0, 6.0], capacity=5)
    assert t.total.tolist() == [10.0]
    assert t.find([[0.5, 3.5, 4.0, 9.99]]).tolist() == [[0, 3, 4, 4]]


def test_sumtree_sampling_is_proportional():
    # priorities 1, 2, 3, 4 -> probabilities 0.1, 0.2, 0.3, 0.4; 2000 stratified batches of 8 = 16000 draws.
    t = _tree([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(2000):
        counts += np.bincount(t.sample(8, rng)[0], minlength=4)
    expected = 16000 * np.array([0.1, 0.2, 0.3, 0.4])
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_sumtree_stratified_batch_is_exact_on_aligned_boundaries():
    # total 10, batch 40: each stratum is 0.25 wide and the boundaries 1, 3, 6 are multiples of 0.25,
    # so leaf i gets exactly 40 * p_i / 10 draws: 4, 8, 12, 16 whatever the random offsets.
    t = _tree([1.0, 2.0, 3.0, 4.0])
    idx = t.sample(40, np.random.default_rng(5))
    assert np.bincount(idx[0], minlength=4).tolist() == [4, 8, 12, 16]


# ------------------------------------------------------------------ PrioritizedReplayBuffer


def _per(n: int, k: int = 1, capacity: int = 8, **kw) -> PrioritizedReplayBuffer:
    """A buffer holding n one-env transitions whose obs, action and reward are the slot number."""
    buf = PrioritizedReplayBuffer(capacity, obs_dim=1, k=k, **kw)
    for i in range(n):
        _put(buf, i, k)
    return buf


def _put(buf, i: float, k: int = 1) -> np.ndarray:
    o = torch.full((k, 1, 1), float(i))
    return buf.store(o, torch.full((k, 1), int(i)), torch.full((k, 1), float(i)), o + 1, torch.zeros(k, 1))


def test_new_transitions_get_max_priority():
    # alpha = 0.5, eps = 1: the first transitions get 1 ** 0.5 = 1.
    buf = _per(2, alpha=0.5, eps=1.0)
    assert buf.tree.leaves()[0, :3].tolist() == [1.0, 1.0, 0.0]
    # td -3 and 8: p = |td| + 1 = 4 and 9 -> priorities 4 ** 0.5 = 2 and 9 ** 0.5 = 3; max p is now 9
    buf.update_priorities(torch.tensor([[0, 1]]), torch.tensor([[-3.0, 8.0]]))
    assert buf.tree.leaves()[0, :2].tolist() == [2.0, 3.0]
    assert buf.max_priority.tolist() == [9.0]
    # a new transition gets the largest priority seen: 9 ** 0.5 = 3
    assert _put(buf, 2).tolist() == [2]
    assert buf.tree.leaves()[0, :3].tolist() == [2.0, 3.0, 3.0]
    # a smaller TD error lowers that transition (td 0 -> (0 + 1) ** 0.5 = 1) but not the max
    buf.update_priorities(torch.tensor([[1]]), torch.tensor([[0.0]]))
    assert buf.tree.leaves()[0, :3].tolist() == [2.0, 1.0, 3.0]
    assert buf.max_priority.tolist() == [9.0]
    _put(buf, 3)
    assert buf.tree.leaves()[0, :4].tolist() == [2.0, 1.0, 3.0, 3.0]
    assert buf.tree.total.tolist() == [9.0]


def test_update_priorities_with_td_errors():
    # alpha 0.5, eps 1e-6 (default): td [-4, 0, 2.25] -> (|td| + 1e-6) ** 0.5 ~ [2, 0.001, 1.5]
    buf = _per(3, alpha=0.5)
    buf.update_priorities(torch.tensor([[2, 0, 1]]), torch.tensor([[2.25, -4.0, 0.0]]))
    np.testing.assert_allclose(buf.tree.leaves()[0, :3], [(4.0 + 1e-6) ** 0.5, 1e-3, (2.25 + 1e-6) ** 0.5])
    np.testing.assert_allclose(buf.tree.total, [2.0 + 0.001 + 1.5], rtol=1e-6)


def test_update_priorities_per_agent():
    # K = 2, alpha 1, eps 0: each agent's td sets its own tree and its own max priority
    buf = _per(3, k=2, alpha=1.0, eps=0.0)
    buf.update_priorities(torch.tensor([[0, 1], [2, 0]]), torch.tensor([[5.0, 2.0], [0.5, 3.0]]))
    assert buf.tree.leaves()[:, :3].tolist() == [[5.0, 2.0, 1.0], [3.0, 1.0, 0.5]]
    assert buf.max_priority.tolist() == [5.0, 3.0]
    _put(buf, 3, k=2)
    assert buf.tree.leaves()[:, 3].tolist() == [5.0, 3.0]


def _hand_weighted_buffer(beta: float) -> PrioritizedReplayBuffer:
    # alpha 1, eps 0, td 1, 2, 3, 4 -> priorities 1, 2, 3, 4; P = 0.1, 0.2, 0.3, 0.4; N = 4
    buf = _per(4, alpha=1.0, eps=0.0)
    buf.update_priorities(torch.tensor([[0, 1, 2, 3]]), torch.tensor([[1.0, -2.0, 3.0, -4.0]]))
    buf.beta = beta
    return buf


@pytest.mark.parametrize("beta, expected", [
    # beta 1: (N P)^-1 = 1/0.4, 1/0.8, 1/1.2, 1/1.6 = 2.5, 1.25, 0.8333, 0.625; / max 2.5 -> 1, 1/2, 1/3, 1/4
    (1.0, [1.0, 0.5, 1 / 3, 0.25]),
    # beta 0.5: square roots of those -> 1, 0.7071, 0.5774, 0.5
    (0.5, [1.0, 0.5 ** 0.5, (1 / 3) ** 0.5, 0.5]),
    # beta 0: no correction -> all ones
    (0.0, [1.0, 1.0, 1.0, 1.0]),
])
def test_importance_weights_on_hand_example(beta, expected):
    buf = _hand_weighted_buffer(beta)
    b = buf.sample(40)
    # stratified: strata 0.25 wide, boundaries 1, 3, 6 aligned -> exactly 4, 8, 12, 16 draws of slots 0..3
    assert np.bincount(b.indices[0].numpy(), minlength=4).tolist() == [4, 8, 12, 16]
    table = torch.tensor(expected)
    torch.testing.assert_close(b.weights, table[b.indices])
    # the rows are those slots' transitions
    assert torch.equal(b.rewards, b.indices.float())
    assert torch.equal(b.actions, b.indices)


def test_alpha_zero_is_uniform():
    # alpha 0: every priority is p ** 0 = 1 whatever the TD error; P = 1/4, N P = 1 -> weights 1 at any beta
    buf = _per(4, alpha=0.0)
    buf.update_priorities(torch.tensor([[0, 1, 2, 3]]), torch.tensor([[0.1, 1.0, 10.0, 100.0]]))
    assert buf.tree.leaves()[0, :4].tolist() == [1.0, 1.0, 1.0, 1.0]
    buf.beta = 1.0
    b = buf.sample(40)
    assert np.bincount(b.indices[0].numpy(), minlength=4).tolist() == [10, 10, 10, 10]
    assert torch.equal(b.weights, torch.ones(1, 40))


def test_prioritized_sampling_frequencies_follow_priorities():
    # priorities 1, 2, 3, 4 at alpha 1 -> P = 0.1, 0.2, 0.3, 0.4; 2000 batches of 8 (seeded)
    buf = _hand_weighted_buffer(0.4)
    counts = np.zeros(4)
    for _ in range(2000):
        counts += np.bincount(buf.sample(8).indices[0].numpy(), minlength=4)
    expected = 16000 * np.array([0.1, 0.2, 0.3, 0.4])
    assert ((counts - expected) ** 2 / expected).sum() < 16.27  # chi-square, 3 dof, p = 0.001


def test_prioritized_never_samples_empty_slots():
    buf = _per(3, capacity=10)
    b = buf.sample(300)
    assert set(b.indices.flatten().tolist()) == {0, 1, 2}
    assert len(buf) == 3


def test_prioritized_agents_sample_independently():
    # eps 0 and td 0 give priority 0: agent 0 keeps only slot 0 (leaves 1, 0, 0), agent 1 only slot 2 (0, 0, 1)
    buf = _per(3, k=2, alpha=1.0, eps=0.0)
    buf.update_priorities(torch.tensor([[1, 2], [0, 1]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]]))
    b = buf.sample(50)
    assert set(b.indices[0].tolist()) == {0}
    assert set(b.indices[1].tolist()) == {2}


def test_prioritized_state_dict_round_trip():
    buf = _hand_weighted_buffer(1.0)
    other = PrioritizedReplayBuffer(8, obs_dim=1, alpha=1.0, eps=0.0)
    other.load_state_dict(buf.state_dict())
    assert other.tree.leaves().tolist() == buf.tree.leaves().tolist()
    assert other.tree.total.tolist() == [10.0]
    assert other.max_priority.tolist() == [4.0]
    assert (other.size, other.storage.pos) == (4, 4)


def test_uniform_buffer_ignores_priority_updates():
    buf = ReplayBuffer(4, obs_dim=1)
    assert buf.update_priorities(torch.tensor([[0]]), torch.tensor([[1.0]])) is None


# ------------------------------------------------------------------ DQNAgent with prioritized replay


def _per_agent(**cfg) -> tuple[DQNAgent, object]:
    env = make_env("FrozenLake-v1")
    base = dict(hidden=(16,), batch_size=16, buffer_size=500, learning_starts=10, train_freq=1, prioritized=True)
    return DQNAgent.for_env(env, DQNConfig(**{**base, **cfg}), seed=0), env



def test_agent_uses_prioritized_buffer_and_anneals_beta():
    # per_beta 0.4 -> 1 over 200 env steps: beta = 0.4 + 0.6 * steps / 200, set before each sample
    agent, env = _per_agent(per_beta=0.4, per_beta_steps=200, per_alpha=0.7)
    assert isinstance(agent.buffer, PrioritizedReplayBuffer)
    assert agent.buffer.alpha == 0.7
    _play(agent, env, 50)  # last train step at steps = 50: 0.4 + 0.6 * 0.25 = 0.55
    assert agent.buffer.beta == pytest.approx(0.55)
    _play(agent, env, 50, seed=1)  # steps 100: 0.4 + 0.3 = 0.7
    assert agent.buffer.beta == pytest.approx(0.7)
    _play(agent, env, 150, seed=2)  # steps 250 > 200: stays at 1
    assert agent.buffer.beta == pytest.approx(1.0)
    env.close()


def test_train_step_sets_priorities_of_sampled_transitions_from_td_errors():
    agent, env = _per_agent(per_alpha=0.5, double=True, gamma=0.9, max_grad_norm=0.0)
    _play(agent, env, 9)  # 9 < learning_starts: stored, not trained
    assert agent.updates == 0
    assert agent.buffer.tree.leaves()[0, :9].tolist() == [1.0] * 9  # max priority 1 ** 0.5
    seen = {}
    sample = agent.buffer.sample

    def spy(batch_size, generator=None):
        seen["batch"] = sample(batch_size, generator)
        return seen["batch"]

    agent.buffer.sample = spy
    before = agent.buffer.tree.leaves().copy()
    net0, target0 = copy.deepcopy(agent.net), copy.deepcopy(agent.target)  # the networks before the step
    loss = agent.train_step()
    b = agent.decode(seen["batch"])  # discrete states are stored as numbers; the networks see one-hot rows
    with torch.no_grad():  # the TD errors the step saw: Double DQN, one-step, gamma 0.9
        q = net0(b.obs).gather(2, b.actions.unsqueeze(2)).squeeze(2)
        best = net0(b.next_obs).argmax(-1, keepdim=True)
        v = target0(b.next_obs).gather(-1, best).squeeze(-1)
        y = b.rewards + 0.9 * (1 - b.terminated) * v
    # the loss is the IS-weighted mean of squared errors
    torch.testing.assert_close(loss, ((q - y) ** 2 * b.weights).mean(1))
    after = agent.buffer.tree.leaves()
    expected = (np.abs((q - y).numpy()) + 1e-6) ** 0.5
    np.testing.assert_allclose(after[0, b.indices[0].numpy()], expected[0], rtol=1e-5)
    untouched = np.setdiff1d(np.arange(500), b.indices[0].numpy())
    assert np.array_equal(after[0, untouched], before[0, untouched])
    assert not np.allclose(after[0, b.indices[0].numpy()], 1.0)  # priorities of sampled transitions changed
    env.close()


def test_prioritized_agent_learns_and_saves(tmp_path):
    agent, env = _per_agent(n_step=3)
    _play(agent, env, 200)
    assert agent.updates == 191
    assert np.isfinite(agent.metrics()["loss"])
    path = agent.save(tmp_path / "per.pt", include_buffer=True)
    back = DQNAgent.load(path, env=env)
    assert back.config.prioritized and back.config.n_step == 3
    np.testing.assert_array_equal(back.q_table(), agent.q_table())
    np.testing.assert_array_equal(back.buffer.tree.leaves(), agent.buffer.tree.leaves())
    env.close()
