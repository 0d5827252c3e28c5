"""Sweeps on Ray Tune, on a local Ray instance started by the command itself; the sweep file's checks."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qlearn.errors import QlearnError
from qlearn.stats import iqm
from qlearn.sweep import load_sweep
from qlearn.sweep.trial import score_row, seed_scores

ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}


def sweep_cmd(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qlearn", "sweep", *args, "--no-progress"], capture_output=True,
                          text=True, env=env or ENV, timeout=timeout)


def test_grid_sweep_trains_each_configuration_s_seeds_in_lockstep(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("env: FrozenLake-v1\nagent: tabular\nrecipe: course\nseeds: [0, 1]\nsteps: 3000\n"
                    "params:\n  alpha: [0.05, 0.5]\nset: [eval_every=1000, checkpoint_every=0]\n")
    proc = sweep_cmd(str(spec), "--out", str(tmp_path / "out"), "--num-cpus", "2", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    folder = Path(summary["folder"])
    rows = list(csv.DictReader(open(folder / "results.csv")))
    assert sorted(float(r["alpha"]) for r in rows) == [0.05, 0.5] and {r["status"] for r in rows} == {"finished"}
    for r in rows:  # one lockstep group per trial, in the sweep folder, its score the IQM of the seeds' scores
        group = folder / r["run_dir"]
        assert sorted(p.name for p in group.glob("seed_*")) == ["seed_0", "seed_1"]
        seeds = [json.loads((group / f"seed_{s}" / "summary.json").read_text())["score"] for s in (0, 1)]
        assert float(r["score"]) == pytest.approx(iqm(np.array(seeds)))
        assert json.loads((group / "seed_0" / "config.json").read_text())["agent_config"]["alpha"] == float(r["alpha"])
    scores = {float(r["alpha"]): float(r["score"]) for r in rows}
    assert summary["best"]["params"]["alpha"] == max(scores, key=lambda a: scores[a])
    assert (folder / "summary.md").read_text().startswith("# Sweep: tabular on FrozenLake-v1, grid search, seeds [0, 1] per trial (1 CPU per trial, 1 Ray node)")
    assert (folder / "score_vs_params.png").stat().st_size > 5_000
    assert summary["timing"]["ray_start_s"] > 0 and summary["cpus_per_trial"] == 1
    # the winner as a recipe file that qlearn train takes
    train = subprocess.run([sys.executable, "-m", "qlearn", "train", "FrozenLake-v1", "--agent", "tabular",
                            "--recipe", str(folder / "best_recipe.json"), "--steps", "300", "--out",
                            str(tmp_path / "again"), "--json"], capture_output=True, text=True, env=ENV, timeout=120)
    assert train.returncode == 0, train.stderr[-2000:]
    config = json.loads((Path(json.loads(train.stdout)["run_dir"]) / "config.json").read_text())
    assert config["agent_config"]["alpha"] == summary["best"]["params"]["alpha"]
    assert config["train"]["eval_every"] == 1000


def test_optuna_search_with_asha_keeps_its_study_and_stops_on_env_steps(tmp_path):
    spec = tmp_path / "opt.yaml"
    spec.write_text("env: FrozenLake-v1\nagent: tabular\nrecipe: course\nseeds: 2\nsteps: 4000\nsearch: optuna\nsamples: 4\n"
                    "random_seed: 7\nscheduler: asha\nasha: {grace_period: 1000, reduction_factor: 2}\n"
                    "params:\n  alpha: {loguniform: [0.02, 0.9]}\n  epsilon_end: [0.01, 0.2]\n"
                    "set: [eval_every=1000, checkpoint_every=0]\n")
    shared = tmp_path / "shared"  # --storage: a folder every node mounts; trials write there directly
    proc = sweep_cmd(str(spec), "--storage", str(shared), "--num-cpus", "2", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    folder = Path(summary["folder"])
    assert folder.parent == shared and all(t["trial_folder"] == str(folder / "trials" / t["trial"])
                                           for t in summary["trials"])
    trials = summary["trials"]
    assert len(trials) == 4 and summary["finished"] + summary["stopped_early"] == 4
    for t in trials:
        assert 0.02 <= t["alpha"] <= 0.9 and t["epsilon_end"] in (0.01, 0.2)
        assert (t["env_steps"] == 4000) == (t["status"] == "finished")  # ASHA's time is env steps per seed
        assert list((folder / "trials" / t["trial"]).glob("*/seed_1/config.json"))  # every trial's files, even cut
    with sqlite3.connect(folder / "optuna.db") as db:  # the study Optuna's TPE drew from, in the sweep folder
        (n,) = db.execute("select count(*) from trials").fetchone()
        drawn = {round(v, 9) for (v,) in db.execute(
            "select param_value from trial_params where param_name = 'alpha'").fetchall()}
    assert n == 4 and drawn == {round(t["alpha"], 9) for t in trials}
    assert summary["best"] is None or summary["best"]["trial"] in {t["trial"] for t in trials
                                                                   if t["status"] == "finished"}


def test_a_trial_that_cannot_train_is_reported_and_the_sweep_goes_on(tmp_path):
    spec = tmp_path / "mem.yaml"  # the second buffer asks for more memory than there is: refused in the trial
    spec.write_text("env: FrozenLake-v1\nagent: dqn\nrecipe: course\nseeds: 1\nsteps: 600\n"
                    "params:\n  buffer_size: [1000, 1000000000000]\n"
                    "set: [eval_every=300, learning_starts=100, checkpoint_every=0]\n")
    proc = sweep_cmd(str(spec), "--out", str(tmp_path / "out"), "--num-cpus", "2", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    by_size = {t["buffer_size"]: t for t in summary["trials"]}
    assert by_size[1000]["status"] == "finished" and by_size[10**12]["status"] == "failed"
    assert "memory" in by_size[10**12]["error"] and summary["best"]["params"] == {"buffer_size": 1000}


def test_diverged_seeds_count_as_failures_not_gaps():
    scores = seed_scores(np.array([0.7, 0.6, np.nan, 0.74]), diverged=[1], floor=0.0)
    assert scores.tolist() == [0.7, 0.0, 0.0, 0.74]
    row = score_row(scores, 5000)
    assert row["score"] == pytest.approx(iqm(scores)) and row["env_steps"] == 5000
    assert row["score_low"] <= row["score"] <= row["score_high"]


def test_search_space_maps_onto_tune(tmp_path):
    from ray import tune
    from ray.tune.search.sample import Categorical, Float, Integer

    spec = tmp_path / "s.yaml"
    spec.write_text("env: FrozenLake-v1\nsearch: random\nsamples: 5\nrandom_seed: 3\nseeds: 2\n"
                    "params:\n  lr: {low: 0.0001, high: 0.01, log: true}\n  batch_size: [32, 64]\n"
                    "  gamma: {uniform: [0.9, 0.99]}\n  target_update_interval: {randint: [10, 100]}\n")
    sweep = load_sweep(spec)
    space = {k: p.to_tune() for k, p in sweep.params.items()}
    assert isinstance(space["lr"], Float) and space["lr"].lower == 1e-4 and space["lr"].upper == 0.01
    assert type(space["lr"].get_sampler()).__name__ == "_LogUniform"
    assert isinstance(space["gamma"], Float) and type(space["gamma"].get_sampler()).__name__ == "_Uniform"
    assert isinstance(space["batch_size"], Categorical) and space["batch_size"].categories == [32, 64]
    assert isinstance(space["target_update_interval"], Integer) and space["target_update_interval"].upper == 100
    assert sweep.trials == 5 and sweep.seeds == (0, 1)
    grid = tmp_path / "g.yaml"
    grid.write_text("env: FrozenLake-v1\nparams:\n  lr: [0.1, 0.01]\n  double: [true, false]\n")
    g = load_sweep(grid)
    assert g.params["lr"].to_tune() == tune.grid_search([0.1, 0.01]) and g.trials == 4


def test_existing_sweep_files_stay_valid():
    for path in Path(__file__).parents[1].glob("examples/sweeps/*.yaml"):
        assert load_sweep(path).trials >= 1


@pytest.mark.parametrize("text,needle", [
    ("env: FrozenLake-v1\nparms: {lr: [0.1]}\n", "params"),                  # misspelt key, suggestion
    ("env: FrozenLake-v1\nparams: {lrr: [0.1]}\n", "lrr"),                   # unknown setting
    ("env: FrozenLake-v1\nparams: {lr: [fast]}\n", "lr"),                    # bad value
    ("env: FrozenLak-v1\n", "FrozenLake-v1"),                               # unknown env, suggestion
    ("env: FrozenLake-v1\nsearch: bayes\n", "grid, random or optuna"),
    ("env: [unclosed\n", "cannot parse"),
    ("env: FrozenLake-v1\nsearch: optuna\nparams: {lr: {grid: [0.1, 0.2]}}\n", "takes no grid"),
    ("env: FrozenLake-v1\nparams: {lr: {loguniform: [0.001, 0.1]}}\n", "grid search takes lists"),
    ("env: FrozenLake-v1\nsearch: random\nparams: {lr: {loguniform: [0, 0.1]}}\n", "low > 0"),
    ("env: FrozenLake-v1\nsearch: random\nparams: {lr: {normal: [0, 1]}}\n", "must be a list or one of"),
    ("env: FrozenLake-v1\nscheduler: hyperband\n", "asha or none"),
    ("env: FrozenLake-v1\nasha: {grace: 10}\n", "grace_period"),
    ("env: FrozenLake-v1\nseeds: [0, 0]\n", "distinct"),
    ("env: FrozenLake-v1\nrecipe: quick\n", "batched"),                      # unknown recipe, the ones there are
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, text, needle):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(QlearnError) as info:
        load_sweep(spec)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_resume_of_a_folder_that_is_no_sweep_is_a_one_line_error(tmp_path):
    proc = sweep_cmd("--resume", str(tmp_path))
    assert proc.returncode != 0 and "not a sweep folder" in proc.stderr and "Traceback" not in proc.stderr
    proc = sweep_cmd()
    assert proc.returncode != 0 and "--resume" in proc.stderr and "Traceback" not in proc.stderr
