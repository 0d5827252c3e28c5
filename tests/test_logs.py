"""RunLogs: the per-seed episode/evaluation rows of a lockstep run, collected as arrays, written in bulk."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from qlearn.agents.tabular import TabularQAgent
from qlearn.config import TabularConfig
from qlearn.envs import make_env
from qlearn.envs.make import success_array, success_of
from qlearn.envs.vector import make_batched
from qlearn.training import logs as seed_logs
from qlearn.training import train_many
from qlearn.training.logs import RunLogs

NOISY = TabularConfig(alpha=0.5, alpha_end=0.5, epsilon_decay_steps=1000)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def folders(root: Path, k: int) -> list[Path]:
    dirs = [root / f"seed_{i}" for i in range(k)]
    for d in dirs:
        d.mkdir(parents=True)
    return dirs


def test_episodes_of_one_step_are_numbered_per_seed_in_order(tmp_path):
    dirs = folders(tmp_path, 3)
    logs = RunLogs(3, "FrozenLake-v1", dirs)
    done = np.array([[True, False, True, True], [False] * 4, [False, True, False, False]])
    returns = np.arange(12, dtype=float).reshape(3, 4) % 2
    lengths = np.arange(12).reshape(3, 4) + 1
    zeros = np.zeros((3, 4), dtype=bool)
    logs.episodes_ended(40, done, returns, lengths, done, zeros, 0.5, None, 100.0)
    logs.episodes_ended(80, done, returns, lengths, done, zeros, 0.25, 0.125, 200.0)
    np.testing.assert_array_equal(logs.episodes, [6, 0, 2])
    logs.close()
    rows = read_rows(dirs[0] / "metrics.csv")
    assert [int(r["episode"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(r["step"]) for r in rows] == [40, 40, 40, 80, 80, 80]
    assert [int(r["length"]) for r in rows] == [1, 3, 4] * 2
    assert [int(r["success"]) for r in rows] == [0, 0, 1] * 2  # FrozenLake: success is a positive return
    assert [r["loss"] for r in rows] == ["", "", "", "0.125", "0.125", "0.125"]
    assert read_rows(dirs[1] / "metrics.csv") == []
    assert [int(r["length"]) for r in read_rows(dirs[2] / "metrics.csv")] == [10, 10]


def test_success_array_agrees_with_success_of():
    rng = np.random.default_rng(0)
    ret, term, trunc = rng.normal(size=64), rng.random(64) < 0.5, rng.random(64) < 0.5
    for env_id in ("FrozenLake-v1", "MountainCar-v0", "CartPole-v1", "Acrobot-v1", "LunarLander-v3"):
        got = success_array(env_id, ret, term, trunc)
        assert got.tolist() == [success_of(env_id, r, t, u) for r, t, u in zip(ret, term, trunc)]


def run(root: Path) -> tuple[list[Path], object]:
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, NOISY, seeds=(0, 1, 2))
    dirs = folders(root, 3)
    res = train_many(agent, make_batched("FrozenLake-v1", 3, 4, seed=0), 3000, env_id="FrozenLake-v1",
                     eval_every=500, run_dirs=dirs, progress=False, aggregate_dir=root)
    return dirs, res


def test_many_seeds_write_in_bulk_what_few_seeds_write_per_evaluation(tmp_path, monkeypatch):
    """Above PER_SEED_MAX seeds, rows wait for FLUSH_SECS or the end, and no per-seed TensorBoard writer is
    made; what lands in the files is the same, byte for byte except the measured speed."""
    few, res_few = run(tmp_path / "few")
    monkeypatch.setattr(seed_logs, "PER_SEED_MAX", 2)
    monkeypatch.setattr(seed_logs, "FLUSH_SECS", 1e9)
    many, res_many = run(tmp_path / "many")
    np.testing.assert_array_equal(res_few.episodes, res_many.episodes)
    for a, b in zip(few, many):
        assert (a / "evals.csv").read_text() == (b / "evals.csv").read_text()
        rows_a, rows_b = read_rows(a / "metrics.csv"), read_rows(b / "metrics.csv")
        assert len(rows_a) == int(res_few.episodes[int(a.name[5:])]) > 20
        strip = lambda rows: [{k: v for k, v in r.items() if k != "sps"} for r in rows]
        assert strip(rows_a) == strip(rows_b)
        assert (a / "tb").is_dir() and not (b / "tb").exists()
    assert (tmp_path / "many" / "tb").is_dir()


def test_rows_wait_for_the_flush_interval_above_the_per_seed_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(seed_logs, "PER_SEED_MAX", 1)
    monkeypatch.setattr(seed_logs, "FLUSH_SECS", 1e9)
    dirs = folders(tmp_path, 2)
    logs = RunLogs(2, "FrozenLake-v1", dirs)
    done = np.ones((2, 1), dtype=bool)
    logs.episodes_ended(10, done, np.ones((2, 1)), np.ones((2, 1), dtype=int), done, ~done, 0.1, 0.5, 9.0)
    logs.evaluated(10, np.array([0.5, 0.25]), np.array([0.5, 0.25]), np.array([0.5, 0.25]), (0.25, 0.5), 9.0)
    assert read_rows(dirs[0] / "metrics.csv") == [] and read_rows(dirs[0] / "evals.csv") == []
    monkeypatch.setattr(seed_logs, "FLUSH_SECS", 0.0)
    logs.evaluated(20, np.array([0.75, 0.0]), np.array([0.75, 0.0]), np.array([0.75, 0.25]), (0.0, 0.75), 9.0)
    assert [r["score"] for r in read_rows(dirs[1] / "evals.csv")] == ["0.25", "0.0"]
    assert [r["best_score"] for r in read_rows(dirs[1] / "evals.csv")] == ["0.25", "0.25"]
    assert len(read_rows(dirs[0] / "metrics.csv")) == 1
    logs.close()


@pytest.mark.parametrize("k", [1, 5])
def test_counting_without_folders_writes_nothing(tmp_path, k):
    logs = RunLogs(k, "CartPole-v1")
    done = np.ones((k, 2), dtype=bool)
    logs.episodes_ended(5, done, np.full((k, 2), 5.0), np.full((k, 2), 5), ~done, done, 1.0, None, 1.0)
    logs.evaluated(5, np.zeros(k), np.zeros(k), np.zeros(k), (0.0, 0.0), 1.0)
    logs.close()
    np.testing.assert_array_equal(logs.episodes, np.full(k, 2))
    assert not any(tmp_path.iterdir())
