"""Convolutional Q-networks in K-stacked form (qlearn.nets.StackedCNN): K agents in one grouped
convolution equal K separate PyTorch CNNs, outputs and gradients; the Nature and MinAtar shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qlearn.envs.encoding import make_encoder
from qlearn.nets import CONV_NETWORKS, StackedCNN, StackedMLP, make_q_network


def separate(net: StackedCNN, k: int, in_shape) -> nn.Sequential:
    """Agent ``k`` of ``net`` as a plain nn.Sequential with its weights copied in."""
    layers: list[nn.Module] = []
    c = in_shape[0]
    for w, b, stride in zip(net.conv_weights, net.conv_biases, net.strides):
        conv = nn.Conv2d(c, w.shape[1], w.shape[-1], stride=stride)
        conv.weight.data.copy_(w[k])
        conv.bias.data.copy_(b[k])
        layers += [conv, nn.ReLU()]
        c = w.shape[1]
    layers.append(nn.Flatten())
    ws, bs = list(net.head.weights), list(net.head.biases)
    for i, (w, b) in enumerate(zip(ws, bs)):
        lin = nn.Linear(w.shape[1], w.shape[2])
        lin.weight.data.copy_(w[k].T)
        lin.bias.data.copy_(b[k, 0])
        layers.append(lin)
        if i < len(ws) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    "name,in_shape,scale", [("minatar", (4, 10, 10), 1.0), ("nature", (4, 84, 84), 1 / 255)], ids=["minatar", "nature"]
)
def test_k_stacked_cnn_equals_k_separate_cnns_outputs_and_gradients(name, in_shape, scale):
    k, batch = 3, 5
    hidden = (128,) if name == "minatar" else (512,)
    net = StackedCNN(in_shape, 6, CONV_NETWORKS[name], hidden, seeds=[0, 1, 2], scale=scale)
    high = 2 if name == "minatar" else 256
    x = torch.randint(0, high, (k, batch, *in_shape), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    q = net(x)
    assert q.shape == (k, batch, 6)
    (q * torch.arange(1.0, 7.0)).sum().backward()
    for i in range(k):
        ref = separate(net, i, in_shape)
        qi = ref(x[i].float() * scale)
        torch.testing.assert_close(q[i], qi, rtol=1e-4, atol=1e-5)
        (qi * torch.arange(1.0, 7.0)).sum().backward()
        convs = [m for m in ref if isinstance(m, nn.Conv2d)]
        for w, conv in zip(net.conv_weights, convs):
            torch.testing.assert_close(w.grad[i], conv.weight.grad, rtol=1e-4, atol=1e-5)
        lins = [m for m in ref if isinstance(m, nn.Linear)]
        for w, lin in zip(net.head.weights, lins):
            torch.testing.assert_close(w.grad[i], lin.weight.grad.T, rtol=1e-4, atol=1e-5)


def test_agents_do_not_mix_and_start_from_their_own_seed():
    a = StackedCNN((4, 10, 10), 3, CONV_NETWORKS["minatar"], (32,), seeds=[5, 9])
    b = StackedCNN((4, 10, 10), 3, CONV_NETWORKS["minatar"], (32,), seeds=[9])
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa[1:2], pb)  # agent 9 starts the same alone as beside agent 5
    x = torch.randint(0, 2, (2, 4, 4, 10, 10), dtype=torch.uint8)
    y = x.clone()
    y[0] = 1 - y[0]  # change agent 0's input only
    torch.testing.assert_close(a(x)[1], a(y)[1])


def test_dueling_cnn_head_is_value_plus_centred_advantage():
    net = StackedCNN((4, 10, 10), 3, CONV_NETWORKS["minatar"], (16,), seeds=[0], dueling=True)
    x = torch.randint(0, 2, (1, 7, 4, 10, 10), dtype=torch.uint8)
    q = net(x)
    out = net.head  # computes V + A - mean(A) on the convolution's features
    hidden = torch.relu(torch.baddbmm(out.biases[0], net.features(x), out.weights[0]))
    raw = torch.baddbmm(out.biases[1], hidden, out.weights[1])
    value, adv = raw[..., :1], raw[..., 1:]
    torch.testing.assert_close(q, value + adv - adv.mean(-1, keepdim=True))


def test_network_auto_picks_by_observation():
    import gymnasium as gym

    atari = make_encoder(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), stack=4)
    minatar = make_encoder(gym.spaces.Box(0, 1, (6, 10, 10), np.uint8))
    vec = make_encoder(gym.spaces.Box(-1, 1, (4,), np.float32))
    assert atari.image and atari.scale == pytest.approx(1 / 255) and atari.stack == 4
    assert minatar.scale == 1.0
    n = make_q_network(atari, 6, "auto", (512,), [0], False)
    assert isinstance(n, StackedCNN) and n.flat == 64 * 7 * 7  # the Nature network's 3136 features
    m = make_q_network(minatar, 6, "auto", (128,), [0], False)
    assert isinstance(m, StackedCNN) and m.flat == 16 * 8 * 8
    assert isinstance(make_q_network(vec, 2, "auto", (8,), [0], False), StackedMLP)
    with pytest.raises(ValueError, match="images"):
        make_q_network(vec, 2, "nature", (8,), [0], False)
    with pytest.raises(ValueError, match="images"):
        make_q_network(atari, 2, "mlp", (8,), [0], False)
