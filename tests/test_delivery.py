"""What a run delivers: the kept agent, and an honest score for it."""

from __future__ import annotations

import json

import numpy as np

from qlearn.training.runner import run_many


def test_a_kept_agent_chosen_by_sampled_episodes_is_scored_again_on_fresh_ones(tmp_path):
    # Two episodes per evaluation and fifteen evaluations: the best of them overstates the agent it chose.
    res = run_many("CartPole-v1", "dqn", seeds=range(4), steps=3_000, out=str(tmp_path), progress=False,
                   sets=["eval_every=200", "eval_episodes=2", "hidden=16", "learning_starts=200"])
    assert res.score_from == "fresh episodes"
    hist = np.array(res.eval_scores)
    # An earlier agent replaces the last only where its evaluation was better beyond the noise.
    assert all(sel in (hist[:, i].max(), hist[-1, i]) for i, sel in enumerate(res.selection_scores))
    assert not np.array_equal(res.delivered_scores, res.selection_scores)  # scored again, on other episodes
    for i, d in enumerate(res.run_dirs):
        summary = json.loads((d / "summary.json").read_text())
        assert summary["score_from"] == "fresh episodes"
        assert summary["score"] == res.delivered_scores[i] and summary["selection_score"] == res.selection_scores[i]
    aggregate = json.loads((res.parent / "aggregate.json").read_text())
    assert aggregate["scores"] == [float(x) for x in res.delivered_scores]


def test_exact_scores_are_reported_as_they_are(tmp_path):
    res = run_many("FrozenLake-v1", "tabular", seeds=range(2), steps=2_000, out=str(tmp_path), progress=False,
                   sets=["eval_every=500", "select_by=model"])
    assert res.score_from == "exact" and res.selected_by == "model"
    np.testing.assert_array_equal(res.delivered_scores, res.selection_scores)
    np.testing.assert_allclose(res.delivered_scores, np.array(res.eval_scores).max(axis=0))


def test_by_default_the_model_reports_and_evaluation_episodes_choose(tmp_path):
    """On an env with a model, the kept agent is chosen by greedy episodes; the exact score and the Q-value
    error of what was delivered come from the model and are written beside them, labelled."""
    import csv

    from qlearn import RunSpec, run
    from qlearn.agents import load_agent
    from qlearn.envs import TabularMDP, make_env, success_probability, value_iteration
    from qlearn.report import chosen_by

    spec = RunSpec.build("FrozenLake-v1", "tabular", n_envs=1, steps=3_000, sets=["eval_every=500", "checkpoint_every=0"])
    assert spec.train.select_by == "episodes"
    res = run(spec, out=str(tmp_path), progress=False)
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert summary["selected_by"] == "episodes" and summary["score_from"] in ("fresh episodes", "selection episodes")
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1"))
    q = load_agent(res.run_dir / "agent.pt").q_table()
    assert np.isclose(summary["exact_score"], success_probability(mdp, q))
    q_star, _ = value_iteration(mdp, spec.agent_config.gamma)
    acts_in = mdp.reachable() & ~mdp.terminal
    assert np.isclose(summary["q_error"], np.abs(q - q_star)[acts_in].max())
    with open(res.run_dir / "evals.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and all(0 <= float(r["exact_score"]) <= 1 and float(r["q_error"]) > 0 for r in rows)
    config = json.loads((res.run_dir / "config.json").read_text())
    assert config["train"]["select_by"] == "episodes" and "only reports" in chosen_by(config)

    chosen = run(RunSpec.build("FrozenLake-v1", "tabular", n_envs=1, steps=3_000,
                               sets=["eval_every=500", "checkpoint_every=0", "select_by=model"]),
                 out=str(tmp_path / "m"), progress=False)
    summary = json.loads((chosen.run_dir / "summary.json").read_text())
    assert summary["selected_by"] == "model" and summary["score_from"] == "exact"
    assert summary["score"] == summary["exact_score"]
    assert "the model chose it" in chosen_by(json.loads((chosen.run_dir / "config.json").read_text()))


def test_a_lockstep_group_on_an_env_with_a_model_scores_on_episodes_and_reports_exact(tmp_path):
    res = run_many("FrozenLake-v1", "dqn", seeds=range(3), n_envs=32, recipe="batched", out=str(tmp_path),
                   progress=False, steps=8_000, sets=["checkpoint_every=0"])
    agg = json.loads((res.parent / "aggregate.json").read_text())
    assert agg["selected_by"] == "episodes" and res.score_from == "fresh episodes"
    assert len(agg["exact_scores"]) == 3 and agg["exact_scores"] != agg["scores"]
    assert len(res.eval_exact) == len(res.eval_scores) and np.array(res.eval_q_error).shape == (len(res.eval_steps), 3)
