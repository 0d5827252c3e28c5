"""Q-networks with K independent agents' weights stacked in one set of tensors.

A layer holds ``weight[K, in, out]`` and ``bias[K, 1, out]`` and maps ``x[K, B, in]`` to ``[K, B, out]``
with one batched matrix product. Small networks are overhead-bound (one gradient step of a 64x64 MLP
costs ~0.6 ms whatever the batch), so K agents in one call cost little more than one. Agents never
mix: each agent's output depends only on its own slice, the loss is a sum over agents, and Adam works
element by element, so one optimiser over the stacked tensors is K independent optimisers.

A lone network is K=1. :meth:`StackedMLP.get_weights` / :meth:`set_weights` give the Keras-style
per-layer ``[w, b]`` arrays of one agent, as in the course's perceptron exercise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qlearn.convolution import NumpyConv
from qlearn.noisy import AgentNoise, sigma_init


@dataclass(frozen=True)
class Distribution:
    """A distributional head: ``kind`` ``c51`` (``n`` atoms evenly spaced on [v_min, v_max]) or ``qr``
    (``n`` quantiles)."""

    kind: str
    n: int
    v_min: float = 0.0
    v_max: float = 1.0

    def support(self) -> torch.Tensor:
        """C51's atoms ``z_i``, ``v_min`` to ``v_max``."""
        return torch.linspace(self.v_min, self.v_max, self.n)


class StackedMLP(nn.Module):
    """K independent MLPs ``in -> hidden... -> out`` with ReLU, evaluated together.

    With ``dueling=True`` the last layer gives ``V(s)`` and ``A(s, a)``, combined as
    ``Q = V + A - mean(A)`` (Wang et al. 2016): the value of a state is learned from every action taken in it.

    Each agent is initialised like ``nn.Linear`` (uniform in ``±1/sqrt(fan_in)``) from its own seed, so
    agent ``k`` starts the same whether it is trained alone or beside others.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        seeds: Sequence[int] = (0,),
        dueling: bool = False,
        dist: Distribution | None = None,
        sigma0: float | None = None,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.dueling, self.dist, self.layer_norm = dueling, dist, layer_norm
        self.n_out, self.atoms = out_dim, dist.n if dist is not None else 1
        # A dueling head has one extra output, the state value V(s), beside the advantages A(s, a);
        # a distributional head has ``atoms`` outputs for each.
        self.sizes = [in_dim, *hidden, (out_dim + int(dueling)) * self.atoms]
        if dist is not None and dist.kind == "c51":
            self.register_buffer("atom_values", dist.support())
        self.k = len(seeds)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.weights.append(nn.Parameter(torch.empty(self.k, fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(self.k, 1, fan_out)))
        self.reset_parameters(seeds)
        # Plain tuple for the hot path: indexing a ParameterList costs more than the matmul here.
        self._layers = tuple(zip(self.weights, self.biases))
        # LayerNorm after every hidden layer (PQN's stabiliser), each agent with its own gain and shift.
        self.norms: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        if layer_norm:
            self.ln_gains = nn.ParameterList(nn.Parameter(torch.ones(self.k, 1, h)) for h in hidden)
            self.ln_shifts = nn.ParameterList(nn.Parameter(torch.zeros(self.k, 1, h)) for h in hidden)
            self.norms = tuple(zip(self.ln_gains, self.ln_shifts))
        self.noise: AgentNoise | None = None  # noisy layers (sigma0 given): learned noise scales per weight
        if sigma0 is not None:
            self.noise = AgentNoise(seeds)
            self.sigma_weights = nn.ParameterList(
                nn.Parameter(torch.full_like(w, sigma_init(w.shape[1], sigma0))) for w in self.weights
            )
            self.sigma_biases = nn.ParameterList(
                nn.Parameter(torch.full_like(b, sigma_init(w.shape[1], sigma0)))
                for w, b in zip(self.weights, self.biases)
            )

    @property
    def layers(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """``(weight[K, in, out], bias[K, 1, out])`` per layer, input first (for backends such as the numpy step)."""
        return self._layers

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int]) -> None:
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed))
            for w, b in zip(self.weights, self.biases):
                bound = 1.0 / math.sqrt(w.shape[1])
                w[k].copy_(torch.rand(w.shape[1:], generator=gen) * 2 * bound - bound)
                b[k].copy_(torch.rand(b.shape[1:], generator=gen) * 2 * bound - bound)

    def _noisy_layers(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        assert self.noise is not None
        return tuple(
            self.noise.layer(w, sw, b, sb)
            for (w, b), sw, sb in zip(self._layers, self.sigma_weights, self.sigma_biases)
        )

    def _last(self, x: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        *hidden, (w_out, b_out) = self._noisy_layers() if noisy and self.noise is not None else self._layers
        for i, (w, b) in enumerate(hidden):
            x = torch.baddbmm(b, x, w)
            if self.norms:
                gain, shift = self.norms[i]
                x = torch.addcmul(shift, F.layer_norm(x, x.shape[-1:]), gain)
            x = torch.relu(x)
        return torch.baddbmm(b_out, x, w_out)

    def forward(self, x: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """``x[K, B, in] -> q[K, B, out]`` (a distributional head's mean); ``noisy``: with a fresh draw of
        noisy layers' noise (else their mean weights)."""
        if self.dist is not None:
            return self.expected(self.distribution(x, noisy))
        out = self._last(x, noisy)
        if self.dueling:
            value, adv = out[..., :1], out[..., 1:]
            return value + adv - adv.mean(dim=-1, keepdim=True)
        return out

    def distribution(self, x: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """A distributional head's ``[K, B, out, atoms]``: C51's logits or QR-DQN's quantiles (dueling:
        ``V + A - mean_a A`` atom by atom, as in Rainbow)."""
        out = self._last(x, noisy)
        out = out.reshape(*out.shape[:-1], self.n_out + int(self.dueling), self.atoms)
        if self.dueling:
            value, adv = out[..., :1, :], out[..., 1:, :]
            return value + adv - adv.mean(dim=-2, keepdim=True)
        return out

    @property
    def support(self) -> torch.Tensor:
        """C51's atoms ``z_i`` (a buffer: it moves with the network's device)."""
        return self.get_buffer("atom_values")

    def expected(self, dist: torch.Tensor) -> torch.Tensor:
        """The mean return of each action's distribution ``[..., atoms] -> [...]``."""
        if self.dist is not None and self.dist.kind == "c51":
            return (torch.softmax(dist, dim=-1) * self.support).sum(-1)
        return dist.mean(-1)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """The same function in numpy, on views of the live CPU weights (no copies, no autograd).

        Acting needs one small forward per environment step; torch's per-call dispatch costs more than
        the arithmetic there, numpy's much less. Only valid for CPU parameters.
        """
        layers = self.__dict__.get("_np_layers")
        if layers is None:
            layers = [(w.detach().numpy(), b.detach().numpy()) for w, b in self._layers]
            self.__dict__["_np_layers"] = layers
            self.__dict__["_np_norms"] = [(g.detach().numpy(), s.detach().numpy()) for g, s in self.norms]
        *hidden, (w_out, b_out) = layers
        norms = self.__dict__["_np_norms"]
        for i, (w, b) in enumerate(hidden):
            x = np.matmul(x, w) + b
            if norms:
                mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
                x = (x - mean) / np.sqrt(var + 1e-5) * norms[i][0] + norms[i][1]
            x = np.maximum(x, 0.0)
        out = np.matmul(x, w_out) + b_out
        if self.dist is not None:
            out = out.reshape(*out.shape[:-1], self.n_out + int(self.dueling), self.atoms)
            if self.dueling:
                out = out[..., :1, :] + out[..., 1:, :] - out[..., 1:, :].mean(axis=-2, keepdims=True)
            if self.dist.kind == "qr":
                return out.mean(-1)
            e = np.exp(out - out.max(axis=-1, keepdims=True))
            return (e * self.support.numpy()).sum(-1) / e.sum(-1)
        if self.dueling:
            value, adv = out[..., :1], out[..., 1:]
            return value + adv - adv.mean(axis=-1, keepdims=True)
        return out

    def get_weights(self, agent: int = 0) -> list[np.ndarray]:
        """Per-layer ``[w (in x out), b (out,)]`` of one agent, as Keras' ``get_weights``."""
        out: list[np.ndarray] = []
        for w, b in zip(self.weights, self.biases):
            out += [w[agent].detach().cpu().numpy().copy(), b[agent, 0].detach().cpu().numpy().copy()]
        return out

    @torch.no_grad()
    def set_weights(self, arrays: Sequence[np.ndarray], agent: int = 0) -> None:
        """Inverse of :meth:`get_weights`; shapes must match."""
        if len(arrays) != 2 * len(self.weights):
            raise ValueError(f"expected {2 * len(self.weights)} arrays (w, b per layer), got {len(arrays)}")
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w_new = torch.as_tensor(np.asarray(arrays[2 * i]), dtype=w.dtype)
            b_new = torch.as_tensor(np.asarray(arrays[2 * i + 1]), dtype=b.dtype).reshape(1, -1)
            if w_new.shape != w.shape[1:] or b_new.shape != b.shape[1:]:
                raise ValueError(
                    f"layer {i}: expected shapes {tuple(w.shape[1:])} and ({b.shape[2]},), got "
                    f"{tuple(w_new.shape)} and {tuple(np.shape(arrays[2 * i + 1]))}"
                )
            w[agent].copy_(w_new)
            b[agent].copy_(b_new)


SMALL_PATCH_ELEMENTS = 16_384  # MinAtar's network gathers 2,304 per sample, the Nature network ~171k

CONV_NETWORKS = {
    # (out channels, kernel, stride) per layer; the hidden widths after them come from DQNConfig.hidden
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),  # Mnih et al. 2015, for 4x84x84 Atari frames
    "minatar": ((16, 3, 1),),  # Young and Tian 2019, for 10x10xC MinAtar states
}


class StackedCNN(nn.Module):
    """K independent convolutional Q-networks evaluated in one call per layer.

    Convolution weights are ``[K, out, in, kh, kw]`` and run as one grouped convolution (``groups=K``) over
    the K agents' images side by side in the channel dimension, so agents never mix; then ReLU
    hidden layers and the output as in :class:`StackedMLP` (``dueling`` too). Input is ``[K, B, C, H, W]``
    pixels (uint8 or bool), cast to float and multiplied by ``scale`` here: replay memory stays uint8.
    Each agent is initialised like PyTorch's ``Conv2d``/``Linear`` from its own seed.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_dim: int,
        convs: Sequence[tuple[int, int, int]],
        hidden: Sequence[int] = (512,),
        *,
        seeds: Sequence[int] = (0,),
        dueling: bool = False,
        scale: float = 1.0,
        dist: Distribution | None = None,
        sigma0: float | None = None,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        c, h, w = (int(x) for x in in_shape)
        self.layer_norm = layer_norm
        self.k, self.dueling, self.scale = len(seeds), dueling, float(scale)
        self.in_shape = (c, h, w)
        self.convs = tuple((int(out), int(kernel), int(stride)) for out, kernel, stride in convs)
        self.strides = tuple(int(stride) for _, _, stride in convs)
        self.patch_elements = 0  # per sample, over the layers: what a gather-and-matmul convolution copies
        self.conv_weights, self.conv_biases = nn.ParameterList(), nn.ParameterList()
        for out, kernel, stride in convs:
            self.conv_weights.append(nn.Parameter(torch.empty(self.k, out, c, kernel, kernel)))
            self.conv_biases.append(nn.Parameter(torch.empty(self.k, out)))
            self.patch_elements += c * kernel * kernel * ((h - kernel) // stride + 1) * ((w - kernel) // stride + 1)
            c, h, w = out, (h - kernel) // stride + 1, (w - kernel) // stride + 1
            if h < 1 or w < 1:
                raise ValueError(f"images of shape {tuple(in_shape)} are too small for these convolutions")
        self.flat = c * h * w
        self.head = StackedMLP(
            self.flat, out_dim, hidden, seeds=seeds, dueling=dueling, dist=dist, sigma0=sigma0, layer_norm=layer_norm
        )
        self.conv_norms: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        if layer_norm:  # over each sample's (channels, height, width), with a gain and shift per agent
            shapes = [(int(wt.shape[1]), *self._out_hw(i)) for i, wt in enumerate(self.conv_weights)]
            self.conv_gains = nn.ParameterList(nn.Parameter(torch.ones(self.k, *sh)) for sh in shapes)
            self.conv_shifts = nn.ParameterList(nn.Parameter(torch.zeros(self.k, *sh)) for sh in shapes)
            self.conv_norms = tuple(zip(self.conv_gains, self.conv_shifts))
        self.reset_parameters(seeds)

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int]) -> None:
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed) + 7_919)  # its own stream, apart from the head's
            for w, b in zip(self.conv_weights, self.conv_biases):
                bound = 1.0 / math.sqrt(w[0, 0].numel())
                w[k].copy_(torch.rand(w.shape[1:], generator=gen) * 2 * bound - bound)
                b[k].copy_(torch.rand(b.shape[1:], generator=gen) * 2 * bound - bound)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``x[K, B, C, H, W]`` pixels -> the flattened convolution output ``[K, B, flat]``."""
        k, b = x.shape[:2]
        y = x.to(torch.float32).mul_(self.scale) if x.dtype != torch.float32 else x * self.scale
        y = y.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])  # agents side by side in channels
        for i, (w, bias, stride) in enumerate(zip(self.conv_weights, self.conv_biases, self.strides)):
            y = F.conv2d(y, w.flatten(0, 1), bias.flatten(), stride=stride, groups=k)
            if self.conv_norms:
                gain, shift = self.conv_norms[i]
                z = y.reshape(b, k, *gain.shape[1:])
                y = torch.addcmul(shift, F.layer_norm(z, z.shape[2:]), gain).reshape(y.shape)
            y = torch.relu(y)
        return y.reshape(b, k, self.flat).transpose(0, 1)

    def _out_hw(self, layer: int) -> tuple[int, int]:
        """Height and width after convolution ``layer``."""
        h, w = self.in_shape[1:]
        for _, kernel, stride in self.convs[: layer + 1]:
            h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        return h, w

    def forward(self, x: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """``x[K, B, C, H, W] -> q[K, B, out]`` (``noisy``: the head's noisy layers with fresh noise)."""
        return self.head(self.features(x), noisy)

    def distribution(self, x: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """A distributional head's ``[K, B, out, atoms]`` (:meth:`StackedMLP.distribution`)."""
        return self.head.distribution(self.features(x), noisy)

    @property
    def noise(self) -> AgentNoise | None:
        return self.head.noise

    def expected(self, dist: torch.Tensor) -> torch.Tensor:
        return self.head.expected(dist)

    @property
    def support(self) -> torch.Tensor:
        """C51's atoms (its head's)."""
        return self.head.get_buffer("atom_values")

    @property
    def small(self) -> bool:
        """Whether its convolutions are small enough (MinAtar's, not the Nature network's) that numpy's
        gather-and-matmul form (:mod:`qlearn.convolution`) beats torch's convolution call on the CPU (that
        form has no LayerNorm)."""
        return self.patch_elements <= SMALL_PATCH_ELEMENTS and not self.layer_norm

    def numpy_conv(self) -> NumpyConv:
        """This network's convolutions in numpy (made once)."""
        conv = self.__dict__.get("_numpy_conv")
        if conv is None:
            conv = self.__dict__["_numpy_conv"] = NumpyConv(self.in_shape, self.convs, self.scale)
        return conv

    def conv_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Zero-copy numpy views ``(weight, bias)`` of the live CPU convolution parameters."""
        return [(w.detach().numpy(), b.detach().numpy()) for w, b in zip(self.conv_weights, self.conv_biases)]

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """:meth:`forward` in numpy on views of the live CPU weights (acting: one small forward a step)."""
        arrays = self.__dict__.get("_np_convs")
        if arrays is None:
            arrays = self.__dict__["_np_convs"] = self.conv_arrays()
        return self.head.forward_numpy(self.numpy_conv().forward(arrays, x, "act")[0])


def make_q_network(
    encoder: Any,
    n_actions: int,
    network: str,
    hidden: Sequence[int],
    seeds: Sequence[int],
    dueling: bool,
    dist: Distribution | None = None,
    sigma0: float | None = None,
    layer_norm: bool = False,
) -> StackedMLP | StackedCNN:
    """The Q-network for ``encoder``'s observations: ``network`` is ``mlp``, ``nature``, ``minatar`` or
    ``auto`` (a convolutional one for images: ``nature`` for frames of 36 pixels or more, else ``minatar``;
    an MLP otherwise); ``layer_norm``: LayerNorm after every hidden layer."""
    if network == "auto":
        network = "mlp" if not encoder.image else ("nature" if min(encoder.shape[1:]) >= 36 else "minatar")
    if network == "mlp":
        if encoder.image:
            raise ValueError("an MLP reads feature vectors; these observations are images: use network=auto")
        return StackedMLP(
            encoder.dim,
            n_actions,
            hidden,
            seeds=seeds,
            dueling=dueling,
            dist=dist,
            sigma0=sigma0,
            layer_norm=layer_norm,
        )
    if not encoder.image:
        raise ValueError(f"network={network} reads images of shape (C, H, W); these observations are vectors")
    return StackedCNN(
        encoder.shape,
        n_actions,
        CONV_NETWORKS[network],
        hidden,
        seeds=seeds,
        dueling=dueling,
        scale=encoder.scale,
        dist=dist,
        sigma0=sigma0,
        layer_norm=layer_norm,
    )
