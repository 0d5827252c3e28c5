"""Fit a DQN's network to a given Q-table by regression (the course's Task 2), then train online.

The course fits its network to a known table and plays with the argmax of its output. Here any table of
shape ``[S, A]`` works: the course's table, value iteration's Q*, or a user's CSV/NPY file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from qlearn.errors import QlearnError


def pretrain(agent, table: np.ndarray, *, epochs: int = 2_000, lr: float = 3e-3) -> float:
    """Regress every agent's Q-network onto ``table`` over all states; returns the final MSE.

    The target network is synced afterwards, so online training starts from the fitted values.
    """
    if agent.kind != "dqn":
        raise QlearnError(
            "pretraining fits a network; the tabular agent can take the table directly (agent.q[:] = table)"
        )
    table = np.asarray(table, dtype=np.float32)
    states = agent.encoder.all_states().to(agent.device)
    if table.shape != (states.shape[0], agent.n_actions):
        raise QlearnError(f"Q-table has shape {table.shape}; this agent needs {(states.shape[0], agent.n_actions)}")
    x = states.unsqueeze(0).expand(agent.k, *states.shape).contiguous()
    y = torch.as_tensor(table, device=agent.device).unsqueeze(0).expand(agent.k, *table.shape)
    opt = torch.optim.Adam(agent.net.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        loss = F.mse_loss(agent.net(x), y, reduction="none").mean(dim=(1, 2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    agent.sync_target()
    return float(loss.detach()) / agent.k
