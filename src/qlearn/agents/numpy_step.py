"""The DQN gradient step on the CPU in numpy, on views of the agent's own torch tensors.

A gradient step of a small Q-network is overhead-bound: PyTorch's autograd spends ~0.6-0.9 ms on about
70 small operator calls whose arithmetic takes a fraction of that. This module does the same step with
a hand-written backward pass in numpy (about 1-2 us per call instead of 5-10), then applies torch's own
fused Adam kernel. It is not a second learner: the weights, the target weights, the gradients and
Adam's moments are the agent's torch tensors, seen through zero-copy numpy views, so checkpoints,
``select()``, the target update and the torch path (used on GPUs and for prioritized replay) all see
one state. ``tests/test_numpy_step.py`` checks the step against autograd on the same minibatch.

What it computes, per agent k (shapes ``[K, B, ...]``):

* ``q = Q_online(s)[a]``; the TD target ``y = r + discount * (1 - terminated) * V(s')`` with
  ``V(s') = max_a' Q_target(s', a')``, or with Double DQN ``Q_target(s', argmax_a' Q_online(s', a'))``;
* loss ``mean_B(l(q - y))`` with ``l`` the squared error or Huber (``smooth_l1`` with beta 1);
* gradients of ``sum_k loss_k`` by backpropagation through ReLU layers (and the dueling head), each
  agent's gradient clipped to ``max_grad_norm`` on its own, then one fused Adam step.

Discrete states kept in replay memory as their number (FrozenLake's 16) take a shorter road when they are
fewer than the minibatch: the networks run once on every state's features, ``q`` and ``V(s')`` are looked
up per sample, and each (state, action)'s sample gradients are summed (``np.bincount``) before one
backward pass over the states. Same gradient, a fraction of the arithmetic (K=32, batch 256: 10 -> 1.2 ms).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qlearn.buffers.replay import Batch
from qlearn.training.threads import limit_blas_threads


class NumpyStep:
    """Callable ``step(batch, lr) -> loss[K]`` bound to one :class:`~qlearn.agents.dqn.DQNAgent`."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._bound: tuple | None = None

    # ------------------------------------------------------------------ views
    def invalidate(self) -> None:
        """Forget cached views (after the optimiser's state tensors were replaced, e.g. by a load)."""
        self._bound = None

    def _bind(self) -> tuple:
        limit_blas_threads()  # BLAS's default thread pool fights torch and other processes for the cores
        agent = self.agent
        params = agent._params
        opt = agent.optimizer
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            st = opt.state[p]
            if not st:  # the state torch's Adam would create at its first step, so both paths share it
                st["step"] = torch.tensor(0.0, dtype=torch.float32)
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        group = opt.param_groups[0]
        states = [opt.state[p] for p in params]
        adam = (params, [p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [s["step"] for s in states], group,
                [s["step"].numpy() for s in states])
        n = len(agent.net._layers)
        online = [(w.detach().numpy(), b.detach().numpy()) for w, b in agent.net._layers]
        target = [(w.detach().numpy(), b.detach().numpy()) for w, b in agent.target._layers]
        grads = {id(p): p.grad.numpy() for p in params}
        g_layers = [(grads[id(w)], grads[id(b)]) for w, b in agent.net._layers]
        self._bound = (online, target, g_layers, adam, n, params[0].grad)
        return self._bound

    # --------------------------------------------------------------- forward
    def _buf(self, tag: Any, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """A reusable work array. Fresh multi-megabyte arrays every step cost page faults that, at K=32,
        took longer than the matrix products; these are allocated once per shape."""
        ws = self.__dict__.setdefault("_ws", {})
        arr = ws.get(tag)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = ws[tag] = np.empty(shape, dtype=dtype)
        return arr

    def forward(self, layers: list, x: np.ndarray, dueling: bool, tag: str = "") -> tuple[np.ndarray, list[np.ndarray]]:
        """Q-values ``[K, B, A]`` and each layer's input (post-ReLU activations) for the backward pass.
        Activations live in work arrays named by ``tag``: valid until the next forward with that tag."""
        inputs = []
        *hidden, (w_out, b_out) = layers
        lead = x.shape[:-1]
        for i, (w, b) in enumerate(hidden):
            inputs.append(x)
            h = np.matmul(x, w, out=self._buf((tag, i), (*lead, w.shape[-1])))
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
    def __call__(self, batch: Batch, lr: float, table: np.ndarray | None = None) -> np.ndarray:
        """One step on ``batch``. With ``table`` (``[S, D]`` features of every state), the batch holds state
        numbers ``[K, B, 1]`` (compact replay memory) and the networks run once per state, not per sample."""
        # A diverging network overflows float32 on the way to an infinite loss; the caller reports that
        # as a DivergenceError naming the step, so numpy's own overflow warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._step(batch, lr, table)

    def _step(self, batch: Batch, lr: float, table: np.ndarray | None = None) -> np.ndarray:
        bound = self._bound
        first = self.agent._params[0]
        if bound is None or first.grad is not bound[5] or \
                self.agent.optimizer.state.get(first, {}).get("exp_avg") is not bound[3][2][0]:
            bound = self._bind()  # gradients or Adam's moments were replaced (a load, a torch-path step)
        online, target, g_layers, adam, n_layers, _ = bound
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
            joint = cfg.double and k * b <= 2048
            x = np.concatenate([obs, next_obs], axis=1) if joint else obs
            q_all, inputs = self.forward(online, x, cfg.dueling, "online")
            next_q_target, _ = self.forward(target, next_obs, cfg.dueling, "target")
            if cfg.double:
                next_online = q_all[:, b:] if joint else self.forward(online, next_obs, cfg.dueling, "next")[0]
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
            return loss_k  # the caller raises DivergenceError before any weight changes

        # Backward of sum_k mean_B(loss): only the taken action's output gets a gradient.
        n_out = online[-1][0].shape[-1]
        n_act = n_out - int(cfg.dueling)
        if table is not None:
            n_s = table.shape[0]
            flat = ((rows * n_s + s) * n_act + actions).ravel()
            dq = np.bincount(flat, weights=(dloss / b).ravel(), minlength=k * n_s * n_act)
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
            np.matmul(a_in.transpose(0, 2, 1), delta, out=g_w)
            np.sum(delta, axis=1, keepdims=True, out=g_b)
            if layer:
                delta = np.matmul(delta, online[layer][0].transpose(0, 2, 1),
                                  out=self._buf(("delta", layer), a_in.shape))
                mask = np.greater(a_in, 0.0, out=self._buf(("mask", layer), a_in.shape, np.bool_))
                delta *= mask

        if cfg.max_grad_norm > 0:
            self._clip(g_layers, cfg.max_grad_norm, k)
        self._adam(adam, lr)
        return loss_k

    @staticmethod
    def _clip(g_layers: list, max_norm: float, k: int) -> None:
        """Scale each agent's gradient to norm <= max_norm (as :func:`qlearn.nets.clip_grad_norm_per_agent`)."""
        if k == 1:
            sq = np.array([sum(float(np.vdot(g, g)) for pair in g_layers for g in pair)], dtype=np.float32)
        else:
            sq = np.zeros(k, dtype=np.float32)
            for g_w, g_b in g_layers:
                sq += np.einsum("kij,kij->k", g_w, g_w) + np.einsum("kij,kij->k", g_b, g_b)
        scale = np.minimum(max_norm / (np.sqrt(sq) + 1e-6), 1.0).astype(np.float32)
        if (scale < 1.0).any():
            s = scale[:, None, None]
            for g_w, g_b in g_layers:
                g_w *= s
                g_b *= s

    @staticmethod
    def _adam(adam: tuple, lr: float) -> None:
        """One step of torch's fused Adam on the agent's parameters and moment tensors."""
        params, grads, exp_avgs, exp_avg_sqs, steps, group, step_views = adam
        beta1, beta2 = group["betas"]
        group["lr"] = lr
        for view in step_views:  # Adam's step counters, as torch's Adam advances them before its kernel
            view += 1
        with torch.no_grad():
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=lr, beta1=beta1,
                               beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)


def fused_adam_available() -> bool:
    """Whether this torch build has the fused CPU Adam kernel the numpy step relies on."""
    return hasattr(torch, "_fused_adam_")
