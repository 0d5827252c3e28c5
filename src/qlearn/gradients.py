"""Gradient norms and clipping per agent over parameters stacked on dim 0 (K agents never share a clip)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def per_agent_grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm of the gradient of each agent ``[K]`` (parameters stacked on dim 0)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads[0].shape[0] == 1:  # one agent: fused per-tensor norms, then their norm (fewer small ops)
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).reshape(1)
    squares = torch._foreach_mul(grads, grads)
    return torch.stack([sq.flatten(1).sum(1) for sq in squares]).sum(0).sqrt()


@torch.no_grad()
def clip_grad_norm_per_agent(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip each agent's gradient to ``max_norm`` separately (a global clip would couple agents)."""
    norms = per_agent_grad_norm(params)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    grads = [p.grad for p in params if p.grad is not None]
    if scale.shape[0] == 1:
        torch._foreach_mul_(grads, scale.reshape(()))
    else:
        torch._foreach_mul_(grads, [scale.view(-1, *([1] * (g.dim() - 1))) for g in grads])
    return norms
