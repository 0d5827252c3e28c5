"""Stop rules: a run on an env nobody tuned ends when it is done, not when a fixed budget runs out.

Both are trainer hooks (``on_eval``), judged at each evaluation over all K agents of a run:

- ``until``: every agent's evaluation has reached the score. Exact scores are compared as they are;
  sampled ones by the lower end of their 95% confidence interval, so a lucky handful of episodes does not
  end the run. An agent counts once it has reached it (its best weights are kept), so one agent's later
  dip does not hold the others.
- ``patience``: no agent's best score has risen for that many evaluations in a row (a plateau).

The budget (``steps``) still bounds the run. The rule's count restarts on ``--resume``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class StopRule:
    """``on_eval(row) -> False`` once the run should stop; ``reason`` then says why."""

    def __init__(self, until: float | None = None, patience: int = 0) -> None:
        self.until, self.patience = until, int(patience)
        self.reached: np.ndarray | None = None
        self.best: np.ndarray | None = None
        self.flat = 0
        self.reason: str | None = None

    def on_eval(self, row: dict[str, Any]) -> bool:
        lower = np.asarray(row["lower"], dtype=float)
        best = np.asarray(row["best_scores"], dtype=float)
        if self.until is not None:
            hit = lower >= self.until
            self.reached = hit if self.reached is None else self.reached | hit
            if self.reached.all():
                self.reason = f"every agent reached {self.until:g} at step {row['step']}"
                return False
        if self.patience:
            rose = self.best is None or bool((best > self.best).any())
            self.flat = 0 if rose else self.flat + 1
            self.best = best.copy()
            if self.flat >= self.patience:
                self.reason = f"no best score rose for {self.patience} evaluations (step {row['step']})"
                return False
        return True


def stop_hooks(until: float | None, patience: int) -> list[StopRule]:
    """The run spec's stop rule as a hook list (empty where neither is set)."""
    return [StopRule(until, patience)] if until is not None or patience else []
