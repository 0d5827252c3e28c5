"""Distributional TD learning: the targets and losses of C51 and QR-DQN, as pure functions on tensors.

Both learn, for each action, the distribution of the return instead of its mean. The target of a sampled
transition is the distribution of ``r + discount * Z(s', a*)`` (``discount`` 0 after a termination), with
``a*`` the greedy action at ``s'`` by the mean (chosen by the online network with Double DQN). C51 keeps
probabilities on fixed atoms, so that shifted and shrunk distribution is projected back onto the atoms
(Bellemare et al. 2017, Algorithm 1) and the loss is the cross-entropy to it. QR-DQN keeps the returns at
fixed quantile levels ``tau_i = (2i + 1) / 2N``, so the target needs no projection and the loss is the
quantile Huber loss (Dabney et al. 2018). Shapes: ``[K, B]`` for per-sample values, ``[K, B, N]`` for a
distribution per sample; functions never mix agents (dim 0) or samples (dim 1).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import torch

from qlearn.envs.returns import return_bounds
from qlearn.nets import Distribution


def project_c51(
    rewards: torch.Tensor, discounts: torch.Tensor, next_probs: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Probabilities ``[K, B, N]`` on ``support`` of ``r + discount * Z`` where ``Z`` has ``next_probs`` on it.

    Each shifted atom ``r + discount * z_j`` is clipped to the support's range and its probability split
    between the two atoms beside it in proportion to closeness; an atom landing exactly on one keeps all."""
    n = support.shape[0]
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (n - 1)
    tz = (rewards.unsqueeze(-1) + discounts.unsqueeze(-1) * support).clamp(v_min, v_max)
    b = (tz - v_min) / delta  # fractional index in [0, n-1]
    lower = b.floor().clamp(0, n - 1)
    upper = b.ceil().clamp(0, n - 1)
    w_upper = b - lower  # 0 where b sits on an atom (lower == upper): all mass to lower
    w_lower = 1.0 - w_upper
    out = torch.zeros_like(next_probs)
    out.scatter_add_(-1, lower.long(), next_probs * w_lower)
    out.scatter_add_(-1, upper.long(), next_probs * w_upper)
    return out


def c51_loss(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``-sum_i m_i log p_i`` per sample ``[K, B]`` of the taken action's ``logits[K, B, N]``."""
    return -(target_probs * torch.log_softmax(logits, dim=-1)).sum(-1)


def quantile_levels(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The quantile midpoints ``tau_i = (2i + 1) / 2n`` QR-DQN learns."""
    return (torch.arange(n, device=device, dtype=torch.float32) * 2 + 1) / (2 * n)


def quantile_huber_loss(quantiles: torch.Tensor, targets: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """QR-DQN's loss per sample ``[K, B]``: ``sum_i mean_j |tau_i - 1{u_ij < 0}| * huber_kappa(u_ij)`` with
    ``u_ij = target_j - quantile_i`` (as sb3-contrib's ``quantile_huber_loss``), ``quantiles[K, B, N]``,
    ``targets[K, B, M]``."""
    u = targets.unsqueeze(-2) - quantiles.unsqueeze(-1)  # [K, B, N, M]
    absu = u.abs()
    huber = torch.where(absu <= kappa, 0.5 * u * u, kappa * (absu - 0.5 * kappa))
    tau = quantile_levels(quantiles.shape[-1], quantiles.device).unsqueeze(-1)
    return ((tau - (u.detach() < 0).float()).abs() * huber).mean(-1).sum(-1)


def taken(dist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The distribution of each sample's action: ``dist[K, B, A, N]``, ``actions[K, B]`` -> ``[K, B, N]``."""
    index = actions.long().unsqueeze(-1).unsqueeze(-1).expand(*actions.shape, 1, dist.shape[-1])
    return dist.gather(2, index).squeeze(2)


def distributional_loss(agent: Any, batch: Any) -> torch.Tensor:
    """Per-sample loss ``[K, B]`` of the agent's distributional head on a decoded ``batch``."""
    cfg = agent.config
    net, target = agent.net, agent.target
    noisy = cfg.noisy
    current = taken(net.distribution(batch.obs, noisy), batch.actions)
    with torch.no_grad():
        next_dist = target.distribution(batch.next_obs, noisy)
        chooser = net.distribution(batch.next_obs, noisy) if cfg.double else next_dist
        best = net.expected(chooser).argmax(dim=-1)
        next_taken = taken(next_dist, best)
        gamma = batch.discounts if cfg.n_step > 1 else torch.full_like(batch.rewards, cfg.gamma)
        discounts = gamma * (1.0 - batch.terminated.float())
        if cfg.distributional == "c51":
            goal = project_c51(batch.rewards, discounts, torch.softmax(next_taken, dim=-1), net.support)
        else:
            goal = batch.rewards.unsqueeze(-1) + discounts.unsqueeze(-1) * next_taken
    if cfg.distributional == "c51":
        return c51_loss(current, goal)
    return quantile_huber_loss(current, goal, cfg.kappa)


DEFAULT_SUPPORT = (-10.0, 10.0)  # the C51 paper's, for an env whose returns qlearn cannot bound


def head_of(cfg: Any) -> Distribution | None:
    """The network head a config asks for (None: plain Q-values)."""
    if cfg.distributional == "c51":
        lo = cfg.v_min if cfg.v_min is not None else DEFAULT_SUPPORT[0]
        hi = cfg.v_max if cfg.v_max is not None else DEFAULT_SUPPORT[1]
        return Distribution("c51", cfg.atoms, float(lo), float(hi))
    if cfg.distributional == "qr":
        return Distribution("qr", cfg.quantiles)
    return None


def with_support(cfg: Any, env: Any) -> Any:
    """``cfg`` with C51's empty ``v_min``/``v_max`` filled from the range of returns in ``env``
    (:func:`qlearn.envs.returns.return_bounds`); where that is unknown, the C51 paper's [-10, 10], with
    a warning naming the settings."""
    if cfg.distributional != "c51" or (cfg.v_min is not None and cfg.v_max is not None):
        return cfg
    bounds = return_bounds(env, cfg.gamma)
    if bounds is None:
        name = env.spec.id if env.spec else type(env.unwrapped).__name__
        warnings.warn(
            f"the range of returns in {name} is unknown: C51's support is [-10, 10]; set v_min and v_max "
            "to the returns this env can give",
            stacklevel=2,
        )
        bounds = DEFAULT_SUPPORT
    lo = cfg.v_min if cfg.v_min is not None else round(bounds[0], 6)
    hi = cfg.v_max if cfg.v_max is not None else round(bounds[1], 6)
    return dataclasses.replace(cfg, v_min=float(lo), v_max=float(hi))
