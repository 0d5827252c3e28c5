"""Per-agent random streams (qlearn/rng.py): independent of the group, the same bits in numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.rng import Stream


def test_an_agents_draws_do_not_depend_on_its_group():
    group, alone = Stream([3, 4, 5, 6], salt=7), Stream([5], salt=7)
    for shape in [(8,), (1, 2), (3, 5)]:  # a lone step's draws take the Python-int road, larger ones numpy
        np.testing.assert_array_equal(group.uniform(*shape)[2], alone.uniform(*shape)[0])
    assert group.count == alone.count == 8 + 2 + 15


def test_numpy_and_torch_draw_the_same_bits():
    for shape in [(1,), (2,), (64,), (4, 3)]:
        a, b = Stream([0, 1, 2**40], salt=1), Stream([0, 1, 2**40], salt=1)
        np.testing.assert_array_equal(a.uniform(*shape), b.uniform_torch(*shape).numpy())
        np.testing.assert_array_equal(a.integers(7, *shape), b.integers_torch(7, *shape).numpy())


def test_salts_and_seeds_give_different_streams():
    base = Stream([0], salt=1).uniform(100)
    assert not np.array_equal(base, Stream([0], salt=2).uniform(100))
    assert not np.array_equal(base, Stream([1], salt=1).uniform(100))


def test_draws_are_uniform():
    u = Stream([0], salt=5).uniform(200_000)[0]
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts = np.bincount(Stream([1], salt=5).integers(4, 100_000)[0], minlength=4) / 100_000
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    # consecutive draws are not correlated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_reserved_draws_computed_later_are_the_ones_uniform_would_give():
    full = Stream([1, 2, 3], salt=4).uniform(5, 2).reshape(3, -1)
    s = Stream([1, 2, 3], salt=4)
    start = s.reserve(5, 2)
    rows, cols = np.array([0, 2, 1, 2]), np.array([3, 9, 0, 0])
    np.testing.assert_array_equal(s.uniform_at(start, rows, cols), full[rows, cols])
    np.testing.assert_array_equal(s.uniform_at_torch(start, torch.as_tensor(rows), torch.as_tensor(cols)).numpy(),
                                  full[rows, cols])


def test_state_and_select_continue_the_stream():
    s = Stream([8, 9], salt=3)
    s.uniform(10)
    saved = s.state_dict()
    one = s.select(1)
    want = s.uniform(4)
    t = Stream([8, 9], salt=3)
    t.load_state_dict(saved)
    np.testing.assert_array_equal(t.uniform(4), want)
    np.testing.assert_array_equal(one.uniform(4)[0], want[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_draws_equal_the_cpu_ones():
    a, b = Stream([0, 5], salt=2), Stream([0, 5], salt=2, device="cuda")
    np.testing.assert_array_equal(a.uniform(33), b.uniform_torch(33).cpu().numpy())


def test_integers_never_reach_their_bound_even_at_the_largest_draw():
    """``floor(u * n)`` with u the largest double below 1 stays below n (so no clamp is needed)."""
    u = np.nextafter(1.0, 0.0)
    for n in [1, 2, 3, 4, 5, 7, 16, 18, 1000, 2**20 + 1, 2**31 - 1, 2**40 + 3]:
        assert int(np.floor(u * n)) == n - 1
