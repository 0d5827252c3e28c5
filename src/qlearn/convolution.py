"""Small convolutions in numpy, as a gather and a matrix product, with their backward pass.

A MinAtar-sized convolution (16 filters of 3x3 over a 10x10 state) is a few thousand multiply-adds per
sample; in torch on the CPU its call costs far more than that arithmetic, and so does gathering its
patches. Here each layer gathers the patches of every output position with one ``np.take`` on a fixed
index, multiplies them by the filters in one batched matrix product (K agents' filters stacked, as in
:class:`~qlearn.nets.StackedCNN`), and keeps what the backward pass needs. It computes the same function
as the network's torch forward (``F.conv2d`` with ``groups=K``, then the channel-major flatten), which
``tests/test_convolution.py`` checks, gradients included.

Layout: the first layer reads ``[K, B, C*H*W]`` in the observation's channel-first order; a layer's output
stays position-major ``[K, B, P, O]`` (P output positions, O filters), which the next layer's index reads
directly; the last one is transposed to torch's ``[K, B, O*P]`` order for the fully connected head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def work_array(store: dict, tag: object, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A work array kept in ``store`` under ``tag`` and reused while its shape and dtype hold: fresh
    megabyte arrays every step cost page faults that take longer than the arithmetic."""
    arr = store.get(tag)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = store[tag] = np.empty(shape, dtype=dtype)
    return arr


def patch_index(
    in_shape: tuple[int, int, int], kernel: int, stride: int, channels_last: bool
) -> tuple[np.ndarray, tuple[int, int]]:
    """``index[P, C*k*k]`` into a flattened ``(C, H, W)`` image (``(H, W, C)`` with ``channels_last``) picking
    each output position's patch in the order of a ``[out, C, k, k]`` filter; and the output ``(H', W')``."""
    c, h, w = in_shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    ci, ki, kj = (
        a.reshape(1, -1) for a in np.meshgrid(np.arange(c), np.arange(kernel), np.arange(kernel), indexing="ij")
    )
    oi, oj = (a.reshape(-1, 1) * stride for a in np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij"))
    y, x = oi + ki, oj + kj
    index = (y * w + x) * c + ci if channels_last else ci * h * w + y * w + x
    return index.astype(np.intp), (oh, ow)


class NumpyConv:
    """The convolutions of a :class:`~qlearn.nets.StackedCNN` (ReLU after each) in numpy.

    ``forward(weights, x)`` takes the layers' ``(weight[K, O, C, k, k], bias[K, O])`` arrays and pixels
    ``x[K, B, C, H, W]`` (any dtype, multiplied by ``scale``) and returns the flattened features
    ``[K, B, flat]`` and a cache; ``backward(weights, cache, d_features, grads)`` writes the filters' and
    biases' gradients into ``grads`` (arrays shaped like ``weights``)."""

    def __init__(self, in_shape: Sequence[int], convs: Sequence[tuple[int, int, int]], scale: float) -> None:
        shape = tuple(int(s) for s in in_shape)
        self.scale = float(scale)
        self.index: list[np.ndarray] = []
        for i, (out, kernel, stride) in enumerate(convs):
            index, (oh, ow) = patch_index(shape, int(kernel), int(stride), channels_last=i > 0)  # type: ignore[arg-type]
            self.index.append(index)
            shape = (int(out), oh, ow)
        self.positions = shape[1] * shape[2]

    @staticmethod
    def _filters(w: np.ndarray) -> np.ndarray:
        return w.reshape(w.shape[0], w.shape[1], -1)  # [K, O, C*k*k], a view

    def _buf(self, tag: object, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        return work_array(self.__dict__.setdefault("_ws", {}), tag, shape, dtype)

    def forward(
        self, weights: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, tag: str = ""
    ) -> tuple[np.ndarray, list]:
        """Features ``[K, B, flat]`` and the cache for :meth:`backward`, both in work arrays named by ``tag``
        (valid until the next forward with that tag)."""
        k, b = x.shape[:2]
        a = x.reshape(k, b, -1)
        cache = []
        for i, ((w, bias), index) in enumerate(zip(weights, self.index)):
            p, width = index.shape
            taken = np.take(a, index, axis=2, out=self._buf((tag, "take", i), (k, b, p, width), a.dtype))
            if taken.dtype == np.float32:
                patches = taken.reshape(k, b * p, width)
            else:  # the first layer's pixels: to float here (replay memory stays uint8)
                patches = self._buf((tag, "patches", i), (k, b * p, width))
                np.copyto(patches, taken.reshape(k, b * p, width), casting="unsafe")
            if i == 0 and self.scale != 1.0:
                patches *= np.float32(self.scale)
            out = self._filters(w).transpose(0, 2, 1)
            y = np.matmul(patches, out, out=self._buf((tag, "y", i), (k, b * p, out.shape[2])))  # [K, B*P, O]
            y += bias[:, None, :]
            np.maximum(y, 0.0, out=y)
            cache.append((patches, y))
            a = y.reshape(k, b, -1)  # position-major: what the next index reads
        y = cache[-1][1]
        o = y.shape[2]
        features = self._buf((tag, "features"), (k, b, o * self.positions))
        np.copyto(features.reshape(k, b, o, self.positions), y.reshape(k, b, self.positions, o).transpose(0, 1, 3, 2))
        return features, cache

    def backward(
        self,
        weights: Sequence[tuple[np.ndarray, np.ndarray]],
        cache: list,
        d_features: np.ndarray,
        grads: Sequence[tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """Gradients of the filters and biases, given the features' gradient ``d_features[K, B, flat]``."""
        k, b = d_features.shape[:2]
        out = weights[-1][0].shape[1]
        delta = self._buf(("delta", len(self.index) - 1), (k, b * self.positions, out))
        np.copyto(
            delta.reshape(k, b, self.positions, out),
            d_features.reshape(k, b, out, self.positions).transpose(0, 1, 3, 2),
        )
        for i in range(len(self.index) - 1, -1, -1):
            patches, y = cache[i]
            delta *= np.greater(y, 0.0, out=self._buf(("mask", i), y.shape, np.bool_))  # through the ReLU
            g_w, g_b = grads[i]
            np.matmul(delta.transpose(0, 2, 1), patches, out=self._filters(g_w))
            np.sum(delta, axis=1, out=g_b)
            if i:  # to the previous layer's output: each patch's gradient added back where it was taken from
                d_patches = np.matmul(delta, self._filters(weights[i][0]))  # [K, B*P, C*k*k]
                prev = cache[i - 1][1]
                size = prev.shape[1] * prev.shape[2] // b  # one sample's input
                where = (np.arange(k * b)[:, None, None] * size + self.index[i][None]).ravel()
                summed = np.bincount(where, weights=d_patches.ravel(), minlength=k * b * size)
                delta = summed.astype(np.float32).reshape(k, -1, prev.shape[2])
