"""Sweeps on a real multi-node Ray cluster started on this machine (``ray.cluster_utils.Cluster``: a head
with no CPUs, so every trial runs on a worker node), and sweeps that lose their driver (killed, or Ctrl-C)
or a node.

Nodes on one machine share one filesystem, so a trial writing straight into the sweep folder would pass
whatever the code did: each trial writes into its own node's scratch folder, and the tests check that
the run folders reached the sweep folder from there and that the scratch copies are gone.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

FAST_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000, "health_check_failure_threshold": 3}


def sweep_file(tmp_path: Path, trials: int, steps: int) -> Path:
    spec = tmp_path / "sweep.yaml"
    alphas = ", ".join(str(round(0.1 + 0.1 * i, 2)) for i in range(trials))
    spec.write_text(f"env: FrozenLake-v1\nagent: tabular\nrecipe: course\nseeds: [0, 1]\nsteps: {steps}\n"
                    f"params:\n  alpha: [{alphas}]\nset: [eval_every=1000, checkpoint_every=0]\n")
    return spec


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    scratch = tmp_path / "scratch"
    monkeypatch.setenv("QLEARN_SWEEP_SCRATCH", str(scratch))  # the nodes' processes inherit it
    monkeypatch.setenv("QLEARN_THREADS", "1")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": FAST_DEATH})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers, scratch
    c.shutdown()


def launch(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "qlearn", "sweep", *args, "--no-progress", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def finish(proc: subprocess.Popen, timeout: int = 400) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def check_collected(summary: dict, scratch: Path, nodes: set[str]) -> None:
    folder = Path(summary["folder"])
    for t in summary["trials"]:
        assert t["status"] == "finished", t
        assert t["node_id"] in nodes  # trained on a worker node, never on the head (it has no CPUs)
        group = folder / t["run_dir"]
        assert group.is_dir() and len(list(group.glob("seed_*/summary.json"))) == 2
        assert Path(t["trial_folder"]) != group and not Path(t["trial_folder"]).exists()  # fetched, then dropped
        assert str(Path(t["trial_folder"])).startswith(str(scratch / t["node_id"][:16]))  # its node's own folder
    for node in nodes:  # (a lost node's folder stays behind: on a real cluster its disk went with it)
        assert not any(p.is_file() for p in (scratch / node[:16]).rglob("*"))


def test_sweep_on_a_two_worker_cluster_brings_every_run_folder_to_the_driver(cluster, tmp_path):
    c, workers, scratch = cluster
    proc = launch([str(sweep_file(tmp_path, 4, 3000)), "--address", c.address, "--out", str(tmp_path / "out")])
    summary = finish(proc)
    worker_ids = {w.node_id for w in workers}
    check_collected(summary, scratch, worker_ids)
    assert {t["node_id"] for t in summary["trials"]} == worker_ids and summary["nodes"] == 3


def test_losing_a_worker_node_mid_sweep_reruns_its_trial_elsewhere(cluster, tmp_path):
    c, workers, scratch = cluster
    doomed, survivor = workers
    proc = launch([str(sweep_file(tmp_path, 3, 15000)), "--address", c.address, "--out", str(tmp_path / "out")])
    mine = scratch / doomed.node_id[:16]
    deadline = time.time() + 120
    while not list(mine.glob("*/*/*/seed_0/config.json")) and time.time() < deadline:  # a trial is training there
        time.sleep(0.2)
    assert time.time() < deadline, "no trial started on the node"
    c.remove_node(doomed, allow_graceful=False)
    summary = finish(proc)
    assert len(summary["trials"]) == 3
    check_collected(summary, scratch, {survivor.node_id})  # every trial ended on the node that stayed


def test_a_killed_driver_resumes_with_only_the_unfinished_trials(tmp_path):
    spec = sweep_file(tmp_path, 3, 8000)
    proc = launch([str(spec), "--out", str(tmp_path / "out"), "--num-cpus", "1"], start_new_session=True)
    deadline = time.time() + 200
    trials_dir = None
    while time.time() < deadline:
        found = list((tmp_path / "out").glob("*/trials/*/*/aggregate.json"))
        if found:
            trials_dir = found[0].parents[2]
            break
        time.sleep(0.2)
    assert trials_dir is not None, "no trial finished"
    time.sleep(1.5)  # Tune's state is at most a second behind
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    before = {p.parent.name: p.stat().st_mtime_ns for p in trials_dir.glob("*/*/aggregate.json")}
    assert 1 <= len(before) < 3
    summary = finish(launch(["--resume", str(trials_dir.parent), "--num-cpus", "1"]))
    assert summary["finished"] == 3 and summary["folder"] == str(trials_dir.parent)
    after = {p.parent.name: p.stat().st_mtime_ns for p in trials_dir.glob("*/*/aggregate.json")}
    assert len(after) == 3 and all(after[t] == m for t, m in before.items())  # finished trials not redone


def test_ctrl_c_stops_an_optuna_search_that_resumes_where_its_study_was(tmp_path):
    spec = tmp_path / "opt.yaml"
    spec.write_text("env: FrozenLake-v1\nagent: tabular\nrecipe: course\nseeds: 2\nsteps: 6000\nsearch: optuna\nsamples: 4\n"
                    "random_seed: 3\nparams:\n  alpha: {loguniform: [0.02, 0.9]}\n"
                    "set: [eval_every=1000, checkpoint_every=0]\n")
    proc = launch([str(spec), "--out", str(tmp_path / "out"), "--num-cpus", "1"], start_new_session=True)
    deadline = time.time() + 200
    while not list((tmp_path / "out").glob("*/trials/*/*/aggregate.json")) and time.time() < deadline:
        time.sleep(0.2)
    assert time.time() < deadline, "no trial finished"
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "qlearn sweep --resume" in err and "Traceback" not in err
    first = json.loads(out)
    assert first["interrupted"] and 1 <= first["finished"] < 4
    folder = Path(first["folder"])
    done = {t["trial"]: t["alpha"] for t in first["trials"] if t["status"] == "finished"}
    summary = finish(launch(["--resume", str(folder), "--num-cpus", "1"]))
    assert summary["finished"] == 4 and not summary["interrupted"]
    alphas = {t["trial"]: t["alpha"] for t in summary["trials"]}
    assert all(alphas[t] == a for t, a in done.items())  # finished trials kept as they were
    with sqlite3.connect(folder / "optuna.db") as db:  # one study, continued: 4 trials, none drawn twice
        drawn = [round(v, 9) for (v,) in db.execute(
            "select param_value from trial_params where param_name = 'alpha'").fetchall()]
    assert len(drawn) == len(set(drawn)) == 4 and set(drawn) == {round(a, 9) for a in alphas.values()}
