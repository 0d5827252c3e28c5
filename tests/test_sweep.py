"""Sweeps on a local Ray instance started by the command itself."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qlearn.errors import QlearnError
from qlearn.sweep import load_sweep

ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}


def test_small_grid_sweep_on_local_ray(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("env: FrozenLake-v1\nagent: tabular\nseeds: [0, 1]\nsteps: 3000\n"
                    "params:\n  alpha: [0.05, 0.5]\nset: [eval_every=1000, checkpoint_every=0]\n")
    proc = subprocess.run([sys.executable, "-m", "qlearn", "sweep", str(spec), "--out", str(tmp_path / "out"),
                           "--num-cpus", "2", "--no-progress", "--json"], capture_output=True, text=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    folder = Path(summary["folder"])
    rows = list(csv.DictReader(open(folder / "results.csv")))
    assert sorted((r["config"], r["seed"]) for r in rows) == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    for r in rows:  # every run is a complete run folder whose delivered score is the one reported
        saved = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert saved["score"] == pytest.approx(float(r["score"]))
    means = [c["mean"] for c in summary["configs"]]
    assert summary["best"]["config"] == int(max(range(2), key=lambda i: means[i]))
    assert (folder / "summary.md").read_text().startswith("# Sweep: tabular on FrozenLake-v1")


def test_random_search_draws_reproducibly(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("env: FrozenLake-v1\nsearch: random\nsamples: 5\nrandom_seed: 3\nseeds: 2\n"
                    "params:\n  lr: {low: 0.0001, high: 0.01, log: true}\n  batch_size: [32, 64]\n")
    a, b = load_sweep(spec), load_sweep(spec)
    assert a.configs == b.configs and len(a.configs) == 5 and a.seeds == (0, 1)
    assert all(1e-4 <= c["lr"] <= 1e-2 and c["batch_size"] in (32, 64) for c in a.configs)


@pytest.mark.parametrize("text,needle", [
    ("env: FrozenLake-v1\nparms: {lr: [0.1]}\n", "params"),                  # misspelt key, suggestion
    ("env: FrozenLake-v1\nparams: {lrr: [0.1]}\n", "lrr"),                   # unknown setting
    ("env: FrozenLake-v1\nparams: {lr: [fast]}\n", "lr"),                    # bad value
    ("env: FrozenLak-v1\n", "FrozenLake-v1"),                               # unknown env, suggestion
    ("env: FrozenLake-v1\nsearch: bayes\n", "grid or random"),
    ("env: [unclosed\n", "cannot parse"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, text, needle):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(QlearnError, match="") as info:
        load_sweep(spec)
    assert needle in str(info.value) and "\n" not in str(info.value)
