"""The part of a DQN gradient step every engine shares: per-agent clipping and the optimiser step.

Engines only write gradients into the parameters' ``.grad``; this applies them. A small network's step
is overhead-bound, so on the CPU both run on zero-copy numpy views of the same tensors and call torch's
fused Adam kernel directly (what ``torch.optim.Adam(fused=True).step()`` runs, without its Python
bookkeeping); elsewhere, or without the fused kernel, ``clip_grad_norm_per_agent`` and
``optimizer.step()``. Either way the gradient, the optimiser and its state are the agent's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qlearn.gradients import clip_grad_norm_per_agent


class Update:
    """``update(max_grad_norm, lr)``: clip each agent's gradient, then one optimiser step, for ``params``."""

    def __init__(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        self.params, self.optimizer = params, optimizer
        group = optimizer.param_groups[0]
        self.fast = (
            params[0].device.type == "cpu"
            and bool(group.get("fused"))
            and hasattr(torch, "_fused_adam_")
            and isinstance(optimizer, torch.optim.Adam)
            and not group.get("amsgrad")
        )
        self._bound: tuple[Any, ...] | None = None

    def __call__(self, max_grad_norm: float, lr: float) -> None:
        if not self.fast:
            if max_grad_norm > 0:
                clip_grad_norm_per_agent(self.params, max_grad_norm)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            return
        grads, views, adam = self._bind()
        if max_grad_norm > 0:
            _clip(views, max_grad_norm, self.params[0].shape[0])
        _adam(self.params, grads, adam, self.optimizer.param_groups[0], lr)

    def _bind(self) -> tuple[Any, ...]:
        """Numpy views of the gradients and the lists the fused kernel takes, made again when the gradient
        or moment tensors were replaced (a load, ``zero_grad(set_to_none=True)``)."""
        first = self.params[0]
        st = self.optimizer.state.get(first, {})
        b = self._bound
        if b is not None and b[0][0] is first.grad and b[2][0][0] is st.get("exp_avg"):
            return b
        grads: list[torch.Tensor] = []
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        states = [self.optimizer.state[p] for p in self.params]
        adam = (
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
            [s["step"].numpy() for s in states],
        )
        self._bound = (grads, [g.numpy() for g in grads], adam)
        return self._bound


def _clip(grads: list[np.ndarray], max_norm: float, k: int) -> None:
    """Scale each agent's gradient (first dim K of every array) to norm <= max_norm, in place."""
    if k == 1:
        sq = np.array([sum(float(np.vdot(g, g)) for g in grads)], dtype=np.float32)
    else:
        sq = np.zeros(k, dtype=np.float32)
        for g in grads:
            flat = g.reshape(k, -1)
            sq += np.einsum("ki,ki->k", flat, flat)
    scale = np.minimum(max_norm / (np.sqrt(sq) + 1e-6), 1.0).astype(np.float32)
    if (scale < 1.0).any():
        for g in grads:
            g *= scale.reshape(-1, *([1] * (g.ndim - 1)))


def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], adam: tuple[Any, ...], group: dict, lr: float) -> None:
    """One step of torch's fused Adam on the parameters and their moments (as ``Adam.step`` runs it)."""
    exp_avgs, exp_avg_sqs, steps, step_views = adam
    beta1, beta2 = group["betas"]
    group["lr"] = lr
    for view in step_views:  # the step counters, advanced before the kernel as torch's Adam does
        view += 1
    with torch.no_grad():
        torch._fused_adam_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )
