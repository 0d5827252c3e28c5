"""The run spec: built from presets and --set once, written as config.json by its own to_dict, read back by
--config and --resume; the library's run(spec) and resume(path) are what qlearn train calls."""

from __future__ import annotations

import json

import pytest

from qlearn import QlearnError, RunSpec, resume, run
from qlearn.config import DQNConfig, TrainConfig


def test_build_lays_preset_recipe_and_sets_in_that_order():
    spec = RunSpec.build("FrozenLake-v1", "dqn", seeds=[4, 5], n_envs=32, recipe="batched", sets=["lr=0.002"])
    assert spec.lockstep and spec.seeds == (4, 5) and spec.train.seed == 4
    assert spec.agent_config.lr == 0.002  # --set over the recipe's lr
    plain = RunSpec.build("FrozenLake-v1", "dqn")
    assert plain.lockstep and plain.n_envs == 128 and plain.agent_config != spec.agent_config  # the preset's envs
    course = RunSpec.build("FrozenLake-v1", "dqn", recipe="course")  # the course's shape: one agent, one env
    assert not course.lockstep and course.n_envs == 1 and course.agent_config.train_freq == 4
    assert course.train.steps == 50_000 and course.train.keep_best


@pytest.mark.parametrize("bad, needle", [
    (dict(agent="sarsa"), "unknown agent"),
    (dict(seeds=(1, 1), lockstep=True), "distinct"),
    (dict(seeds=(1, 2)), "lockstep"),
    (dict(n_envs=0, lockstep=True), "--envs"),
    (dict(pretrain="course", seeds=(0, 1), lockstep=True), "--pretrain"),
    (dict(agent="tabular"), "TabularConfig"),
])
def test_a_spec_that_makes_no_sense_is_refused_in_one_line(bad, needle):
    with pytest.raises(QlearnError, match=needle):
        RunSpec("FrozenLake-v1", **bad)


def test_config_json_is_the_spec_and_reads_back(tmp_path):
    spec = RunSpec("FrozenLake-v1", "dqn", DQNConfig(learning_starts=100, hidden=(16,)),
                   TrainConfig(steps=600, eval_every=300, checkpoint_every=0), seeds=(7,))
    res = run(spec, out=str(tmp_path), progress=False)
    written = json.loads((res.run_dir / "config.json").read_text())
    assert {k: written[k] for k in spec.to_dict()} == spec.to_dict()
    assert RunSpec.from_dict(written) == spec.with_device("cpu")


def test_an_earlier_config_without_spec_version_still_reads():
    old = {"env_id": "FrozenLake-v1", "env_kwargs": {}, "agent": "dqn", "agent_config": {"lr": 1e-3},
           "train": {"steps": 1000, "seed": 3}, "pretrain": None, "device": "cpu", "recipe": None,
           "versions": {"qlearn": "0.1.0"}}
    spec = RunSpec.from_dict(old)
    assert spec.seeds == (3,) and spec.agent_config.lr == 1e-3 and spec.agent_config.engine == "torch"
    with pytest.raises(QlearnError, match="not a qlearn run config"):
        RunSpec.from_dict({"env_id": 3})


def test_a_seeds_run_reruns_and_resumes_from_its_spec(tmp_path):
    from qlearn.training.runner import rerun_from_config

    spec = RunSpec.build("FrozenLake-v1", "tabular", seeds=[0, 1], steps=800, sets=["eval_every=400"])
    first = run(spec, out=str(tmp_path / "a"), progress=False)
    again = rerun_from_config(str(first.run_dirs[1]), out=str(tmp_path / "b"), progress=False)
    assert [d.name for d in again.run_dirs] == ["seed_0", "seed_1"]
    assert again.delivered_scores.tolist() == first.delivered_scores.tolist()  # same seeds, same draws
    with pytest.raises(QlearnError, match="already finished"):
        resume(first.parent, progress=False)
