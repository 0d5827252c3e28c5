"""Factorised Gaussian noise for noisy networks (Fortunato et al. 2018), K agents apart.

A noisy layer's weights are ``mu + sigma * eps``; learning ``sigma`` lets each agent decide how much to
explore, state by state, instead of an epsilon schedule. Factorised noise draws one vector per layer input
and one per output and multiplies them, ``eps_w = f(e_in) f(e_out)^T`` and ``eps_b = f(e_out)`` with
``f(x) = sign(x) sqrt(|x|)``. Each agent draws from its own generator, keyed by its seed, so its noise is
the same alone as beside others, and noise never couples agents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def scaled(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = sign(x) * sqrt(|x|)``."""
    return x.sign() * x.abs().sqrt()


class AgentNoise:
    """Per-agent generators of factorised noise for stacked layers ``weight[K, in, out]``."""

    def __init__(self, seeds: Sequence[int], salt: int = 0) -> None:
        self.reseed(seeds, salt)

    def reseed(self, seeds: Sequence[int], salt: int) -> None:
        """Each agent's generator from its seed and ``salt`` (the target network draws apart from the online)."""
        self.generators = [torch.Generator().manual_seed(int(s) * 1_000_003 + 104_729 + salt) for s in seeds]

    def layer(
        self, mu_w: torch.Tensor, sigma_w: torch.Tensor, mu_b: torch.Tensor, sigma_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One draw of the noisy layer's weight ``[K, in, out]`` and bias ``[K, 1, out]``."""
        n_in, n_out = mu_w.shape[1], mu_w.shape[2]
        draws = torch.stack([torch.randn(n_in + n_out, generator=g) for g in self.generators]).to(mu_w.device)
        e_in, e_out = scaled(draws[:, :n_in]), scaled(draws[:, n_in:])
        weight = mu_w + sigma_w * (e_in.unsqueeze(2) * e_out.unsqueeze(1))
        return weight, mu_b + sigma_b * e_out.unsqueeze(1)


def sigma_init(fan_in: int, sigma0: float) -> float:
    """The paper's initial ``sigma`` for factorised noise: ``sigma0 / sqrt(fan_in)``."""
    return sigma0 / math.sqrt(fan_in)
