"""qlearn: tabular Q-learning and Deep Q-Networks you can see into.

The main entry points::

    from qlearn import make_env, DQNAgent, TabularQAgent, train, evaluate
"""

__version__ = "0.1.0"

from qlearn.agents import DQNAgent, TabularQAgent, load_agent  # noqa: E402
from qlearn.config import DQNConfig, TabularConfig, TrainConfig  # noqa: E402
from qlearn.envs import TabularMDP, make_env, success_probability, value_iteration  # noqa: E402
from qlearn.errors import QlearnError  # noqa: E402
from qlearn.evaluation import EvalResult, evaluate, exact_success  # noqa: E402
from qlearn.training import train  # noqa: E402

__all__ = [
    "DQNAgent", "TabularQAgent", "load_agent", "DQNConfig", "TabularConfig", "TrainConfig", "make_env",
    "TabularMDP", "value_iteration", "success_probability", "QlearnError", "EvalResult", "evaluate",
    "exact_success", "train",
]
