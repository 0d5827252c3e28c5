"""Per-agent divergence: an agent whose loss stops being finite is frozen; the others train on.

K agents share stacked tensors and one optimiser, so one agent's infinite loss must not end the others'
runs, and a frozen agent must stay exactly as it was: zeroing its gradient is not enough (Adam's
momentum would keep moving it), so its rows of every guarded tensor (weights, target weights, Adam's
moments) are copied when it freezes and written back after every later update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


class DivergenceGuard:
    """Which of K agents are frozen, since which environment step, and their rows as they were."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.frozen = np.zeros(k, dtype=bool)
        self.frozen_at = np.full(k, -1, dtype=np.int64)  # environment step of each agent's freeze, -1: training
        self._rows: torch.Tensor | None = None  # indices of the frozen agents
        self._tensors: list[torch.Tensor] = []
        self._saved: list[torch.Tensor] = []

    def freeze(self, bad: np.ndarray, tensors: Callable[[], list[torch.Tensor]], step: int) -> bool:
        """Freeze the agents in ``bad`` not yet frozen (``tensors()``: what to hold, first dim K), at ``step``.
        Returns whether every agent is now frozen."""
        new = np.asarray(bad, dtype=bool) & ~self.frozen
        if new.any():
            self.frozen |= new
            self.frozen_at[new] = step
            self._capture(tensors(), new)
        return bool(self.frozen.all())

    def _capture(self, live: list[torch.Tensor], new: np.ndarray) -> None:
        idx = np.flatnonzero(self.frozen)
        old = {} if self._rows is None else dict(zip(self._rows.tolist(), range(len(self._rows))))
        rows = torch.as_tensor(idx, device=live[0].device)
        with torch.no_grad():
            saved = []
            for i, t in enumerate(live):
                now = t[rows.to(t.device)].clone()
                for j, agent in enumerate(idx.tolist()):  # agents frozen earlier keep the rows they froze with
                    if not new[agent] and agent in old:
                        now[j] = self._saved[i][old[agent]]
                saved.append(now)
        self._rows, self._tensors, self._saved = rows, live, saved

    def restore(self) -> None:
        """Write the frozen agents' rows back (after an update moved them)."""
        if self._rows is None:
            return
        with torch.no_grad():
            for t, s in zip(self._tensors, self._saved):
                t[self._rows.to(t.device)] = s

    def rebind(self, tensors: list[torch.Tensor]) -> None:
        """The live tensors were replaced (a load): point the guard at the new ones."""
        if self._rows is not None:
            self._tensors = tensors

    def state_dict(self, tensors: Callable[[], list[torch.Tensor]] | None = None) -> dict[str, Any]:
        return {
            "frozen_at": self.frozen_at.copy(),
            "saved": [s.detach().cpu().clone() for s in self._saved] if self._rows is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any] | None, tensors: Callable[[], list[torch.Tensor]]) -> None:
        self.__init__(self.k)  # type: ignore[misc]
        if not state:
            return
        self.frozen_at = np.asarray(state["frozen_at"], dtype=np.int64).copy()
        self.frozen = self.frozen_at >= 0
        if self.frozen.any() and state.get("saved") is not None:
            live = tensors()
            self._rows = torch.as_tensor(np.flatnonzero(self.frozen), device=live[0].device)
            self._tensors = live
            self._saved = [s.to(t.device) for s, t in zip(state["saved"], live)]

    def select(self, index: int) -> DivergenceGuard:
        """Agent ``index``'s record alone (its weights are already the frozen ones)."""
        one = DivergenceGuard(1)
        one.frozen_at[0] = self.frozen_at[index]
        one.frozen[0] = self.frozen[index]
        return one
