"""Keeping each agent's best weights, and writing what a run delivers.

A run delivers, per agent, ``last.pt`` (the agent at the last step) and ``agent.pt``: with ``keep_best`` on,
its best evaluated weights where they scored higher than the last ones (by sampled episodes: where the 95%
intervals of the two evaluations do not overlap), else a copy of ``last.pt``.
Only weights are kept (the optimiser state and counters in ``agent.pt`` are the last
step's), the same for one agent as for 1,024.

Where scores come from sampled episodes, the agent kept is the one whose episodes went best, so those
episodes overstate it (the maximum of noisy scores is biased upward). The score a run reports for its
delivered agent is then taken from fresh episodes (``rescore``); the one that chose it is kept beside it
as ``selection_score``. Exact scores have no noise and are reported as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qlearn.fileio import atomic_write
from qlearn.runs import AGENT, LAST, write_json
from qlearn.training.result import TrainResult
from qlearn.training.scoring import Scorer


class KeepBest:
    """Each agent's best score so far, the env step it came at, a copy of its weights then, and ``lowers``: the
    lower end of that evaluation's 95% interval (the score itself where exact)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.weights = [w.detach().clone() for w in agent.weights()]
        self.scores = np.full(agent.k, -np.inf)
        self.lowers = np.full(agent.k, -np.inf)
        self.steps = np.full(agent.k, -1, dtype=np.int64)

    def update(self, scores: np.ndarray, step: int, lowers: np.ndarray | None = None) -> None:
        better = scores > self.scores
        if not better.any():
            return
        with torch.no_grad():
            for b, w in zip(self.weights, self.agent.weights()):
                mask = torch.as_tensor(better, device=w.device)
                b[mask.to(b.device)] = w[mask]
        self.scores = np.where(better, scores, self.scores)
        self.lowers = np.where(better, scores if lowers is None else lowers, self.lowers)
        self.steps = np.where(better, step, self.steps)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": [w.clone() for w in self.weights], "scores": self.scores.copy(),
                "lowers": self.lowers.copy(), "steps": self.steps.copy()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for b, saved in zip(self.weights, state["weights"], strict=True):
                b.copy_(saved)
        self.scores, self.steps = np.array(state["scores"], dtype=float), np.array(state["steps"], dtype=np.int64)
        self.lowers = np.array(state.get("lowers", state["scores"]), dtype=float)


def deliver(
    agent: Any,
    result: TrainResult,
    best: KeepBest,
    keep_best: bool,
    run_dirs: list[Path],
    scorer: Scorer | None = None,
) -> None:
    """Write each agent's last network, the delivered one and its summary; the stacked agent is left
    holding the delivered networks. With a sampling ``scorer`` and ``keep_best``, the delivered agents are
    scored again on fresh episodes (not for a run stopped by Ctrl-C: it is not kept waiting)."""
    for i, d in enumerate(run_dirs):  # the last networks, one at a time (each select() has a replay memory)
        agent.select(i).save(d / LAST)
    final = np.nan_to_num(
        result.final_scores if result.final_scores is not None else np.full(agent.k, np.nan), nan=-np.inf
    )
    sampled = scorer is not None and not scorer.exact
    if sampled and result.eval_lower:
        # Sampled scores are noisy: an earlier agent replaces the last one only where their evaluations' 95%
        # intervals do not overlap (the last one collapsed), not because one of many evaluations was lucky.
        last_upper = 2 * final - np.nan_to_num(result.eval_lower[-1], nan=-np.inf)
        use_best = keep_best & (best.lowers > last_upper)
    else:
        use_best = keep_best & (best.scores > final)
    if use_best.any():
        with torch.no_grad():
            for b, w in zip(best.weights, agent.weights()):
                mask = torch.as_tensor(use_best, device=w.device)
                w[mask] = b[mask.to(b.device)]
        if hasattr(agent, "sync_target"):
            agent.sync_target()
    result.selection_scores = np.where(use_best, best.scores, final)
    result.delivered_scores = result.selection_scores
    result.score_from = "selection episodes" if sampled else "exact"
    result.selected_by = "episodes" if sampled or scorer is None else "model"
    if scorer is not None and sampled and keep_best and result.eval_scores and not result.interrupted:
        fresh = scorer(agent)  # fresh episodes, with the model's report beside them
        result.delivered_scores = np.asarray(fresh.score, dtype=float)
        result.delivered_exact, result.delivered_q_error = fresh.exact_score, fresh.q_error
        result.score_from = "fresh episodes"
    elif scorer is not None:
        result.delivered_exact, result.delivered_q_error = scorer.report(agent)
    for i, d in enumerate(run_dirs):
        if use_best[i]:
            agent.select(i).save(d / AGENT)
        else:  # the delivered agent is the last one: the same file, copied
            with open(d / LAST, "rb") as src, atomic_write(d / AGENT) as dst:
                shutil.copyfileobj(src, dst)
        write_json(d / "summary.json", result.summary(i))
    result.run_dirs = list(run_dirs)
