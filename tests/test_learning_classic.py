"""Slow learning checks on the classic-control presets (run with: bash scripts/test.sh -m slow).

Each trains with the preset exactly as `qlearn train ENV --seed S` does and evaluates the delivered
agent on 100 greedy episodes.
"""

from __future__ import annotations

import pytest

from qlearn import evaluate, make_env
from qlearn.training.runner import run_experiment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_mountaincar_preset_solves_within_120k_steps(seed, tmp_path):
    res = run_experiment("MountainCar-v0", "dqn", seed=seed, out=str(tmp_path), progress=False)
    assert res.steps <= 120_000
    ev = evaluate(res.agent, make_env("MountainCar-v0"), 100, seed=12345)
    assert ev.mean_return >= -110, (seed, ev.mean_return)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_cartpole_preset_solves_within_50k_steps(seed, tmp_path):
    res = run_experiment("CartPole-v1", "dqn", seed=seed, out=str(tmp_path), progress=False)
    assert res.steps <= 50_000
    ev = evaluate(res.agent, make_env("CartPole-v1"), 100, seed=12345)
    assert ev.mean_return >= 475, (seed, ev.mean_return)

