"""A run's figures written into its folder as PNG files (``qlearn plot``, and ``qlearn train`` at its end).

Importing this module imports matplotlib (through :mod:`qlearn.plotting`), so the command line imports it
only when it draws.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from qlearn import plotting
from qlearn.envs.info import grid_map
from qlearn.envs.tabular import TabularMDP, value_iteration
from qlearn.errors import QlearnError
from qlearn.exact_returns import compare_agent
from qlearn.runs import RunInfo, read_run


def write_plots(run: RunInfo) -> tuple[list[Path], list[str]]:
    """Learning curve and (for discrete states) the Q-table heatmap; returns (written, skipped reasons)."""
    written: list[Path] = []
    skipped: list[str] = []
    if (run.path / "metrics.csv").is_file() or (run.path / "evals.csv").is_file():
        fig = plotting.learning_curve(run.path)
        out = run.path / "learning_curve.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    else:
        skipped.append(f"no metrics.csv or evals.csv in {run.path}: learning curve skipped")
    try:
        env = run.make_env()
        agent = run.load_agent(env)
    except QlearnError as exc:
        skipped.append(f"agent plots skipped: {exc}")
        return written, skipped
    space = env.observation_space
    if getattr(space, "shape", None) == (2,) and not hasattr(space, "n"):
        low, high = _grid_bounds(agent, space)
        fig = plotting.value_policy_grid(agent, low, high, env_id=run.env_id)
        out = run.path / "value_policy.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    try:
        q = agent.q_table(0)
    except QlearnError as exc:
        skipped.append(f"Q-table plot skipped: {exc}")
        return written, skipped
    if getattr(agent, "discretizer", None) is not None:
        return written, skipped  # a binned table is shown as value_policy.png
    desc = ref = None
    if hasattr(env.unwrapped, "P"):
        desc = grid_map(env)  # a map drawn only where it has one tile per state
        ref, _ = value_iteration(TabularMDP.from_env(env), agent.config.gamma)
    fig = plotting.q_table_heatmap(
        q, None if desc is None else np.asarray(desc), reference=ref, title=f"{agent.kind} Q-table"
    )
    out = run.path / "q_table.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)
    if ref is not None and desc is not None:
        fig = plotting.values_vs_optimal(q, ref, np.asarray(desc))
        out = run.path / "values.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    if ref is not None and getattr(agent.config, "distributional", "none") != "none":
        written.append(_distribution_plot(run, agent, env))
    return written, skipped


def _distribution_plot(run: RunInfo, agent, env) -> Path:
    """Learned against exact return distributions of the start state and of the non-terminal state
    where they differ most."""
    learned, exact, w1, floor, _ = compare_agent(agent, env)
    mdp = TabularMDP.from_env(env)
    start = int(np.argmax(mdp.isd))
    other = int(np.argmax(np.where(mdp.terminal | (np.arange(len(w1)) == start), -1.0, w1)))
    panels = [
        {"state": s, "learned": learned[s], "exact": (exact.returns[s], exact.probs[s]), "w1": w1[s], "floor": floor[s]}
        for s in (start, other)
    ]
    fig = plotting.return_distributions(panels, agent.config.distributional)
    out = run.path / "return_distributions.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _grid_bounds(agent, space) -> tuple[np.ndarray, np.ndarray]:
    """Where to draw a 2-D state space: the binned range, else the space's bounds."""
    disc = getattr(agent, "discretizer", None)
    if disc is not None:
        return np.asarray(disc.low), np.asarray(disc.high)
    low, high = np.asarray(space.low, dtype=float), np.asarray(space.high, dtype=float)
    return np.where(np.isfinite(low), low, -1.0), np.where(np.isfinite(high), high, 1.0)


def write_seed_plots(parent: Path, each_seed: bool = True) -> tuple[list[Path], list[str]]:
    """For a ``--seeds`` folder: the learning curve across seeds with its bootstrap band, then (``each_seed``)
    each seed's plots. ``qlearn train`` draws only the first (a seed's plots take about a second each, so a
    32-seed run would spend longer drawing than training); ``qlearn plot`` draws them all."""
    try:
        aggregate = json.loads((parent / "aggregate.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise QlearnError(f"{parent / 'aggregate.json'} is corrupt (not valid JSON)") from None
    fig = plotting.seeds_curve(aggregate)
    out = parent / "seeds_curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written: list[Path] = [out]
    skipped: list[str] = []
    if not each_seed:
        return written, skipped
    for seed_dir in sorted(p for p in parent.iterdir() if p.is_dir() and p.name.startswith("seed_")):
        w, s = write_plots(read_run(seed_dir))
        written += w
        skipped += s
    return written, skipped
