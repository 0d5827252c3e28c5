"""Training: the loop that connects an environment to an agent, evaluation and the run folder."""

from qlearn.training.loop import TrainResult, train
from qlearn.training.threads import configure_threads

__all__ = ["train", "TrainResult", "configure_threads"]
