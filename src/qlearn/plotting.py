"""Figures of a run. Each function returns a matplotlib ``Figure`` and never calls ``show()``.

* :func:`learning_curve`: episode return and success rate (smoothed), and the evaluation score.
* :func:`q_table_heatmap`: the Q-table as a heatmap beside the lake, with the greedy policy drawn as
  arrows on the map (holes and goal marked), optionally beside a reference table.
* :func:`return_distributions`: a distributional agent's learned return distributions beside the exact
  ones, as CDFs (their Wasserstein-1 distance is the area between the curves).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from qlearn.envs.info import env_info  # noqa: E402

ACTION_NAMES = ["left", "down", "right", "up"]
_DXY = {0: (-0.3, 0), 1: (0, 0.3), 2: (0.3, 0), 3: (0, -0.3)}


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a CSV as float arrays (blank cells become NaN); empty dict if the file is missing."""
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]) for k in rows[0]}


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        return y
    c = np.cumsum(np.insert(np.nan_to_num(y), 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def learning_curve(run_dir: str | Path, window: int = 100) -> Figure:
    """Return and success per episode (smoothed over ``window`` episodes) and the evaluation score."""
    run_dir = Path(run_dir)
    ep = read_csv(run_dir / "metrics.csv")
    ev = read_csv(run_dir / "evals.csv")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), constrained_layout=True)
    ax = axes[0]
    if ep:
        ax.plot(ep["step"], ep["return"], ".", ms=2, alpha=0.15, color="tab:blue", label="episode return")
        ax.plot(ep["step"], smooth(ep["return"], window), color="tab:blue", label=f"return ({window}-ep mean)")
        ax.plot(ep["step"], smooth(ep["success"], window), color="tab:green", label=f"success ({window}-ep mean)")
        ax.legend(loc="lower right", fontsize=8)
    else:  # e.g. a short Atari run: no game ended yet
        ax.text(0.5, 0.5, "no episode ended yet", ha="center", transform=ax.transAxes)
    ax.set_xlabel("environment step")
    ax.set_title("training episodes (epsilon-greedy)")
    ax = axes[1]
    if ev:
        ax.plot(ev["step"], ev["score"], "o-", ms=3, color="tab:red", label="greedy score")
        ax.plot(ev["step"], ev["best_score"], "--", color="gray", label="best so far (kept)")
        if np.isfinite(ev.get("exact_score", np.array([np.nan]))).any():
            ax.plot(ev["step"], ev["exact_score"], color="black", lw=1, label="exact score (env's model, reported)")
        if np.isfinite(ev.get("q_error", np.array([np.nan]))).any():
            err = ax.twinx()
            err.plot(ev["step"], ev["q_error"], ":", color="tab:brown", label="max |Q - Q*|")
            err.set_ylabel("max |Q - Q*|")
            err.set_ylim(bottom=0)
            err.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no evaluations logged", ha="center", transform=ax.transAxes)
    ax.set_xlabel("environment step")
    ax.set_title("evaluation of the greedy agent")
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[2]
    if ep and np.isfinite(ep.get("loss", np.array([np.nan]))).any():
        ok = np.isfinite(ep["loss"])
        ax.semilogy(ep["step"][ok], smooth(ep["loss"][ok], window), color="tab:purple", label="TD loss (smoothed)")
        ax.set_ylabel("loss")
        ax.legend(loc="upper left", fontsize=8)
    if ep:
        ax2 = ax.twinx()
        ax2.plot(ep["step"], ep["epsilon"], color="tab:orange", label="epsilon")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("epsilon")
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("environment step")
    ax.set_title("loss and exploration")
    fig.suptitle(run_dir.name, fontsize=9)
    return fig


def seeds_curve(aggregate: dict) -> Figure:
    """Mean greedy score across seeds with its bootstrap 95% band (from ``aggregate.json``)."""
    curve = aggregate["curve"]
    steps = np.array([c["step"] for c in curve])
    mean = np.array([c["mean"] for c in curve])
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    if all(c["ci95"] is not None for c in curve):  # one seed (K=1 on N envs) has no band
        lo = np.array([c["ci95"][0] for c in curve])
        hi = np.array([c["ci95"][1] for c in curve])
        ax.fill_between(steps, lo, hi, alpha=0.25, color="tab:red", label="bootstrap 95% CI of the mean")
    ax.plot(steps, mean, color="tab:red", label=f"mean over {len(aggregate['seeds'])} seeds")
    ax.set_xlabel("environment step (per agent)")
    ax.set_ylabel("greedy score")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("learning curve across seeds")
    return fig


def return_distributions(panels: list[dict[str, Any]], kind: str) -> Figure:
    """One panel per state: the learned distribution of the greedy action and the exact one of the greedy
    policy, as CDFs. ``panels``: dicts with ``state``, ``learned`` and ``exact`` ``(returns, probs)``,
    ``w1`` and ``floor``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), constrained_layout=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for (returns, probs), label, style in (
            (panel["exact"], "exact (from the model P)", dict(color="black", lw=2)),
            (panel["learned"], f"learned ({kind})", dict(color="tab:blue", lw=1.5)),
        ):
            order = np.argsort(returns)
            x, c = np.asarray(returns)[order], np.cumsum(np.asarray(probs)[order])
            ax.step(np.concatenate([[x[0]], x]), np.concatenate([[0.0], c]), where="post", label=label, **style)
        ax.set_xlabel("discounted return G")
        ax.set_ylabel("P(return <= G)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"state {panel['state']}: Wasserstein-1 {panel['w1']:.3f} (floor {panel['floor']:.3f})")
        ax.legend(loc="upper left", fontsize=8)
    return fig


def values_vs_optimal(q: np.ndarray, q_star: np.ndarray, desc: np.ndarray) -> Figure:
    """Utility map max_a Q beside the optimal V*, and their difference, laid on the lake."""
    desc = np.asarray(desc).astype(str)
    shape = desc.shape
    v, v_star = q.max(axis=1).reshape(shape), q_star.max(axis=1).reshape(shape)
    ends = np.isin(desc, ["H", "G"])  # never acted in: a network's output there means nothing
    v, v_star = np.where(ends, np.nan, v), np.where(ends, np.nan, v_star)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    top = max(float(np.nanmax(v)), float(np.nanmax(v_star)), 1e-9)
    panels: list[tuple[Any, np.ndarray, str, str, tuple[float, float] | None]] = [
        (axes[0], v, "learned utility max_a Q(s, a)", "Blues", (0, top)),
        (axes[1], v_star, "optimal V* (value iteration)", "Blues", (0, top)),
        (axes[2], v - v_star, "learned - optimal", "RdBu", None),
    ]
    for ax, data, title, cmap, lim in panels:
        if lim is None:
            m = max(float(np.nanmax(np.abs(data))), 1e-9)
            lim = (-m, m)
        im = ax.imshow(data, cmap=cmap, vmin=lim[0], vmax=lim[1])
        fig.colorbar(im, ax=ax, shrink=0.8)
        for r in range(shape[0]):
            for c in range(shape[1]):
                tile = desc[r, c]
                label = tile if tile in "HG" else f"{data[r, c]:.2f}"
                if shape[0] <= 8:
                    ax.text(c, r, label, ha="center", va="center", fontsize=7 if shape[0] > 4 else 9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
    return fig


def q_table_heatmap(
    q: np.ndarray,
    desc: np.ndarray | None = None,
    *,
    reference: np.ndarray | None = None,
    title: str = "learned Q-table",
) -> Figure:
    """Heatmap of ``q`` (states x actions) and, for a lake map, the greedy policy drawn on the lake.

    With ``reference`` (e.g. the optimal Q*), a third panel shows the reference policy on the map.
    """
    q = np.asarray(q)
    panels = 1 + (desc is not None) + (reference is not None and desc is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 1, 4.6), constrained_layout=True, squeeze=False)
    axes = axes[0]
    ax = axes[0]
    im = ax.imshow(q, aspect="auto", cmap="viridis")
    ax.set_xticks(range(q.shape[1]), ACTION_NAMES[: q.shape[1]] if q.shape[1] <= 4 else range(q.shape[1]))
    ax.set_ylabel("state")
    if q.shape[0] <= 20:
        ax.set_yticks(range(q.shape[0]))
        for s in range(q.shape[0]):
            for a in range(q.shape[1]):
                ax.text(
                    a,
                    s,
                    f"{q[s, a]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if q[s, a] < q.max() * 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    if desc is not None:
        _lake(axes[1], q, desc, "greedy policy on the lake")
        if reference is not None:
            _lake(axes[2], np.asarray(reference), desc, "reference policy (Q*)")
    return fig


def _lake(ax, q: np.ndarray, desc: np.ndarray, title: str) -> None:
    desc = np.asarray(desc).astype(str)
    rows, cols = desc.shape
    v = q.max(axis=1).reshape(rows, cols)
    ax.imshow(v, cmap="Blues", vmin=0, vmax=max(float(v.max()), 1e-9))
    for r in range(rows):
        for c in range(cols):
            tile, s = desc[r, c], r * cols + c
            if tile == "H":
                ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="black"))
                ax.text(c, r, "H", ha="center", va="center", color="white", fontsize=10)
            elif tile == "G":
                ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="gold"))
                ax.text(c, r, "G", ha="center", va="center", fontsize=10, weight="bold")
            else:
                dx, dy = _DXY[int(q[s].argmax())]
                ax.arrow(c - dx / 2, r - dy / 2, dx, dy, head_width=0.15, length_includes_head=True, color="crimson")
                if tile == "S":
                    ax.text(c - 0.42, r - 0.3, "S", fontsize=8)
                if rows <= 8:
                    ax.text(c, r + 0.38, f"{v[r, c]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def action_labels(env_id: str | None, n_actions: int) -> list[str]:
    """Human names of an environment's actions where its :func:`~qlearn.envs.info.env_info` knows them,
    ``action i`` otherwise."""
    names = env_info(env_id).action_names if env_id else None
    if names is not None and len(names) == n_actions:
        return list(names)
    return [f"action {i}" for i in range(n_actions)]


def value_policy_grid(
    agent,
    low: np.ndarray,
    high: np.ndarray,
    *,
    resolution: int = 101,
    dims: tuple[str, str] = ("position", "velocity"),
    env_id: str | None = None,
) -> Figure:
    """For a 2-D continuous state space: the learned value max_a Q(s, a) and the greedy action over a grid.

    Works for any agent of the protocol (a DQN's network or a binned tabular agent): the agent is queried
    at every grid point through ``q_values``.
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    xs = np.linspace(low[0], high[0], resolution)
    ys = np.linspace(low[1], high[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    obs = np.stack([gx.ravel(), gy.ravel()], axis=-1)[None].astype(np.float32)  # [K=1, N, 2]
    q = agent.q_values(obs)[0].reshape(resolution, resolution, -1)
    value, policy = q.max(-1), q.argmax(-1)
    labels = action_labels(env_id, q.shape[-1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    extent = (low[0], high[0], low[1], high[1])
    im = axes[0].imshow(value, origin="lower", extent=extent, aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=axes[0], label="max_a Q(s, a)")
    axes[0].set_title("learned value V(s) = max_a Q(s, a)")
    cmap = plt.get_cmap("coolwarm", len(labels))
    axes[1].imshow(
        policy,
        origin="lower",
        extent=extent,
        aspect="auto",
        cmap=cmap,
        vmin=-0.5,
        vmax=len(labels) - 0.5,
        interpolation="nearest",
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(labels))]
    axes[1].legend(handles, labels, loc="upper left", fontsize=8, framealpha=0.8)
    axes[1].set_title("greedy action")
    for ax in axes:
        ax.set_xlabel(dims[0])
        ax.set_ylabel(dims[1])
    return fig
