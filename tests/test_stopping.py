"""Stop rules: --until SCORE (every agent there, by its CI's lower end where sampled) and --patience."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qlearn.training.runner import run_many
from qlearn.training.stopping import StopRule


def row(step, lower, best):
    return {"step": step, "lower": np.array(lower, float), "best_scores": np.array(best, float)}


def test_until_waits_for_every_agent_and_counts_one_once_it_got_there():
    rule = StopRule(until=0.7)
    assert rule.on_eval(row(100, [0.72, 0.5], [0.72, 0.5]))
    assert rule.on_eval(row(200, [0.6, 0.69], [0.72, 0.69]))  # agent 0 dipped, agent 1 not there yet
    assert rule.on_eval(row(300, [0.6, 0.70], [0.72, 0.70])) is False  # agent 0 counts from step 100
    assert rule.reason == "every agent reached 0.7 at step 300"


def test_a_single_sampled_episode_never_meets_until():
    rule = StopRule(until=10.0)
    assert all(rule.on_eval(row(s, [-np.inf], [500.0])) for s in range(1, 50))


def test_patience_counts_evaluations_without_a_new_best():
    rule = StopRule(patience=2)
    assert rule.on_eval(row(1, [0.1, 0.1], [0.1, 0.1]))
    assert rule.on_eval(row(2, [0.0, 0.2], [0.1, 0.2]))  # agent 1 rose
    assert rule.on_eval(row(3, [0.0, 0.0], [0.1, 0.2]))
    assert rule.on_eval(row(4, [0.0, 0.0], [0.1, 0.2])) is False
    assert "2 evaluations" in rule.reason


def test_a_lockstep_run_stops_once_every_seed_reaches_the_score(tmp_path):
    res = run_many("FrozenLake-v1", "dqn", seeds=range(4), n_envs=32, recipe="batched", out=str(tmp_path),
                   progress=False, sets=["until=0.7", "eval_every=500", "checkpoint_every=0", "select_by=model"])
    assert res.steps < 40_000 and res.stopped_by and "reached 0.7" in res.stopped_by
    assert (res.best_scores >= 0.7).all() and (res.delivered_scores >= 0.7).all()
    config = json.loads((res.run_dirs[0] / "config.json").read_text())
    assert config["train"]["until"] == 0.7
    assert json.loads((res.parent / "aggregate.json").read_text())["stopped_by"] == res.stopped_by


@pytest.mark.parametrize("flag, value, said", [("--patience", "-1", "patience"), ("--until", "nan", "until")])
def test_bad_stop_rules_are_one_line_errors(flag, value, said, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "qlearn", "train", "FrozenLake-v1", flag, value, "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
