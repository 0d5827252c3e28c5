"""The DQN gradient step on the CPU in numpy, on views of the agent's own torch tensors.

A gradient step of a small Q-network is overhead-bound: PyTorch's autograd spends ~0.6-0.9 ms on about
70 small operator calls whose arithmetic takes a fraction of that. This module does the same step with
a hand-written backward pass in numpy (about 1-2 us per call instead of 5-10). It is a backend of the
agent's gradient engine (:mod:`qlearn.agents.engine`), not a second learner: it writes the gradients into
the agent's own ``.grad`` tensors, seen through zero-copy numpy views, and the agent's shared code clips
them per agent and steps the one optimiser. The minibatch is drawn from the same per-agent stream as
autograd's, so switching backends does not change a run's samples. ``tests/test_numpy_step.py`` checks
it against autograd on the same minibatch.

What it computes, per agent k (shapes ``[K, B, ...]``):

* ``q = Q_online(s)[a]``; the TD target ``y = r + discount * (1 - terminated) * V(s')`` with
  ``V(s') = max_a' Q_target(s', a')``, or with Double DQN ``Q_target(s', argmax_a' Q_online(s', a'))``;
* loss ``mean_B(l(q - y))`` with ``l`` the squared error or Huber (``smooth_l1`` with beta 1);
* gradients of ``sum_k loss_k`` by backpropagation through ReLU layers (and the dueling head).

Discrete states kept in replay memory as their number (FrozenLake's 16) take a shorter road when they are
fewer than the minibatch: the networks run once on every state's features, ``q`` and ``V(s')`` are looked
up per sample, and each (state, action)'s sample gradients are summed (``np.bincount``) before one
backward pass over the states. Same gradient, a fraction of the arithmetic (K=32, batch 256: 10 -> 1.2 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from qlearn.buffers.replay import Batch
from qlearn.convolution import work_array
from qlearn.nets import StackedCNN
from qlearn.threads import limit_blas_threads


class NumpyStep:
    """The numpy backend of :class:`~qlearn.agents.engine.GradientEngine` for one
    :class:`~qlearn.agents.dqn.DQNAgent`: ``step(batch, check) -> loss[K]`` with the gradients written
    into the agent's own ``.grad`` tensors (the optimiser step, clipping and target update are shared)."""

    name = "numpy"
    wants_numpy_batch = True

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._bound: tuple | None = None
        self._conv: tuple | None = None

    # ------------------------------------------------------------------ views
    def invalidate(self) -> None:
        """Forget cached views (after the gradient tensors were replaced, e.g. by a load)."""
        self._bound = None

    def _bind(self) -> tuple:
        limit_blas_threads()  # BLAS's default thread pool fights torch and other processes for the cores
        agent = self.agent
        for p in agent.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        conv = isinstance(agent.net, StackedCNN)
        head, target_head = (agent.net.head, agent.target.head) if conv else (agent.net, agent.target)
        online = [(w.detach().numpy(), b.detach().numpy()) for w, b in head.layers]
        target = [(w.detach().numpy(), b.detach().numpy()) for w, b in target_head.layers]
        g_layers = [(w.grad.numpy(), b.grad.numpy()) for w, b in head.layers]
        # A convolutional network's convolutions (numpy's gather-and-matmul form), before the head.
        self._conv = (
            (
                agent.net.numpy_conv(),
                agent.net.conv_arrays(),
                agent.target.conv_arrays(),
                [(w.grad.numpy(), b.grad.numpy()) for w, b in zip(agent.net.conv_weights, agent.net.conv_biases)],
            )
            if conv
            else None
        )
        first = agent.parameters()[0]
        self._bound = (online, target, g_layers, len(online), first.grad)
        return self._bound

    def _features(self, x: np.ndarray, which: int, tag: str) -> tuple[np.ndarray, list | None]:
        """What the head reads: the convolutions' features of pixels (``which`` 1 online, 2 target), or ``x``."""
        if self._conv is None:
            return x, None
        return self._conv[0].forward(self._conv[which], x, tag)

    # --------------------------------------------------------------- forward
    def _buf(self, tag: Any, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """A reusable work array (:func:`qlearn.convolution.work_array`)."""
        return work_array(self.__dict__.setdefault("_ws", {}), tag, shape, dtype)

    def forward(self, layers: list, x: np.ndarray, dueling: bool, tag: str = "") -> tuple[np.ndarray, list[np.ndarray]]:
        """Q-values ``[K, B, A]`` and each layer's input (post-ReLU activations) for the backward pass.
        Activations live in work arrays named by ``tag``: valid until the next forward with that tag."""
        inputs = []
        *hidden, (w_out, b_out) = layers
        lead = x.shape[:-1]
        for i, (w, b) in enumerate(hidden):
            inputs.append(x)
            h = matmul(x, w, self._buf((tag, i), (*lead, w.shape[-1])))
            h += b
            np.maximum(h, 0.0, out=h)
            x = h
        inputs.append(x)
        out = np.matmul(x, w_out, out=self._buf((tag, "out"), (*lead, w_out.shape[-1])))
        out += b_out
        if dueling:
            adv = out[..., 1:]
            return out[..., :1] + adv - adv.mean(axis=-1, keepdims=True), inputs
        return out, inputs

    def _index(self, k: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Broadcastable row/column indices ``[K, 1]``, ``[1, B]`` for picking one action per sample."""
        cached = self.__dict__.get("_idx")
        if cached is None or cached[0].shape[0] != k or cached[1].shape[1] != b:
            cached = self._idx = (np.arange(k)[:, None], np.arange(b)[None, :])
        return cached

    # ------------------------------------------------------------------ step
    def __call__(self, batch: Batch, check: Callable[[np.ndarray], None]) -> torch.Tensor:
        """Gradients of one minibatch into the agent's ``.grad``; the per-agent loss ``[K]``. Discrete
        states kept as numbers (compact replay memory) take the per-state road when they are fewer than
        the minibatch. ``check(loss)`` sees a loss with non-finite entries before any gradient is written."""
        agent = self.agent
        table = agent.encoder.table_np if agent.compact else None
        if table is not None and agent.encoder.n_states > batch.actions.shape[1]:
            table = None
        if agent.compact and table is None:
            batch = agent.decode(batch)
        # A diverging network overflows float32 on the way to an infinite loss; the agent freezes it and
        # names the step, so numpy's own overflow warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore"):
            return torch.from_numpy(self._step(batch, check, table))

    def _step(self, batch: Batch, check: Callable[[np.ndarray], None], table: np.ndarray | None) -> np.ndarray:
        bound = self._bound
        if bound is None or self.agent.parameters()[0].grad is not bound[4]:
            bound = self._bind()  # the gradient tensors were replaced (a load, set_to_none)
        online, target, g_layers, n_layers, _ = bound
        cfg = self.agent.config
        actions, rewards = batch.actions, batch.rewards
        k, b = actions.shape
        rows, cols = self._index(k, b)

        if table is not None:
            # Few states (FrozenLake's 16): Q of every state from one forward of S rows instead of 2-3B rows,
            # looked up per sample; the backward pass sums each state's sample gradients first (bincount).
            s, s2 = batch.obs[..., 0].astype(np.intp), batch.next_obs[..., 0].astype(np.intp)
            x = np.broadcast_to(table, (k, *table.shape))
            q_all, inputs = self.forward(online, x, cfg.dueling, "online_states")
            q_target, _ = self.forward(target, x, cfg.dueling, "target_states")
            if cfg.double:
                next_v = q_target[rows, s2, q_all[rows, s2].argmax(axis=-1)]
            else:
                next_v = q_target.max(axis=-1)[rows, s2]
            q = q_all[rows, s, actions]
        else:
            # Forward: the online net on s, and on s' for Double DQN. Small batches go through in one set of
            # matrix products (fewer calls); large ones apart (a [K, 2B, H] activation falls out of cache).
            obs, next_obs = batch.obs, batch.next_obs
            joint = cfg.double and k * b <= 2048 and self._conv is None
            x = np.concatenate([obs, next_obs], axis=1) if joint else obs
            x, conv_cache = self._features(x, 1, "online")
            q_all, inputs = self.forward(online, x, cfg.dueling, "online")
            next_q_target, _ = self.forward(target, self._features(next_obs, 2, "target")[0], cfg.dueling, "target")
            if cfg.double:
                next_online = (
                    q_all[:, b:]
                    if joint
                    else self.forward(online, self._features(next_obs, 1, "next")[0], cfg.dueling, "next")[0]
                )
                next_v = next_q_target[rows, cols, next_online.argmax(axis=-1)]
            else:
                next_v = next_q_target.max(axis=-1)
            q = q_all[rows, cols, actions]
            inputs = [a_in[:, :b] for a_in in inputs]
        y = rewards + batch.discounts * (1.0 - batch.terminated) * next_v
        diff = q - y
        if cfg.loss == "huber":
            absd = np.abs(diff)
            per_sample = np.where(absd < 1.0, 0.5 * diff * diff, absd - 0.5)
            dloss = np.clip(diff, -1.0, 1.0)
        else:
            per_sample = diff * diff
            dloss = 2.0 * diff
        loss_k = per_sample.mean(axis=1)
        if not np.isfinite(loss_k).all():
            check(loss_k)  # freezes those agents (their rows are put back after the step), or raises
            loss_k = np.where(np.isfinite(loss_k), loss_k, np.float32(0.0))

        # Backward of sum_k mean_B(loss): only the taken action's output gets a gradient.
        n_out = online[-1][0].shape[-1]
        n_act = n_out - int(cfg.dueling)
        if table is not None:
            n_s = table.shape[0]
            flat = ((rows * n_s + s) * n_act + actions).ravel()
            dq: np.ndarray = np.bincount(flat, weights=(dloss / b).ravel(), minlength=k * n_s * n_act)
            dq = dq.astype(np.float32).reshape(k, n_s, n_act)
        else:
            dq = np.zeros((k, b, n_act), dtype=np.float32)
            dq[rows, cols, actions] = dloss / b
        if cfg.dueling:  # q = v + adv - mean(adv)
            delta = np.empty((*dq.shape[:2], n_out), dtype=np.float32)
            delta[..., 0] = dq.sum(axis=-1)
            delta[..., 1:] = dq - dq.mean(axis=-1, keepdims=True)
        else:
            delta = dq
        for layer in range(n_layers - 1, -1, -1):
            a_in = inputs[layer]
            g_w, g_b = g_layers[layer]
            matmul(a_in.transpose(0, 2, 1), delta, g_w)
            np.sum(delta, axis=1, keepdims=True, out=g_b)
            if layer:
                delta = np.matmul(
                    delta, online[layer][0].transpose(0, 2, 1), out=self._buf(("delta", layer), a_in.shape)
                )
                mask = np.greater(a_in, 0.0, out=self._buf(("mask", layer), a_in.shape, np.bool_))
                delta *= mask
            elif self._conv is not None:  # on into the convolutions (the features are post-ReLU already)
                conv, conv_online, _, conv_grads = self._conv
                d_features = matmul(delta, online[0][0].transpose(0, 2, 1), self._buf("d_features", a_in.shape))
                conv.backward(conv_online, conv_cache, d_features, conv_grads)
        return loss_k


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a @ b`` into ``out``. Large products of several agents' stacked weights go through torch's batched
    product (MKL, on the same memory, no copies), which streams them faster than numpy's loop over the K
    matrices; the rest stay in numpy, whose calls cost less."""
    if a.shape[0] > 1 and out.size * a.shape[-1] >= 1 << 20:
        torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
        return out
    return np.matmul(a, b, out=out)


def fused_adam_available() -> bool:
    """Whether this torch build has the fused CPU Adam kernel the numpy step relies on."""
    return hasattr(torch, "_fused_adam_")


def init_adam_state(optimizer: torch.optim.Optimizer) -> None:
    """The state torch's Adam creates at its first step, created now (freezing an agent before the first
    step needs its moment rows to exist)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state[p]
            if not st:
                fused = bool(group.get("fused"))
                st["step"] = torch.zeros((), dtype=torch.float32, device=p.device if fused else "cpu")
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
