"""Agents: tabular Q-learning, DQN and PQN, all batched over K independent agents, one protocol."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from qlearn.agents.base import Agent, linear_schedule, read_checkpoint
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.pqn import PQNAgent
from qlearn.agents.tabular import TabularQAgent
from qlearn.agents.targets import td_target
from qlearn.config import DQNConfig, PQNConfig, TabularConfig
from qlearn.errors import QlearnError

AGENTS: dict[str, Any] = {
    "dqn": (DQNAgent, DQNConfig),
    "tabular": (TabularQAgent, TabularConfig),
    "pqn": (PQNAgent, PQNConfig),
}


def agent_classes(kind: str) -> tuple[Any, Any]:
    """``(AgentClass, ConfigClass)`` for ``"dqn"``, ``"tabular"`` or ``"pqn"``."""
    if kind not in AGENTS:
        raise QlearnError(f"unknown agent {kind!r}: choose one of {', '.join(AGENTS)}")
    return AGENTS[kind]


def load_agent(path: str | os.PathLike, env: gym.Env | None = None, device: str = "cpu") -> Any:
    """Load either kind of agent from a checkpoint file."""
    kind = read_checkpoint(path)["kind"]
    cls, _ = agent_classes(kind)
    try:
        return cls.load(path, env=env, device=device)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise QlearnError(f"{path} is a malformed qlearn checkpoint ({type(exc).__name__}: {exc})") from None


__all__ = [
    "Agent",
    "DQNAgent",
    "PQNAgent",
    "TabularQAgent",
    "agent_classes",
    "load_agent",
    "linear_schedule",
    "td_target",
]
