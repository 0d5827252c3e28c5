"""qlearn: tabular Q-learning and Deep Q-Networks you can see into.

The main entry points::

    from qlearn import make_env, DQNAgent, TabularQAgent, train, evaluate
"""

from qlearn.agents import DQNAgent, TabularQAgent, load_agent  # noqa: E402
from qlearn.config import DQNConfig, TabularConfig, TrainConfig  # noqa: E402
from qlearn.envs import TabularMDP, make_env, success_probability, value_iteration  # noqa: E402
from qlearn.errors import QlearnError  # noqa: E402
from qlearn.evaluation import EvalResult, evaluate, exact_success  # noqa: E402
from qlearn.spec import RunSpec  # noqa: E402
from qlearn.training import train, train_many  # noqa: E402
from qlearn.training.runner import resume, run  # noqa: E402
from qlearn.version import __version__  # noqa: E402

__all__ = [
    "DQNAgent",
    "TabularQAgent",
    "load_agent",
    "DQNConfig",
    "TabularConfig",
    "TrainConfig",
    "make_env",
    "TabularMDP",
    "value_iteration",
    "success_probability",
    "QlearnError",
    "EvalResult",
    "evaluate",
    "exact_success",
    "train",
    "train_many",
    "run",
    "resume",
    "RunSpec",
    "__version__",
]
