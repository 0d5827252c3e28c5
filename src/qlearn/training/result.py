"""What a training run returns: per-agent scores and histories, with a lone run's values as scalars."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.stats import summarize


@dataclass
class TrainResult:
    """Outcome of a run of K agents (K=1 for one seed).

    Arrays are per agent ``[K]``; ``eval_*`` lists hold one entry per evaluation. ``diverged`` maps the
    seed of each agent that was frozen (its loss or Q-values stopped being finite) to the env step."""

    agent: Any
    steps: int = 0  # environment steps per agent
    wall_time: float = 0.0
    n_envs: int = 1
    eval_steps: list[int] = field(default_factory=list)
    eval_scores: list[np.ndarray] = field(default_factory=list)
    eval_success: list[np.ndarray] = field(default_factory=list)
    eval_ci95: list[tuple[float, float] | None] = field(default_factory=list)  # bootstrap CI of each mean
    eval_lower: list[np.ndarray] = field(default_factory=list)  # lower ends of the evaluations' 95% intervals
    eval_exact: list[np.ndarray] = field(default_factory=list)  # the model's exact scores (envs with a model)
    eval_q_error: list[np.ndarray] = field(default_factory=list)  # max |Q - Q*| (envs with a model)
    delivered_exact: np.ndarray | None = None  # the model's exact score of each delivered agent (report only)
    delivered_q_error: np.ndarray | None = None  # and its max |Q - Q*|
    selected_by: str = "episodes"  # what chose agent.pt and drove the stop rules: "episodes" or "model"
    best_scores: np.ndarray | None = None
    best_steps: np.ndarray | None = None
    final_scores: np.ndarray | None = None
    delivered_scores: np.ndarray | None = None  # what the run reports for agent.pt (fresh episodes if rescored)
    selection_scores: np.ndarray | None = None  # the scores that chose agent.pt
    score_from: str = "exact"  # "exact", "fresh episodes" (rescored) or "selection episodes" (not rescored)
    episodes: np.ndarray | None = None
    diverged: dict[int, int] = field(default_factory=dict)
    run_dirs: list[Path] = field(default_factory=list)
    parent: Path | None = None
    interrupted: bool = False
    stopped_by: str | None = None  # a hook's reason for ending the run before its budget (a stop rule)

    def record_eval(self, step: int, scores: Any, ci: tuple[float, float] | None) -> None:
        """Add one evaluation (a :class:`~qlearn.training.scoring.Scores`; ``ci``: the seeds' bootstrap CI)."""
        self.eval_steps.append(step)
        self.eval_scores.append(scores.score)
        self.eval_success.append(scores.success)
        self.eval_ci95.append(ci)
        self.eval_lower.append(scores.lower)
        if scores.exact_score is not None:
            self.eval_exact.append(scores.exact_score)
        if scores.q_error is not None:
            self.eval_q_error.append(scores.q_error)

    # ------------------------------------------------------------ one agent
    def _one(self, arr: np.ndarray | None) -> float | None:
        return None if arr is None or not len(arr) or not np.isfinite(arr[0]) else float(arr[0])

    @property
    def run_dir(self) -> Path | None:
        return self.run_dirs[0] if self.run_dirs else None

    @property
    def final_score(self) -> float | None:
        return self._one(self.final_scores)

    @property
    def best_score(self) -> float | None:
        return self._one(self.best_scores)

    @property
    def best_step(self) -> int | None:
        b = self._one(self.best_steps)
        return None if b is None or b < 0 else int(b)

    @property
    def delivered_score(self) -> float | None:
        return self._one(self.delivered_scores)

    @property
    def history(self) -> list[dict[str, float]]:
        """Agent 0's evaluations: step, score, success and the best score so far."""
        best, rows = -np.inf, []
        for s, sc, su in zip(self.eval_steps, self.eval_scores, self.eval_success):
            best = max(best, float(sc[0]))
            rows.append({"step": s, "score": float(sc[0]), "success": float(su[0]), "best_score": best})
        return rows

    @property
    def sps(self) -> float:
        """Environment steps per second of one agent."""
        return self.steps / max(self.wall_time, 1e-9)

    @property
    def env_steps_per_second(self) -> float:
        """Environment steps of all agents together per second."""
        return self.steps * self.agent.k / max(self.wall_time, 1e-9)

    def summary(self, i: int = 0) -> dict[str, Any]:
        """Agent ``i``'s ``summary.json``."""

        def num(arr: np.ndarray | None) -> float | None:
            return None if arr is None or not np.isfinite(arr[i]) else float(arr[i])

        seed = int(self.agent.seeds[i]) if hasattr(self.agent, "seeds") else i
        best_step = None if self.best_steps is None or self.best_steps[i] < 0 else int(self.best_steps[i])
        return {
            "run_dir": str(self.run_dirs[i]) if i < len(self.run_dirs) else None,
            "steps": self.steps,
            "episodes": int(self.episodes[i]) if self.episodes is not None else 0,
            "wall_time": round(self.wall_time, 3),
            "sps": round(self.sps, 1),
            "final_score": num(self.final_scores),
            "best_score": num(self.best_scores),
            "best_step": best_step,
            "score": num(self.delivered_scores),
            "selection_score": num(self.selection_scores),
            "score_from": self.score_from,
            "selected_by": self.selected_by,
            "exact_score": num(self.delivered_exact),
            "final_exact_score": num(self.eval_exact[-1]) if self.eval_exact else None,
            "q_error": num(self.delivered_q_error),
            "interrupted": self.interrupted,
            "stopped_by": self.stopped_by,
            "diverged_at_step": self.diverged.get(seed),
        }

    def aggregate(self) -> dict[str, Any]:
        """The seeds together: final scores (mean, bootstrap 95% CI, IQM), the learning curve, divergences."""
        curve = [
            {"step": s, "mean": float(row.mean()), "ci95": None if ci is None else list(ci)}
            for s, row, ci in zip(self.eval_steps, self.eval_scores, self.eval_ci95)
        ]
        scores = self.delivered_scores if self.delivered_scores is not None else np.zeros(0)
        return {
            "seeds": [int(s) for s in self.agent.seeds],
            "final_score": summarize(scores) if len(scores) else None,
            "scores": [float(x) for x in scores],
            "selected_by": self.selected_by,
            "exact_scores": None if self.delivered_exact is None else [float(x) for x in self.delivered_exact],
            "curve": curve,
            "diverged": [{"seed": s, "step": t} for s, t in sorted(self.diverged.items())],
            "steps_per_agent": self.steps,
            "wall_time": round(self.wall_time, 3),
            "env_steps_per_second": round(self.env_steps_per_second, 1),
            "interrupted": self.interrupted,
            "stopped_by": self.stopped_by,
        }


ManyResult = TrainResult  # the name lockstep callers used
