"""Replay memory for K agents: uniform or prioritized, one-step or n-step.

Both buffers have the same small interface (``store``, ``sample``, ``update_priorities``, ``len``), so
the agent never special-cases prioritized replay. Image observations live in a
:class:`FrameReplayBuffer` (uint8, each frame once), which the prioritized buffer can use as its storage.
"""

from qlearn.buffers.frames import FrameReplayBuffer
from qlearn.buffers.prioritized import PrioritizedReplayBuffer
from qlearn.buffers.replay import Batch, ReplayBuffer
from qlearn.buffers.sumtree import SumTree

__all__ = ["Batch", "FrameReplayBuffer", "ReplayBuffer", "PrioritizedReplayBuffer", "SumTree"]
