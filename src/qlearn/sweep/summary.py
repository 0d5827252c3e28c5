"""A finished (or interrupted) sweep, written down: ``results.csv``, ``summary.json``, ``summary.md``, a
plot of score against each hyperparameter and the best configuration as a recipe file.

A trial's ``score`` is the IQM across its seeds of the delivered agents' scores (bootstrap 95% interval
beside it). The best trial is chosen among the trials that trained their whole budget: a trial stopped
early by ASHA reports a score from part of the budget, not comparable with the others.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from qlearn.runs import write_json
from qlearn.sweep.spec import Sweep, set_texts

RECIPE_FILE = "best_recipe.json"
COLUMNS = [
    "score", "score_low", "score_high", "score_mean", "scores", "env_steps", "diverged", "sps",
    "node_id", "trial_folder", "nice",
]  # fmt: skip


def rows_of(folder: Path, sweep: Sweep, grid: Any) -> list[dict[str, Any]]:
    """One row per trial Tune knows of, with its status and where its run folder is in ``folder``."""
    if grid is None:
        return []
    trials = {t.trial_id: t for t in getattr(getattr(grid, "_experiment_analysis", None), "trials", None) or []}
    rows = []
    for result in grid:
        m = dict(result.metrics or {})
        trial = str(m.get("trial_id") or _trial_id(result.path, trials))
        tune_trial = trials.get(trial)
        error = m.get("error") or (str(result.error).strip().splitlines()[-1] if result.error else "")
        if error:
            status = "failed"
        elif m.get("final"):
            status = "finished"
        elif "env_steps" in m and getattr(tune_trial, "status", "TERMINATED") == "TERMINATED":
            status = "stopped early"  # by the scheduler: Tune ended it before its final report
        else:
            status = "unfinished"  # pending or running when the sweep was interrupted
        config = result.config or getattr(tune_trial, "config", None) or {}
        run_dir = Path("trials") / trial / m["run_dir"] if m.get("run_dir") else None
        row = {"trial": trial, **{k: config.get(k) for k in sweep.params}, "status": status}
        row.update({k: m.get(k) for k in COLUMNS})
        row["run_dir"] = str(run_dir) if run_dir is not None and (folder / run_dir).is_dir() else ""
        row["error"] = error
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def _trial_id(path: Any, trials: dict[str, Any]) -> str:
    """A trial's id from its Tune folder (``trainable_ID_...``) where it reported nothing."""
    name = Path(str(path)).name
    return next((t for t in trials if f"_{t}_" in f"{name}_"), name)


def best_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [r for r in rows if r["status"] == "finished" and _finite(r["score"])]
    return max(done, key=lambda r: r["score"]) if done else None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def write_summary(folder: Path, sweep: Sweep, grid: Any, *, timing: dict[str, float], nodes: int) -> dict[str, Any]:
    """Write the sweep's results into ``folder``; the summary (also ``summary.json``)."""
    rows = rows_of(folder, sweep, grid)
    best = best_of(rows)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "stopped early", "failed", "unfinished")}
    expected = sweep.trials or len(rows)
    counts["unfinished"] += max(0, expected - len(rows))
    summary: dict[str, Any] = {
        "env": sweep.env, "agent": sweep.agent, "seeds": list(sweep.seeds), "search": sweep.search,
        "scheduler": sweep.scheduler, "samples": sweep.samples, "random_seed": sweep.random_seed,
        "cpus_per_trial": sweep.cpus_per_trial, "nodes": nodes, "metric": "IQM across seeds of the delivered score",
        "trials": rows, "best": None, "finished": counts["finished"], "stopped_early": counts["stopped early"],
        "failed": counts["failed"], "unfinished": counts["unfinished"], "timing": timing,
    }  # fmt: skip
    if best is not None:
        params = {k: best[k] for k in sweep.params}
        summary["best"] = {"trial": best["trial"], "params": params, "score": best["score"],
                           "ci95": [best["score_low"], best["score_high"]], "run_dir": best["run_dir"]}  # fmt: skip
        write_json(folder / RECIPE_FILE, recipe(sweep, params, best))
        summary["recipe"] = str(folder / RECIPE_FILE)
    _write_csv(folder / "results.csv", sweep, rows)
    write_json(folder / "summary.json", summary)
    (folder / "summary.md").write_text(markdown(sweep, summary))
    if any(_finite(r["score"]) for r in rows) and sweep.params:
        plot(folder / "score_vs_params.png", sweep, rows)
        summary["plot"] = str(folder / "score_vs_params.png")
    summary["folder"] = str(folder)
    return summary


def recipe(sweep: Sweep, params: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    """The best configuration as a recipe ``qlearn train ENV --recipe FILE`` takes: the base recipe's
    settings (if the sweep had one), the sweep's fixed settings and the trial's, split by what they set."""
    from qlearn.agents import agent_classes
    from qlearn.config import TrainConfig, parse_sets
    from qlearn.presets import get_recipe

    _, cfg_cls = agent_classes(sweep.agent)
    agent_sets, train_sets = parse_sets(set_texts(params, sweep.fixed), cfg_cls, TrainConfig)
    base = get_recipe(sweep.env, sweep.recipe) if sweep.recipe else {}
    agent = {**base.get(sweep.agent, {}), **agent_sets}
    train = {**base.get("train", {}).get(sweep.agent, {}), **train_sets}
    if sweep.steps:
        train["steps"] = sweep.steps
    out: dict[str, Any] = {
        "_doc": f"qlearn sweep's best trial {best['trial']} on {sweep.env}: IQM {best['score']:.4g} over seeds "
        f"{list(sweep.seeds)} (a search's best score is biased upward: re-evaluate on new seeds)",
        "env": sweep.env,
        sweep.agent: json.loads(json.dumps(agent, default=list)),
        "train": {sweep.agent: train},
    }
    envs = sweep.envs or base.get("envs")
    if envs:
        out["envs"] = envs
    return out


def _write_csv(path: Path, sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    keys = ["trial", *sweep.params, "status", *COLUMNS, "run_dir", "error"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "scores": " ".join(f"{x:.4g}" for x in r["scores"] or [])})


def markdown(sweep: Sweep, summary: dict[str, Any]) -> str:
    def num(x: Any) -> str:
        return f"{x:.4g}" if _finite(x) else "-"

    lines = [
        f"# Sweep: {sweep.agent} on {sweep.env}, {sweep.search} search"
        + (f" with {sweep.scheduler}" if sweep.scheduler else "")
        + f", seeds {list(sweep.seeds)} per trial ({sweep.cpus_per_trial:g} CPU per trial, "
        + f"{summary['nodes']} Ray node{'' if summary['nodes'] == 1 else 's'})",
        "",
        f"{summary['finished']} finished, {summary['stopped_early']} stopped early, {summary['failed']} failed, "
        f"{summary['unfinished']} unfinished. Score: IQM across seeds of the delivered score, bootstrap 95% CI.",
        "",
        f"| trial | {' | '.join(sweep.params)} | status | score (IQM) | 95% CI | mean | env steps |",
        "|---|" + "---|" * len(sweep.params) + "---|---|---|---|---|",
    ]
    ranked = sorted(summary["trials"], key=lambda r: -r["score"] if _finite(r["score"]) else math.inf)
    for r in ranked:
        values = " | ".join(str(r[k]) for k in sweep.params)
        lines.append(
            f"| {r['trial']} | {values} | {r['status']} | {num(r['score'])} | "
            f"[{num(r['score_low'])}, {num(r['score_high'])}] | {num(r['score_mean'])} | {r['env_steps'] or '-'} |"
        )
    if summary["best"]:
        b = summary["best"]
        lines += ["", f"Best: trial {b['trial']} {json.dumps(b['params'])}, IQM {num(b['score'])}.",
                  f"As a recipe: `qlearn train {sweep.env} --agent {sweep.agent} --recipe "
                  f"{summary.get('recipe', RECIPE_FILE)}`"]  # fmt: skip
    t = summary["timing"]
    lines += ["", f"Ray start {t['ray_start_s']} s, search {t['search_s']} s, Ray shutdown {t['ray_stop_s']} s."]
    return "\n".join(lines) + "\n"


def plot(path: Path, sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    """Score (IQM with its interval) against each hyperparameter, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(sweep.params)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    scored = [r for r in rows if _finite(r["score"])]
    for ax, key in zip(axes[0], keys):
        p = sweep.params[key]
        numeric = all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool) for r in scored)
        labels = sorted({str(r[key]) for r in scored})
        for status, marker in (("finished", "o"), ("stopped early", "x")):
            pts = [r for r in scored if r["status"] == status]
            if not pts:
                continue
            xs = [r[key] if numeric else labels.index(str(r[key])) for r in pts]
            ys = [r["score"] for r in pts]
            err = [[max(0.0, r["score"] - (r["score_low"] or r["score"])) for r in pts],
                   [max(0.0, (r["score_high"] or r["score"]) - r["score"]) for r in pts]]  # fmt: skip
            ax.errorbar(xs, ys, yerr=err, fmt=marker, capsize=2, label=status, alpha=0.8)
        if numeric and p.log_scale:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score (IQM across seeds)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{sweep.agent} on {sweep.env}: {sweep.search} search", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
