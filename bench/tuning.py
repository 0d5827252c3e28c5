"""Tuning on Ray Tune: Optuna (TPE) + ASHA with 4 seeds per trial in lockstep, against single-seed trials
given the same budget in env steps, each arm's winner re-evaluated on 32 held-out seeds.

Per env, two ``qlearn sweep`` commands, one after the other on a local Ray instance (``--num-cpus 2``):

- ``4 seeds per trial``: ``samples`` trials, each training seeds 0-3 in lockstep, scored by their IQM;
- ``1 seed per trial``: ``4 x samples`` trials of one seed each (seed 0), the same env steps in all.

Both search the same space with the same search seed and the same ASHA settings. A search's best score
is a maximum over noisy trials, biased upward, so each arm's ``best_recipe.json`` is trained again with
``qlearn train ENV --recipe best_recipe.json --seeds 32 --seed 1000`` (seeds 1000-1031, none of them
seen in the search), and its delivered agents' scores are summarized: IQM with a bootstrap 95% CI, the
mean, and on FrozenLake the exact success of each delivered greedy policy.

Run:  .venv/bin/python bench/tuning.py [--envs frozenlake,cartpole] [--samples 12] [--no-record]
Rows go to bench/results/tuning.jsonl; ``scripts/bench_tables.py`` makes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import record  # bench/ is on the path when run as a script

from qlearn.stats import bootstrap_ci, iqm

SPACES = {
    "frozenlake": {
        "env": "FrozenLake-v1", "agent": "dqn", "recipe": "batched",
        "params": {"lr": {"loguniform": [0.0003, 0.01]}, "batch_size": [64, 128, 256, 512],
                   "target_update_interval": {"randint": [2, 50]}, "hidden": ["32,32", "64,64", "128,128"]},
        "asha": {"grace_period": 5000, "reduction_factor": 3},
    },
    "cartpole": {
        "env": "CartPole-v1", "agent": "pqn", "recipe": None,
        "params": {"lr": {"loguniform": [0.0003, 0.01]}, "minibatches": [2, 4, 8],
                   "q_lambda": {"uniform": [0.5, 0.95]}, "hidden": ["64,64", "128,128", "256,256"]},
        "asha": {"grace_period": 8000, "reduction_factor": 3},
    },
}  # fmt: skip
ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
HELD_OUT = 1000


def qlearn(*args: str) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "qlearn", *args, "--no-progress", "--json"], capture_output=True,
                          text=True, env=ENV)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"qlearn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def sweep(space: dict, seeds: int, samples: int, out: Path) -> tuple[float, dict]:
    spec = {"env": space["env"], "agent": space["agent"], "seeds": seeds, "search": "optuna", "samples": samples,
            "random_seed": 0, "scheduler": "asha", "asha": space["asha"], "params": space["params"]}
    if space["recipe"]:
        spec["recipe"] = space["recipe"]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    path.write_text(json.dumps(spec))
    return qlearn("sweep", str(path), "--out", str(out), "--num-cpus", "2")


def held_out(space: dict, recipe: str, out: Path) -> dict:
    wall, res = qlearn("train", space["env"], "--agent", space["agent"], "--recipe", recipe, "--seeds", "32",
                       "--seed", str(HELD_OUT), "--out", str(out))
    agg = res["aggregate"]
    scores = np.array(agg["scores"], dtype=float)
    lo, hi = bootstrap_ci(scores, stat=iqm, seed=0)
    row = {"iqm": float(iqm(scores)), "iqm_ci95": [float(lo), float(hi)], "mean": float(scores.mean()),
           "min": float(scores.min()), "command_s": wall}
    if agg.get("exact_scores"):
        exact = np.array(agg["exact_scores"], dtype=float)
        row.update(exact_iqm=float(iqm(exact)), exact_min=float(exact.min()), exact_mean=float(exact.mean()))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="frozenlake")
    ap.add_argument("--samples", type=int, default=12, help="trials of the 4-seed arm (the 1-seed arm: 4x)")
    record.add_arguments(ap)
    args = ap.parse_args()
    write = record.recorder("tuning", args)
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    for name in args.envs.split(","):
        space = SPACES[name]
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for seeds, samples in ((4, args.samples), (1, 4 * args.samples)):
                wall, summary = sweep(space, seeds, samples, Path(tmp) / f"s{seeds}")
                best = summary["best"]
                steps = sum(t["env_steps"] or 0 for t in summary["trials"]) * seeds
                again = held_out(space, summary["recipe"], Path(tmp) / f"h{seeds}")
                rows.append({"case": name, "env": space["env"], "agent": space["agent"], "seeds_per_trial": seeds,
                             "trials": samples, "sweep_s": wall, "env_steps": steps, "finished": summary["finished"],
                             "stopped_early": summary["stopped_early"], "failed": summary["failed"],
                             "best_params": best["params"], "best_score": best["score"], "held_out": again,
                             "timing": summary["timing"]})
                print(f"{name}, {seeds} seed(s) per trial: {samples} trials in {wall:.0f} s ({steps:,} env steps, "
                      f"{summary['stopped_early']} stopped early); best {best['params']} scored {best['score']:.3f}; "
                      f"32 held-out seeds: IQM {again['iqm']:.3f} {again['iqm_ci95']}", flush=True)
        write(rows)
    record.show("tuning", args=args)


if __name__ == "__main__":
    main()
