"""StackedMLP: K independent agents in stacked tensors, per-agent init, weights I/O, clipping, Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.gradients import clip_grad_norm_per_agent, per_agent_grad_norm
from qlearn.nets import StackedMLP


def _x(k: int, b: int = 5, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(k, b, d, generator=torch.Generator().manual_seed(seed))


def test_forward_shape():
    net = StackedMLP(3, 4, (8, 6), seeds=(1, 2, 3))
    assert net.k == 3
    assert net(_x(3)).shape == (3, 5, 4)
    assert [tuple(w.shape) for w in net.weights] == [(3, 3, 8), (3, 8, 6), (3, 6, 4)]
    assert [tuple(b.shape) for b in net.biases] == [(3, 1, 8), (3, 1, 6), (3, 1, 4)]


def test_forward_matches_plain_mlp_per_agent():
    net = StackedMLP(3, 2, (4,), seeds=(0, 1))
    x = _x(2)
    out = net(x)
    for k in range(2):
        w1, b1, w2, b2 = (torch.as_tensor(a) for a in net.get_weights(k))
        ref = torch.relu(x[k] @ w1 + b1) @ w2 + b2
        torch.testing.assert_close(out[k], ref)


def test_agents_are_independent_of_each_others_inputs_and_weights():
    net = StackedMLP(3, 4, (8, 8), seeds=(0, 1, 2))
    x = _x(3)
    before = net(x).detach()
    x2 = x.clone()
    x2[1] += 10.0
    after_input = net(x2).detach()
    assert not torch.allclose(after_input[1], before[1])
    torch.testing.assert_close(after_input[[0, 2]], before[[0, 2]], rtol=0, atol=0)
    with torch.no_grad():
        for w in net.weights:
            w[1].mul_(-3.0)
        for b in net.biases:
            b[1].add_(1.0)
    after_weights = net(x).detach()
    assert not torch.allclose(after_weights[1], before[1])
    torch.testing.assert_close(after_weights[[0, 2]], before[[0, 2]], rtol=0, atol=0)


def test_agent_init_depends_only_on_its_own_seed():
    alone = StackedMLP(3, 4, (8, 8), seeds=(5,))
    trio = StackedMLP(3, 4, (8, 8), seeds=(4, 5, 6))
    for a, b in zip(alone.get_weights(0), trio.get_weights(1)):
        np.testing.assert_array_equal(a, b)
    # ... and different seeds give different weights.
    assert not np.array_equal(trio.get_weights(0)[0], trio.get_weights(1)[0])
    x = _x(1)
    torch.testing.assert_close(alone(x)[0], trio(x.expand(3, -1, -1).contiguous())[1])


def test_init_is_within_linear_bounds():
    net = StackedMLP(16, 4, (64,), seeds=(0, 1))
    for w, b in zip(net.weights, net.biases):
        bound = 1 / np.sqrt(w.shape[1])
        assert w.abs().max() <= bound and b.abs().max() <= bound
        assert w.abs().max() > 0.5 * bound  # actually spread over the range, not all near zero


def test_get_set_weights_round_trip():
    src = StackedMLP(3, 2, (4, 5), seeds=(7,))
    dst = StackedMLP(3, 2, (4, 5), seeds=(1, 2, 3))
    untouched = [dst.get_weights(0), dst.get_weights(2)]
    arrays = src.get_weights(0)
    assert [a.shape for a in arrays] == [(3, 4), (4,), (4, 5), (5,), (5, 2), (2,)]
    dst.set_weights(arrays, agent=1)
    for a, b in zip(dst.get_weights(1), arrays):
        np.testing.assert_array_equal(a, b)
    for k, before in zip((0, 2), untouched):
        for a, b in zip(dst.get_weights(k), before):
            np.testing.assert_array_equal(a, b)
    x = _x(1)
    torch.testing.assert_close(dst(x.expand(3, -1, -1).contiguous())[1], src(x)[0])


def test_get_weights_returns_copies():
    net = StackedMLP(3, 2, (4,), seeds=(0,))
    arrays = net.get_weights()
    arrays[0][:] = 99.0
    assert net.weights[0].detach().abs().max() < 99.0


def test_set_weights_shape_errors():
    net = StackedMLP(3, 2, (4,), seeds=(0,))
    arrays = net.get_weights()
    with pytest.raises(ValueError, match="expected 4 arrays"):
        net.set_weights(arrays[:3])
    bad = list(arrays)
    bad[0] = np.zeros((4, 3))  # transposed
    with pytest.raises(ValueError, match="layer 0"):
        net.set_weights(bad)
    bad = list(arrays)
    bad[3] = np.zeros(3)  # wrong output bias size
    with pytest.raises(ValueError, match="layer 1"):
        net.set_weights(bad)


def _set_grads(net: StackedMLP, scale_per_agent: list[float]) -> None:
    for p in net.parameters():
        g = torch.ones_like(p)
        for k, s in enumerate(scale_per_agent):
            g[k] *= s
        p.grad = g


def test_per_agent_grad_norm():
    net = StackedMLP(2, 1, (3,), seeds=(0, 1))
    _set_grads(net, [1.0, 2.0])
    n_params = sum(p[0].numel() for p in net.parameters())  # per agent: 2*3 + 3 + 3*1 + 1 = 13
    assert n_params == 13
    norms = per_agent_grad_norm(list(net.parameters()))
    torch.testing.assert_close(norms, torch.tensor([np.sqrt(13), 2 * np.sqrt(13)], dtype=torch.float32))


def test_grad_clip_scales_only_the_agent_over_the_limit():
    net = StackedMLP(2, 1, (3,), seeds=(0, 1, 2))
    # norms: sqrt(13) * [0.1, 10, 0.5] = [0.36, 36.1, 1.80]; limit 5 only touches agent 1
    _set_grads(net, [0.1, 10.0, 0.5])
    params = list(net.parameters())
    before = [p.grad.clone() for p in params]
    norms = clip_grad_norm_per_agent(params, max_norm=5.0)
    torch.testing.assert_close(norms, torch.tensor([0.1, 10.0, 0.5]) * float(np.sqrt(13)))
    for p, g in zip(params, before):
        torch.testing.assert_close(p.grad[0], g[0], rtol=0, atol=0)
        torch.testing.assert_close(p.grad[2], g[2], rtol=0, atol=0)
        assert torch.all(p.grad[1].abs() < g[1].abs())
    after = per_agent_grad_norm(params)
    assert after[1].item() == pytest.approx(5.0, rel=1e-5)
    assert after[0].item() == pytest.approx(norms[0].item())


def _train(net: StackedMLP, xs: torch.Tensor, ys: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = ((net(xs) - ys) ** 2).mean(dim=(1, 2)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_one_adam_over_stacked_params_equals_separate_adams():
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(2, 16, 3, generator=gen)
    ys = torch.randn(2, 16, 2, generator=gen)
    stacked = StackedMLP(3, 2, (8, 8), seeds=(10, 11))
    singles = [StackedMLP(3, 2, (8, 8), seeds=(10,)), StackedMLP(3, 2, (8, 8), seeds=(11,))]
    _train(stacked, xs, ys, 20)
    for k, single in enumerate(singles):
        _train(single, xs[k:k + 1], ys[k:k + 1], 20)
    moved = False
    for k, single in enumerate(singles):
        init = StackedMLP(3, 2, (8, 8), seeds=(10 + k,)).get_weights(0)
        for a, b, c in zip(stacked.get_weights(k), single.get_weights(0), init):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
            moved |= not np.allclose(a, c)
    assert moved  # training really changed the weights


def test_no_hidden_layer_is_linear_and_on_one_hot_states_is_a_q_table():
    from qlearn import DQNAgent, DQNConfig, make_env

    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(hidden=()), seed=0)
    w, b = agent.net.get_weights()
    assert w.shape == (16, 4)
    np.testing.assert_allclose(agent.q_table(), w + b, rtol=1e-6)
    x = torch.randn(1, 5, 16)
    np.testing.assert_allclose(agent.net(x).detach().numpy()[0], x[0].numpy() @ w + b, rtol=1e-5, atol=1e-6)
