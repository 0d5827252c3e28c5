"""The gradient engine: how a DQN turns a minibatch into gradients, behind one small interface.

A DQN gradient step is: draw a minibatch (the agent, from its per-agent stream), compute the per-agent
TD loss and its gradients into the online network's ``.grad`` tensors (the engine), then clip each
agent's gradient, step the optimiser and update the target network (the agent, shared by every
engine). Autograd (:class:`AutogradEngine`) is the reference that every network and variant goes
through; a faster backend, such as the numpy MLP step of :mod:`qlearn.agents.numpy_step`, implements
the same ``__call__`` and must give the same gradients on the same minibatch (``tests/test_engine.py``
holds every backend to that contract). Switching engines changes neither the draws nor the update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from qlearn.agents.distributional import distributional_loss
from qlearn.agents.targets import td_target
from qlearn.buffers.replay import Batch


class GradientEngine(Protocol):
    """``engine(batch, check) -> loss[K]``: gradients of ``sum_k loss_k`` written into the agent's ``.grad``.

    ``check(loss)`` is called with the per-agent loss when any entry is not finite, before gradients are
    written (the agent freezes those agents or raises); the returned loss has those entries zeroed."""

    name: str
    wants_numpy_batch: bool

    def __call__(self, batch: Batch, check: Callable[[np.ndarray], None]) -> torch.Tensor: ...
    def invalidate(self) -> None: ...


class AutogradEngine:
    """The reference engine: the networks' forward in torch and ``backward()`` (any device, every variant)."""

    name = "torch"
    wants_numpy_batch = False

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def invalidate(self) -> None:
        """Nothing cached."""

    def __call__(self, batch: Batch, check: Callable[[np.ndarray], None]) -> torch.Tensor:
        agent = self.agent
        cfg = agent.config
        batch = agent.decode(batch)
        if cfg.distributional != "none":
            per_sample = distributional_loss(agent, batch)
            error = per_sample.detach()  # Rainbow's priority: the distributional loss
        else:
            noisy = cfg.noisy  # a fresh draw of the noise for each network and each forward
            q = agent.net(batch.obs, noisy).gather(2, batch.actions.unsqueeze(2)).squeeze(2)
            with torch.no_grad():
                next_online = agent.net(batch.next_obs, noisy) if cfg.double else None
                gamma = cfg.gamma if cfg.n_step == 1 else batch.discounts
                next_target = agent.target(batch.next_obs, noisy)
                y = td_target(batch.rewards, batch.terminated, next_target, gamma, next_online)
            if cfg.loss == "huber":
                per_sample = F.smooth_l1_loss(q, y, reduction="none")
            else:
                per_sample = F.mse_loss(q, y, reduction="none")
            error = q.detach() - y
        if cfg.prioritized:
            loss_k = (per_sample * batch.weights).mean(dim=1)
            agent.buffer.update_priorities(batch.indices, error)
        else:
            loss_k = per_sample.mean(dim=1)
        finite = torch.isfinite(loss_k)
        if not bool(finite.all()):
            check(loss_k.detach().cpu().numpy())
            loss_k = torch.where(finite, loss_k, torch.zeros_like(loss_k))
        grads = [p.grad for p in agent.parameters() if p.grad is not None]
        if grads:  # (what zero_grad(set_to_none=False) does, without its per-call profiling overhead)
            torch._foreach_zero_(grads)
        loss_k.sum().backward()
        return loss_k.detach()


def make_engine(agent: Any, choice: str) -> GradientEngine:
    """``auto``: the numpy step where it applies (CPU, uniform replay, an MLP or MinAtar-sized
    convolutions), else autograd; ``torch``;
    ``numpy`` (refused where it does not apply, with the reason)."""
    from qlearn.agents.numpy_step import NumpyStep
    from qlearn.errors import QlearnError

    cfg = agent.config
    from qlearn.nets import StackedMLP

    small = isinstance(agent.net, StackedMLP) or agent.net.small
    plain = cfg.distributional == "none" and not cfg.noisy
    fits = agent.device.type == "cpu" and not cfg.prioritized and small and plain
    if choice == "numpy" and not fits:
        why = f"this agent is on {agent.device}" if agent.device.type != "cpu" else "prioritized replay is on"
        why = why if plain else "its head is distributional or noisy"
        why = why if small else "its convolutions are too large for it"
        raise QlearnError(
            f"engine=numpy needs the CPU, uniform replay and an MLP or small convolutions, but {why}: "
            "use engine=auto or torch"
        )
    return NumpyStep(agent) if fits and choice != "torch" else AutogradEngine(agent)
