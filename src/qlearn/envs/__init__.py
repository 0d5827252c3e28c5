"""Environments: Gymnasium construction with clear errors, observation encoders, and the exact
tabular model (value iteration, finite-horizon policy evaluation) read from the env's own ``P``."""

from qlearn.envs.encoding import Encoder, make_encoder
from qlearn.envs.make import EnvSpec, make_env, success_of
from qlearn.envs.tabular import (
    TabularMDP,
    greedy_policy,
    policy_return,
    success_probability,
    value_iteration,
)

__all__ = [
    "Encoder", "make_encoder", "EnvSpec", "make_env", "success_of", "TabularMDP", "greedy_policy",
    "policy_return", "success_probability", "value_iteration",
]
