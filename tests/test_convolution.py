"""Numpy's gather-and-matmul convolutions (qlearn.convolution) against the network's torch forward:
the same features and the same filter and bias gradients, for one layer (MinAtar's) and for strided
layers stacked (where the gradient flows back through a convolution's input), K agents side by side."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qlearn.convolution import NumpyConv, patch_index
from qlearn.nets import StackedCNN


@pytest.mark.parametrize(
    "convs,shape,scale",
    [
        (((16, 3, 1),), (4, 10, 10), 1.0),
        (((8, 4, 2), (6, 3, 1)), (3, 12, 12), 1 / 255),
        (((5, 2, 2), (4, 2, 1), (3, 2, 1)), (2, 9, 9), 0.5),
    ],
)
@pytest.mark.parametrize("k", [1, 3])
def test_numpy_convolutions_equal_torch_forward_and_gradients(convs, shape, scale, k):
    net = StackedCNN(shape, 5, convs, (32,), seeds=range(k), scale=scale)
    x = torch.randint(0, 2 if scale == 1.0 else 256, (k, 7, *shape), dtype=torch.uint8)  # MinAtar: 0/1
    features = net.features(x)
    d_features = torch.randn_like(features, generator=None)
    features.backward(d_features)
    conv = NumpyConv(shape, convs, scale)
    arrays = net.conv_arrays()
    out, cache = conv.forward(arrays, x.numpy())
    np.testing.assert_allclose(out, features.detach().numpy(), rtol=1e-5, atol=1e-5)
    grads = [(np.full_like(w, np.nan), np.full_like(b, np.nan)) for w, b in arrays]  # every entry must be written
    conv.backward(arrays, cache, d_features.numpy(), grads)
    for (g_w, g_b), w, b in zip(grads, net.conv_weights, net.conv_biases):
        np.testing.assert_allclose(g_w, w.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(g_b, b.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_agents_features_depend_only_on_their_own_images_and_filters():
    net = StackedCNN((4, 10, 10), 3, ((16, 3, 1),), (8,), seeds=range(3))
    conv, arrays = net.numpy_conv(), net.conv_arrays()
    x = np.random.default_rng(0).integers(0, 2, (3, 4, 4, 10, 10)).astype(np.uint8)
    before = conv.forward(arrays, x)[0].copy()  # (the features live in a work array reused by the next call)
    x2 = x.copy()
    x2[1] = 1 - x2[1]
    after, _ = conv.forward(arrays, x2)
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert not np.allclose(after[1], before[1])


def test_patch_index_picks_each_window_in_filter_order():
    image = np.arange(2 * 4 * 5).reshape(2, 4, 5)
    index, (oh, ow) = patch_index((2, 4, 5), 2, 2, channels_last=False)
    assert (oh, ow) == (2, 2) and index.shape == (4, 2 * 2 * 2)
    np.testing.assert_array_equal(image.ravel()[index[3]], image[:, 2:4, 2:4].ravel())  # last window
    last = np.ascontiguousarray(image.transpose(1, 2, 0))  # the same image channel-last
    index_cl, _ = patch_index((2, 4, 5), 2, 2, channels_last=True)
    np.testing.assert_array_equal(last.ravel()[index_cl], image.ravel()[index])


def test_numpy_forward_of_the_network_equals_torch_forward():
    net = StackedCNN((4, 10, 10), 6, ((16, 3, 1),), (32,), seeds=range(2), dueling=True)
    x = torch.randint(0, 2, (2, 5, 4, 10, 10), dtype=torch.uint8)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward_numpy(x.numpy()), net(x).numpy(), rtol=1e-5, atol=1e-5)
    assert net.small and not StackedCNN((4, 84, 84), 6, ((32, 8, 4), (64, 4, 2), (64, 3, 1)), (512,)).small
