"""Many seeds in one process: train_many, score_agents, run_many and the per-agent select()/weights()."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from qlearn.agents.base import read_checkpoint
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.tabular import TabularQAgent
from qlearn.config import DQNConfig, TabularConfig
from qlearn.envs import make_env
from qlearn.envs.tabular import TabularMDP, success_probability
from qlearn.envs.vector import make_batched
from qlearn.errors import QlearnError
from qlearn.training import ManyResult, train_many
from qlearn.training.scoring import Scorer
from qlearn.training.runner import run_many

# A fast, noisy tabular learner: its greedy score goes up and down, so "keep the best" has work to do.
NOISY = TabularConfig(alpha=0.5, alpha_end=0.5, epsilon_decay_steps=1000)


def scalar_tags(tb_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tabular_many(tmp_path_factory):
    out = tmp_path_factory.mktemp("many")
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, NOISY, seeds=(0, 1, 2))
    venv = make_batched("FrozenLake-v1", 3, 2, seed=0)
    dirs = [out / f"seed_{s}" for s in agent.seeds]
    for d in dirs:
        d.mkdir()
    result = train_many(agent, venv, 4000, env_id="FrozenLake-v1", eval_every=500, keep_best=True,
                        run_dirs=dirs, progress=False)
    return result, dirs, TabularMDP.from_env(env)


def test_train_many_writes_a_run_folder_per_seed(tabular_many):
    result, dirs, mdp = tabular_many
    assert isinstance(result, ManyResult) and result.run_dirs == dirs
    assert result.steps == 4000 and result.agent.k == 3
    assert result.eval_steps == [500 * i for i in range(1, 9)]
    hist = np.array(result.eval_scores)
    assert hist.shape == (8, 3)
    for i, d in enumerate(dirs):
        assert {"metrics.csv", "evals.csv", "agent.pt", "last.pt", "summary.json"} <= {p.name for p in d.iterdir()}
        evals = read_csv(d / "evals.csv")
        assert [int(r["step"]) for r in evals] == result.eval_steps
        assert np.allclose([float(r["score"]) for r in evals], hist[:, i])
        assert np.allclose([float(r["best_score"]) for r in evals], np.maximum.accumulate(hist[:, i]))
        episodes = read_csv(d / "metrics.csv")
        assert len(episodes) == result.episodes[i] > 50
        assert all(int(r["episode"]) == j + 1 for j, r in enumerate(episodes))
        assert {float(r["return"]) for r in episodes} <= {0.0, 1.0}
        summary = json.loads((d / "summary.json").read_text())
        assert summary["steps"] == 4000 and summary["episodes"] == result.episodes[i]
        assert summary["score"] == pytest.approx(result.delivered_scores[i])
        assert summary["best_score"] == pytest.approx(result.best_scores[i])
        assert summary["final_score"] == pytest.approx(result.final_scores[i])


def test_saved_agents_are_single_and_score_what_was_reported(tabular_many):
    result, dirs, mdp = tabular_many
    env = make_env("FrozenLake-v1")
    tables = []
    for i, d in enumerate(dirs):
        best = TabularQAgent.load(d / "agent.pt", env)
        last = TabularQAgent.load(d / "last.pt", env)
        assert best.k == last.k == 1 and best.seeds == (i,)
        assert success_probability(mdp, best.q_table()) == pytest.approx(result.delivered_scores[i], abs=1e-12)
        assert success_probability(mdp, last.q_table()) == pytest.approx(result.final_scores[i], abs=1e-12)
        np.testing.assert_array_equal(best.q_table(), result.agent.q_table(i))  # the live agent holds the kept one
        tables.append(best.q_table())
    assert not np.array_equal(tables[0], tables[1]) and not np.array_equal(tables[1], tables[2])


def test_keep_best_delivers_the_best_evaluated_table(tabular_many):
    result, _, _ = tabular_many
    hist = np.array(result.eval_scores)
    np.testing.assert_allclose(result.delivered_scores, hist.max(axis=0))
    np.testing.assert_allclose(result.best_scores, hist.max(axis=0))
    assert (result.best_scores > result.final_scores).any(), "this run was chosen to have a best above the final"


def test_without_keep_best_the_final_table_is_delivered():
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, NOISY, seeds=(0, 1, 2))
    result = train_many(agent, make_batched("FrozenLake-v1", 3, 2, seed=0), 4000, env_id="FrozenLake-v1",
                        eval_every=500, keep_best=False, progress=False)
    np.testing.assert_array_equal(result.delivered_scores, result.final_scores)
    mdp = TabularMDP.from_env(env)
    for i in range(3):
        assert success_probability(mdp, agent.q_table(i)) == pytest.approx(result.final_scores[i], abs=1e-12)


def test_train_many_refuses_mismatched_batches():
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, seeds=(0, 1))
    with pytest.raises(QlearnError, match="K=2"):
        train_many(agent, make_batched("FrozenLake-v1", 3, 1), 100, env_id="FrozenLake-v1", progress=False)
    dqn = DQNAgent.for_env(make_env("CartPole-v1"), DQNConfig(hidden=(8,)), seeds=(0,))
    with pytest.raises(QlearnError, match="eval_env"):
        train_many(dqn, make_batched("CartPole-v1", 1, 1), 100, env_id="CartPole-v1", progress=False)


# ------------------------------------------------------------------------------------- independence
def test_each_agent_learns_only_from_its_own_transitions():
    agent = TabularQAgent.for_env(make_env("FrozenLake-v1"), seeds=(0, 1, 2))
    obs = np.array([[0, 1], [0, 1], [0, 1]])
    actions = np.array([[2, 1], [2, 1], [2, 1]])
    rewards = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    nxt = np.array([[1, 5], [1, 5], [1, 5]])
    no = np.zeros((3, 2), dtype=bool)
    agent.observe(obs, actions, rewards, nxt, no, no)
    q = agent.q_table(None)
    assert np.all(q[1] == 0), "agent 1 saw only zero rewards from an all-zero table"
    alpha = agent.config.alpha
    assert q[0, 0, 2] == pytest.approx(alpha) and q[0, 1, 1] == pytest.approx(alpha)
    assert q[2, 0, 2] == 0 and q[2, 1, 1] == pytest.approx(alpha)
    assert np.count_nonzero(q[0]) == 2 and np.count_nonzero(q[2]) == 1
    # a second round: agent 1 still untouched, agent 0 bootstraps from its own table only
    agent.observe(nxt, actions, np.zeros((3, 2)), obs, no, no)
    assert np.all(agent.q_table(1) == 0)


def test_dqn_agents_start_from_their_own_seed():
    """Each stacked network is initialised from its own seed: agent 0 is the same whatever its neighbours."""
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(hidden=(16,))
    a = DQNAgent.for_env(env, cfg, seeds=(0, 1, 2))
    b = DQNAgent.for_env(env, cfg, seeds=(0, 7, 9))
    c = DQNAgent.for_env(env, cfg, seeds=(0,))
    np.testing.assert_array_equal(a.q_table(0), b.q_table(0))
    np.testing.assert_array_equal(a.q_table(0), c.q_table(0))
    assert not np.array_equal(a.q_table(1), b.q_table(1))
    assert not np.array_equal(a.q_table(0), a.q_table(1))


# ------------------------------------------------------------------------------------- select(k)
def trained_dqn(k: int = 3) -> DQNAgent:
    env = make_env("FrozenLake-v1")
    agent = DQNAgent.for_env(env, DQNConfig(hidden=(16,), batch_size=16, learning_starts=0, train_freq=1),
                             seeds=tuple(range(k)))
    rng = np.random.default_rng(0)
    no = np.zeros((k, 2), dtype=bool)
    for _ in range(12):
        agent.observe(rng.integers(0, 16, (k, 2)), rng.integers(0, 4, (k, 2)), rng.random((k, 2)),
                      rng.integers(0, 16, (k, 2)), no, no)
    assert agent.updates > 0
    return agent


def exp_avgs(agent: DQNAgent) -> list[torch.Tensor]:
    return [agent.optimizer.state[p]["exp_avg"] for p in agent.net.parameters()]


def test_dqn_select_copies_one_agent_out(tmp_path):
    agent = trained_dqn()
    full = agent.q_table(None)
    before = [t.clone() for t in exp_avgs(agent)]
    one = agent.select(1)
    assert one.k == 1 and one.seeds == (1,)
    np.testing.assert_allclose(one.q_table(0), full[1], rtol=0, atol=1e-6)
    for mine, whole in zip(exp_avgs(one), before):
        assert mine.shape[0] == 1
        assert torch.equal(mine, whole[1:2])
    assert one.steps == agent.steps and one.updates == agent.updates
    for mine, whole in zip(one.target.parameters(), agent.target.parameters()):
        assert torch.equal(mine, whole[1:2])
    path = one.save(tmp_path / "one.pt")
    back = DQNAgent.load(path, make_env("FrozenLake-v1"))
    assert back.k == 1 and back.seeds == (1,) and back.steps == one.steps and back.updates == one.updates
    np.testing.assert_array_equal(back.q_table(0), one.q_table(0))
    for x, y in zip(exp_avgs(back), exp_avgs(one)):
        assert torch.equal(x, y)


def test_dqn_select_leaves_the_source_agent_alone():
    agent = trained_dqn()
    before = [t.clone() for t in exp_avgs(agent)]
    agent.select(1)
    # checked before any further training: with the bug, an optimizer step on mismatched moments crashes
    assert [t.shape for t in exp_avgs(agent)] == [t.shape for t in before]
    two = agent.select(2)
    for mine, whole in zip(exp_avgs(two), before):
        assert torch.equal(mine, whole[2:3])


def test_train_many_saves_each_dqn_with_its_own_optimizer_state(tmp_path):
    env = make_env("FrozenLake-v1")
    agent = DQNAgent.for_env(env, DQNConfig(hidden=(16,), batch_size=16, learning_starts=50, train_freq=2),
                             seeds=(0, 1, 2))
    dirs = [tmp_path / f"seed_{s}" for s in range(3)]
    for d in dirs:
        d.mkdir()
    train_many(agent, make_batched("FrozenLake-v1", 3, 1, seed=0), 200, env_id="FrozenLake-v1", eval_every=100,
               run_dirs=dirs, progress=False)
    moments = [read_checkpoint(d / "last.pt")["state"]["optimizer"]["state"][0]["exp_avg"] for d in dirs]
    assert all(m.shape[0] == 1 for m in moments)
    assert not torch.equal(moments[0], moments[1]) and not torch.equal(moments[0], moments[2])


# ---------------------------------------------------------------------------------- score_agents
def first_episode_returns(env_id: str, k: int, n: int, seed: int, policy) -> np.ndarray:
    """Return of the first episode of each of the K x N envs under ``policy`` (a twin of the eval env)."""
    venv = make_batched(env_id, k, n, seed=seed)
    obs = venv.reset()
    total, running = np.zeros((k, n)), np.ones((k, n), dtype=bool)
    while running.any():
        obs, r, te, tr, _ = venv.step(torch.as_tensor(policy(obs.numpy())))
        total += r.numpy() * running
        running &= ~(te | tr).numpy()
    return total


def test_score_agents_sampled_mode_on_cartpole():
    env = make_env("CartPole-v1")
    agent = DQNAgent.for_env(env, DQNConfig(hidden=(16,)), seeds=(0, 1, 2))
    eval_env = make_batched("CartPole-v1", 3, 5, seed=7)
    scores = Scorer("CartPole-v1", eval_env=eval_env)(agent).score
    assert scores.shape == (3,)
    assert np.all((scores >= 1) & (scores <= 500))
    expected = first_episode_returns("CartPole-v1", 3, 5, 7, lambda o: agent.act(o, greedy=True)).mean(axis=1)
    np.testing.assert_allclose(scores, expected)

    class AlwaysRight:  # every episode ends in about ten steps: the score is the mean first-episode length
        k = 3

        def act(self, obs, greedy=False):
            return np.ones(obs.shape[:2], dtype=np.int64)

    scores = Scorer("CartPole-v1", eval_env=make_batched("CartPole-v1", 3, 5, seed=8))(AlwaysRight()).score
    expected = first_episode_returns("CartPole-v1", 3, 5, 8, lambda o: np.ones(o.shape[:2], dtype=np.int64))
    np.testing.assert_allclose(scores, expected.mean(axis=1))
    assert np.all(scores < 20)


# ------------------------------------------------------------------------------------------ run_many
def test_one_seed_on_many_envs_opens_as_its_seed_and_a_group_asks_for_one(tmp_path):
    from qlearn import QlearnError
    from qlearn.runs import read_run

    one = run_many("FrozenLake-v1", "tabular", seeds=[3], n_envs=4, steps=400, out=str(tmp_path), progress=False)
    assert one.parent.name.startswith("FrozenLake-v1__tabular__3__")  # one seed: named like a lone run
    assert read_run(one.parent).path == one.parent / "seed_3" == one.run_dirs[0]
    two = run_many("FrozenLake-v1", "tabular", seeds=[0, 1], n_envs=4, steps=400, out=str(tmp_path), progress=False)
    with pytest.raises(QlearnError, match="holds 2 seeds"):
        read_run(two.parent)


def test_run_many_writes_seed_folders_and_aggregate(tmp_path):
    res = run_many("FrozenLake-v1", seeds=[0, 1], steps=2000, sets=["eval_every=1000", "learning_starts=200"],
                   out=str(tmp_path), progress=False)
    parent = res.parent
    assert parent.parent == tmp_path and parent.name.startswith("FrozenLake-v1__dqn__seeds0-1__")
    assert {p.name for p in parent.iterdir()} == {"seed_0", "seed_1", "aggregate.json", "aggregate_curve.csv", "tb"}
    tags = scalar_tags(parent / "tb")
    assert {"eval/score_mean", "eval/score_iqm", "eval/score_ci95_low", "eval/score_ci95_high"} <= tags
    for s in (0, 1):
        d = parent / f"seed_{s}"
        assert {"config.json", "metrics.csv", "evals.csv", "agent.pt", "last.pt", "summary.json"} <= {
            p.name for p in d.iterdir()}
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["train"]["seed"] == s and cfg["lockstep_seeds"] == [0, 1]
        assert cfg["agent_config"]["learning_starts"] == 200 and cfg["batched_env"] == "TabularBatchedEnv"
        assert DQNAgent.load(d / "agent.pt", make_env("FrozenLake-v1")).seeds == (s,)
    agg = json.loads((parent / "aggregate.json").read_text())
    assert agg["seeds"] == [0, 1]
    assert {"mean", "ci95", "iqm", "iqm_ci95", "min", "max", "n"} <= set(agg["final_score"])
    assert agg["final_score"]["n"] == 2 and len(agg["scores"]) == 2
    assert agg["final_score"]["mean"] == pytest.approx(np.mean(agg["scores"]))
    lo, hi = agg["final_score"]["ci95"]
    assert min(agg["scores"]) <= lo <= agg["final_score"]["mean"] <= hi <= max(agg["scores"])
    assert [row["step"] for row in agg["curve"]] == [1000, 2000]
    assert all(len(row["ci95"]) == 2 for row in agg["curve"])
    rows = (parent / "aggregate_curve.csv").read_text().splitlines()
    assert rows[0] == "step,mean,ci95_low,ci95_high" and len(rows) == 3
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1000, 2000]
    for s, score in zip((0, 1), agg["scores"]):
        assert json.loads((parent / f"seed_{s}" / "summary.json").read_text())["score"] == pytest.approx(score)


def test_run_many_refuses_bad_seeds(tmp_path):
    with pytest.raises(QlearnError, match="distinct"):
        run_many("FrozenLake-v1", seeds=[1, 1], steps=100, out=str(tmp_path), progress=False)
    with pytest.raises(QlearnError):
        run_many("FrozenLake-v1", seeds=[], steps=100, out=str(tmp_path), progress=False)
    with pytest.raises(QlearnError, match="--envs"):
        run_many("FrozenLake-v1", seeds=[0], n_envs=0, steps=100, out=str(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())


def test_seed_folders_get_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from qlearn.training.runner import run_many

    res = run_many("FrozenLake-v1", "tabular", seeds=[0, 1], steps=1500, sets=["eval_every=500"], out=str(tmp_path),
                   progress=False)
    for d in res.run_dirs:
        acc = EventAccumulator(str(d / "tb"))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"charts/episodic_return", "eval/score", "charts/SPS"} <= tags
        assert [e.step for e in acc.Scalars("eval/score")] == [500, 1000, 1500]


def test_recipe_settings_lie_over_the_preset():
    from qlearn.presets import preset, recipe_envs

    base, base_train = preset("FrozenLake-v1", "dqn")
    agent, train = preset("FrozenLake-v1", "dqn", "batched")
    assert agent["train_freq"] == 32 and base["train_freq"] == 128
    assert agent["hidden"] == base["hidden"] and agent["double"] is True  # untouched preset keys stay
    assert train["steps"] == 40_000 and base_train["steps"] == 300_000
    assert train["keep_best"] is True and base_train["keep_best"] is False
    assert recipe_envs("FrozenLake-v1", "batched") == 32 and recipe_envs("FrozenLake-v1", None) is None


@pytest.mark.slow
def test_batched_recipe_ends_every_seed_at_the_optimum(tmp_path):
    """The batched recipe's claim: 32 seeds in lockstep, each final network (not a kept peak) >= 0.70."""
    res = run_many("FrozenLake-v1", seeds=range(32), n_envs=32, recipe="batched", sets=["keep_best=false"],
                   out=str(tmp_path), progress=False)
    final = np.asarray(res.eval_exact[-1])  # exact, from the model (evaluation episodes scored the run)
    assert (final >= 0.70).all(), final
    assert final.mean() >= 0.735


@pytest.mark.slow
@pytest.mark.parametrize("agent, bound", [("dqn", 0.05), ("tabular", 0.02)])
def test_default_settings_deliver_the_optimum_with_q_values_near_q_star(tmp_path, agent, bound):
    """Issue 16's claim for FrozenLake's defaults (no recipe, no model in training or delivery): every seed's
    delivered greedy policy at the optimum 0.7402 and its max |Q - Q*| within ``bound``."""
    res = run_many("FrozenLake-v1", agent, seeds=range(5), n_envs=None, out=str(tmp_path), progress=False)
    assert res.n_envs > 1 and res.selected_by == "episodes"
    assert (np.asarray(res.delivered_exact) >= 0.7401).all(), res.delivered_exact
    assert (np.asarray(res.delivered_q_error) <= bound).all(), res.delivered_q_error


@pytest.mark.parametrize("native", [True, False])
def test_lockstep_resumes_from_its_checkpoint_bit_for_bit(tmp_path, native):
    """Sampled scoring (CartPole: an evaluation env beside the training envs), native or Gymnasium vector envs:
    continuing from the checkpoint taken at step 1,200 ends exactly where the uninterrupted run does."""
    from qlearn.training import checkpoint as ckpt

    def parts():
        agent = DQNAgent.for_env(make_env("CartPole-v1"), DQNConfig(learning_starts=200, batch_size=32),
                                 seeds=(0, 1))
        venv = make_batched("CartPole-v1", 2, 3, seed=0, native=native)
        return agent, venv, make_batched("CartPole-v1", 2, 4, seed=9, native=native)

    class KeepCheckpoint:  # a finished run removes its checkpoint: copy it at the last evaluation
        def on_eval(self, row):
            if row["step"] == 1800:
                shutil.copy(tmp_path / ckpt.FILENAME, tmp_path / "kept.pkl")

    agent, venv, eval_env = parts()
    full = train_many(agent, venv, 1800, env_id="CartPole-v1", eval_env=eval_env, eval_every=600, eval_episodes=4,
                      progress=False, aggregate_dir=tmp_path, checkpoint_every=1200, hooks=[KeepCheckpoint()])
    assert not (tmp_path / ckpt.FILENAME).exists()
    payload = ckpt.load(tmp_path / "kept.pkl")
    assert payload["loop"]["step"] == 1200
    agent2, venv2, eval_env2 = parts()
    again = train_many(agent2, venv2, 1800, env_id="CartPole-v1", eval_env=eval_env2, eval_every=600,
                       eval_episodes=4, progress=False, resume=payload)
    assert again.eval_steps == full.eval_steps == [600, 1200, 1800]
    np.testing.assert_array_equal(np.array(again.eval_scores), np.array(full.eval_scores))
    for a, b in zip(full.agent.weights(), again.agent.weights()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(again.episodes, full.episodes)


def test_a_stopped_lockstep_run_writes_its_agents_marked_interrupted(tmp_path, monkeypatch):
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, NOISY, seeds=(0, 1))
    dirs = [tmp_path / "seed_0", tmp_path / "seed_1"]
    for d in dirs:
        d.mkdir()
    calls = {"n": 0}
    real = agent.observe

    def observe(*args, **kwargs):  # Ctrl-C arrives during the 700th step
        calls["n"] += 1
        if calls["n"] == 700:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(agent, "observe", observe)
    res = train_many(agent, make_batched("FrozenLake-v1", 2, 1, seed=0), 5000, env_id="FrozenLake-v1",
                     eval_every=500, run_dirs=dirs, progress=False)
    assert res.interrupted and res.steps == 699 and res.eval_steps == [500, 699]
    for d in dirs:
        summary = json.loads((d / "summary.json").read_text())
        assert summary["interrupted"] and summary["steps"] == 699
        assert TabularQAgent.load(d / "agent.pt", env).k == 1
        assert read_csv(d / "evals.csv")[-1]["step"] == "699"


def test_cartpole_batched_recipe_reaches_a_solved_peak_in_seconds(tmp_path):
    """The recipe's documented claim (presets.json): through the library path of `qlearn train CartPole-v1
    --recipe batched`, seeds 0-4 deliver a network scoring >= 475 for at least 3 of 5, none below 300."""
    delivered = [float(run_many("CartPole-v1", seeds=[s], n_envs=32, recipe="batched", out=str(tmp_path),
                                progress=False).delivered_scores[0]) for s in range(5)]
    assert sum(x >= 475 for x in delivered) >= 3 and min(delivered) >= 300, delivered
