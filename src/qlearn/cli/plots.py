"""Write a run's figures into its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qlearn.errors import QlearnError
from qlearn.runs import RunInfo


def write_plots(run: RunInfo) -> tuple[list[Path], list[str]]:
    """Learning curve and (for discrete states) the Q-table heatmap; returns (written, skipped reasons)."""
    import matplotlib.pyplot as plt

    from qlearn import plotting

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
        q = agent.q_table(0)
    except QlearnError as exc:
        skipped.append(f"Q-table plot skipped: {exc}")
        return written, skipped
    desc = getattr(env.unwrapped, "desc", None)
    ref = None
    if hasattr(env.unwrapped, "P"):
        from qlearn.envs.tabular import TabularMDP, value_iteration

        ref, _ = value_iteration(TabularMDP.from_env(env), agent.config.gamma)
    fig = plotting.q_table_heatmap(q, None if desc is None else np.asarray(desc), reference=ref,
                                   title=f"{agent.kind} Q-table")
    out = run.path / "q_table.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)
    return written, skipped
