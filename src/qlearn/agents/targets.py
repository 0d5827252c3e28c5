"""The TD target, as a pure function so it can be checked on hand-made tensors."""

from __future__ import annotations

import torch


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_target: torch.Tensor,
    gamma: float | torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """``r + gamma * (1 - terminated) * V(s')``.

    ``V(s') = max_a' Q_target(s', a')`` (DQN), or with ``next_q_online`` given (Double DQN)
    ``Q_target(s', argmax_a' Q_online(s', a'))``: the online network chooses, the target network values,
    which removes the upward bias of taking a max over noisy estimates. Only a true termination stops
    the bootstrap; a time-limit truncation is not passed here and still bootstraps.
    """
    if next_q_online is None:
        next_v = next_q_target.max(dim=-1).values
    else:
        best = next_q_online.argmax(dim=-1, keepdim=True)
        next_v = next_q_target.gather(-1, best).squeeze(-1)
    return rewards + gamma * (1.0 - terminated.float()) * next_v
