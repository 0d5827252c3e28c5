"""Training: one trainer over K agents x N envs (:mod:`qlearn.training.trainer`) and what it writes."""

from qlearn.threads import configure_threads
from qlearn.training.result import ManyResult, TrainResult
from qlearn.training.trainer import Trainer, train, train_many

__all__ = ["train", "train_many", "Trainer", "TrainResult", "ManyResult", "configure_threads"]
