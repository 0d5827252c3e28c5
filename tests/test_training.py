"""The training loop: what a run writes, keeping the best agent, stopping early, and learning itself."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from qlearn import DQNAgent, DQNConfig, TabularConfig, TabularQAgent, evaluate, make_env, train
from qlearn.envs import TabularMDP, success_probability
from qlearn.training.runner import run_experiment


class StopAfter:
    """Callback that stops after ``n`` episodes."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_episode(self, info):
        self.seen += 1
        return self.seen < self.n


class InterruptAt:
    """Callback that simulates Ctrl-C at an evaluation."""

    def on_eval(self, info):
        if info["step"] >= 600:
            raise KeyboardInterrupt


def test_run_folder_logs_every_episode_and_eval(tmp_path):
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, seed=0)
    res = train(agent, env, 2_000, run_dir=tmp_path, eval_every=500, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == res.episodes > 0
    assert sum(int(r["length"]) for r in rows) <= 2_000
    assert int(rows[-1]["step"]) <= 2_000 and [int(r["episode"]) for r in rows] == list(range(1, len(rows) + 1))
    evals = list(csv.DictReader(open(tmp_path / "evals.csv")))
    assert [int(e["step"]) for e in evals] == [500, 1000, 1500, 2000]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2_000 and summary["episodes"] == res.episodes


def test_tensorboard_scalars_use_cleanrl_names(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = make_env("FrozenLake-v1")
    agent = DQNAgent.for_env(env, DQNConfig(learning_starts=100, batch_size=32, buffer_size=1000), seed=0)
    train(agent, env, 600, run_dir=tmp_path, eval_every=300, progress=False)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/SPS", "charts/epsilon", "losses/td_loss", "eval/score"} <= tags


def test_keep_best_delivers_the_best_evaluated_agent(tmp_path):
    """A tabular agent with a huge constant learning rate oscillates; the delivered table must score
    exactly the best evaluation, and last.pt keeps the final table."""
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    cfg = TabularConfig(alpha=1.0, alpha_end=1.0, epsilon_decay_steps=1)
    agent = TabularQAgent.for_env(env, cfg, seed=1)
    res = train(agent, env, 6_000, run_dir=tmp_path, eval_every=200, progress=False, select_by="model")
    scores = [h["score"] for h in res.history]
    assert res.best_score == max(scores)
    assert success_probability(mdp, agent.q_table()) == pytest.approx(res.best_score)
    assert res.delivered_score == res.best_score
    last = TabularQAgent.load(tmp_path / "last.pt")
    assert success_probability(mdp, last.q_table()) == pytest.approx(scores[-1])


def test_keep_best_off_delivers_the_final_agent():
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, TabularConfig(alpha=1.0, alpha_end=1.0), seed=1)
    res = train(agent, env, 3_000, eval_every=200, keep_best=False, progress=False)
    mdp = TabularMDP.from_env(env)
    assert success_probability(mdp, agent.q_table()) == pytest.approx(res.eval_exact[-1][0])
    assert res.delivered_exact[0] == pytest.approx(res.eval_exact[-1][0]) and res.selected_by == "episodes"


def test_callback_stops_early():
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, seed=0)
    res = train(agent, env, 50_000, callbacks=[StopAfter(5)], progress=False)
    assert res.episodes == 5 and res.steps < 50_000


def test_interrupt_keeps_what_was_learned(tmp_path):
    env = make_env("FrozenLake-v1")
    agent = TabularQAgent.for_env(env, seed=0)
    res = train(agent, env, 50_000, run_dir=tmp_path, eval_every=300, callbacks=[InterruptAt()], progress=False)
    assert res.interrupted and res.steps == 600
    saved = TabularQAgent.load(tmp_path / "agent.pt")
    assert saved.steps == agent.steps == 600
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is True


def test_train_refuses_bad_arguments():
    from qlearn import QlearnError

    env = make_env("FrozenLake-v1")
    with pytest.raises(QlearnError, match="steps"):
        train(TabularQAgent.for_env(env), env, 0, progress=False)
    with pytest.raises(QlearnError, match="K=2"):
        train(TabularQAgent.for_env(env, seeds=(0, 1)), env, 10, progress=False)


def test_run_experiment_validates_before_creating_a_folder(tmp_path):
    from qlearn import QlearnError

    with pytest.raises(QlearnError):
        run_experiment("FrozenLake-v1", "dqn", sets=["lr=-1"], out=str(tmp_path), progress=False)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------- learning
def test_tabular_learns_the_deterministic_lake():
    env = make_env("FrozenLake-v1", is_slippery=False)
    agent = TabularQAgent.for_env(env, TabularConfig(epsilon_decay_steps=3_000, alpha=0.5), seed=0)
    train(agent, env, 5_000, eval_every=5_000, keep_best=False, progress=False)
    res = evaluate(agent, env, episodes=20, seed=0)
    assert res.success_rate == 1.0 and res.mean_length == 6


def test_dqn_learns_the_slippery_lake_quickly():
    """Seeded 10k-step run (~3 s): the delivered agent's exact greedy success beats 0.6 (optimum 0.74;
    the untrained net scores ~0.05)."""
    env = make_env("FrozenLake-v1")
    cfg = DQNConfig(lr=1e-3, lr_end=1e-4, lr_decay_steps=10_000, epsilon_decay_steps=4_000, learning_starts=500,
                    target_update_interval=100)
    agent = DQNAgent.for_env(env, cfg, seed=0)
    res = train(agent, env, 10_000, eval_every=500, progress=False)
    p = success_probability(TabularMDP.from_env(env), agent.q_table())
    assert p == pytest.approx(res.delivered_exact[0])  # chosen by evaluation episodes, reported by the model
    assert p >= 0.6, p


def test_pretrained_dqn_plays_like_the_course_table():
    from qlearn.agents.pretrain import pretrain
    from qlearn.reference import COURSE_Q_TABLE

    env = make_env("FrozenLake-v1")
    agent = DQNAgent.for_env(env, seed=0)
    mse = pretrain(agent, np.array(COURSE_Q_TABLE), epochs=1_500)
    assert mse < 1e-4
    mdp = TabularMDP.from_env(env)
    assert success_probability(mdp, agent.q_table()) == pytest.approx(0.7402, abs=1e-3)
    # the target network was synced: bootstrapped values start from the fitted table
    import torch

    x = agent.encoder.all_states().unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(agent.target(x), agent.net(x))


@pytest.mark.slow
@pytest.mark.parametrize("agent_kind", ["dqn", "tabular"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_default_preset_reaches_070_on_slippery_4x4(agent_kind, seed, tmp_path):
    res = run_experiment("FrozenLake-v1", agent_kind, seed=seed, out=str(tmp_path), progress=False)
    p = success_probability(TabularMDP.from_env(make_env("FrozenLake-v1")), res.agent.q_table())
    assert p >= 0.70, (agent_kind, seed, p)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "FrozenLake8x8-v1"])
@pytest.mark.parametrize("agent_kind", ["dqn", "tabular"])
def test_default_preset_solves_non_slippery_maps(env_id, agent_kind, tmp_path):
    res = run_experiment(env_id, agent_kind, seed=0, out=str(tmp_path), env_kwargs={"is_slippery": False},
                         progress=False)
    env = make_env(env_id, is_slippery=False)
    assert success_probability(TabularMDP.from_env(env), res.agent.q_table()) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["dqn", "tabular"])
def test_same_seed_same_run_bit_for_bit(kind):
    """CPU reproducibility of the whole loop: env seeding, exploration, sampling, training."""
    env = make_env("FrozenLake-v1")
    tables = []
    for _ in range(2):
        cls = DQNAgent if kind == "dqn" else TabularQAgent
        agent = cls.for_env(env, seed=7)
        res = train(agent, env, 2_500, seed=7, eval_every=500, progress=False)
        tables.append((agent.q_table(), [h["score"] for h in res.history], res.episodes))
    assert np.array_equal(tables[0][0], tables[1][0])
    assert tables[0][1:] == tables[1][1:]


def test_divergence_stops_the_run_and_keeps_the_last_good_agent(tmp_path):
    from qlearn.errors import DivergenceError

    env = make_env("CartPole-v1")
    cfg = DQNConfig(lr=1e12, max_grad_norm=0, loss="mse", learning_starts=100)
    agent = DQNAgent.for_env(env, cfg, seed=0)
    with pytest.raises(DivergenceError, match="environment step") as info:
        train(agent, env, 5_000, run_dir=tmp_path, eval_every=100, eval_episodes=2, progress=False)
    assert 100 < info.value.step < 5_000
    saved = DQNAgent.load(tmp_path / "agent.pt")
    assert all(bool(np.isfinite(w.detach().numpy()).all()) for w in saved.weights())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] < 5_000 and summary["selection_score"] in (summary["best_score"], summary["final_score"])


def test_how_often_a_run_is_evaluated_does_not_change_what_it_learns(tmp_path):
    """Greedy evaluation episodes draw nothing from the agent's exploration stream: the same seed trained
    with evaluations every 500 or every 1,500 steps ends with the same weights (single and lockstep runs)."""
    from qlearn.training.runner import run_many

    finals = []
    for every in (500, 1500):
        env = make_env("CartPole-v1")
        agent = DQNAgent.for_env(env, DQNConfig(learning_starts=200, batch_size=32), seed=0)
        train(agent, env, 3_000, seed=0, eval_every=every, eval_episodes=3, keep_best=False, progress=False)
        finals.append([p.detach().clone() for p in agent.net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*finals))
    nets = [run_many("CartPole-v1", seeds=[0, 1], n_envs=2, steps=2_000, out=str(tmp_path / str(every)),
                     sets=["learning_starts=200", "batch_size=32", f"eval_every={every}", "eval_episodes=3",
                           "keep_best=false"], progress=False).agent.net for every in (500, 1000)]
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
