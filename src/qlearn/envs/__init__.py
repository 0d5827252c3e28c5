"""Environments: Gymnasium construction with clear errors, observation encoders, what qlearn knows
about each env (success criterion, action names, map), and the exact tabular model (value iteration,
finite-horizon policy evaluation) read from the env's own ``P``."""

from qlearn.envs.encoding import Encoder, make_encoder
from qlearn.envs.info import EnvInfo, env_info, grid_map
from qlearn.envs.make import EnvSpec, make_env, success_of
from qlearn.envs.tabular import (
    TabularMDP,
    greedy_policy,
    policy_return,
    success_probability,
    value_iteration,
)

__all__ = [
    "Encoder",
    "make_encoder",
    "EnvInfo",
    "env_info",
    "grid_map",
    "EnvSpec",
    "make_env",
    "success_of",
    "TabularMDP",
    "greedy_policy",
    "policy_return",
    "success_probability",
    "value_iteration",
]
