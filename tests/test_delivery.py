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
    np.testing.assert_allclose(res.selection_scores, np.maximum(hist.max(axis=0), hist[-1]))
    assert res.delivered_scores.mean() < res.selection_scores.mean(), (res.delivered_scores, res.selection_scores)
    for i, d in enumerate(res.run_dirs):
        summary = json.loads((d / "summary.json").read_text())
        assert summary["score_from"] == "fresh episodes"
        assert summary["score"] == res.delivered_scores[i] and summary["selection_score"] == res.selection_scores[i]
    aggregate = json.loads((res.parent / "aggregate.json").read_text())
    assert aggregate["scores"] == [float(x) for x in res.delivered_scores]


def test_exact_scores_are_reported_as_they_are(tmp_path):
    res = run_many("FrozenLake-v1", "tabular", seeds=range(2), steps=2_000, out=str(tmp_path), progress=False,
                   sets=["eval_every=500"])
    assert res.score_from == "exact"
    np.testing.assert_array_equal(res.delivered_scores, res.selection_scores)
    np.testing.assert_allclose(res.delivered_scores, np.array(res.eval_scores).max(axis=0))
