"""Defaults derived from the env where no preset applies: what they read, how they scale, where they are said
and recorded, and that they learn on an env that played no part in choosing them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium.envs.toy_text.frozen_lake import generate_random_map

from qlearn import RunSpec, run
from qlearn.cli.main import main
from qlearn.derived import (
    DQN_ENVS,
    DQN_STEPS,
    TABULAR_ALPHA_X_ENVS,
    TABULAR_ENVS,
    TABULAR_STEPS,
    TABULAR_STEPS_PER_PAIR,
    UNMODELLED_STEPS,
    EnvFacts,
    derive,
    derived_settings,
    envs_per_agent,
    facts_of,
)
from qlearn.envs import TabularMDP, make_env, value_iteration
from qlearn.envs.tabular import UNLIMITED_HORIZON, greedy_policy, policy_returns
from qlearn.evaluation import evaluate


def test_facts_are_read_from_the_spaces_and_the_time_limit():
    assert facts_of("Taxi-v4") == EnvFacts(actions=6, states=500, horizon=200, model=True)
    cliff = facts_of("CliffWalking-v1")
    assert cliff.states == 48 and cliff.horizon is None and cliff.eval_horizon == UNLIMITED_HORIZON
    cart = facts_of("CartPole-v1")
    assert cart.states is None and cart.obs_dim == 4 and cart.horizon == 500


def test_budgets_grow_with_the_state_action_pairs_and_stay_in_range():
    small, big = EnvFacts(actions=4, states=25, model=True), EnvFacts(actions=4, states=64, model=True)
    for agent, (low, high) in (("tabular", TABULAR_STEPS), ("dqn", DQN_STEPS), ("pqn", DQN_STEPS)):
        s, b = derive(small, agent).train["steps"], derive(big, agent).train["steps"]
        assert low <= s < b <= high, agent
    assert derive(small, "tabular").train["steps"] == TABULAR_STEPS_PER_PAIR * 100
    assert derive(EnvFacts(actions=6, states=10**6, model=True), "tabular").train["steps"] == TABULAR_STEPS[1]
    # Without a model, Gymnasium steps the env in Python: the budget stops at UNMODELLED_STEPS.
    blackjack = facts_of("Blackjack-v1")
    assert blackjack.states == 704 and not blackjack.model
    for agent in ("tabular", "dqn"):
        d = derive(blackjack, agent)
        assert d.train["steps"] == UNMODELLED_STEPS and "no model" in d.why["steps"], agent
    assert derive(EnvFacts(actions=2, states=2), "dqn").train["steps"] == DQN_STEPS[0]
    tab = derive(big, "tabular")
    assert tab.train["steps"] == tab.agent["alpha_decay_steps"] and tab.agent["alpha_end"] == 0.0
    assert tab.agent["epsilon_decay_steps"] == tab.train["steps"] // 300
    assert tab.train["eval_every"] * 10 == tab.train["steps"]
    # Every derived value says where it came from.
    for agent in ("tabular", "dqn"):
        d = derive(big, agent)
        assert d.train["keep_best"] is False  # the final agent is delivered: nothing chooses by evaluation
        assert set(d.agent) | set(d.train) <= set(d.why) | {"lr", "lr_end", "target_update_interval",
                                                            "learning_starts", "alpha_end"}


def test_tabular_alpha_shrinks_with_the_envs_that_add_their_steps_to_a_pair():
    facts = EnvFacts(actions=4, states=64)
    many = derive(facts, "tabular")
    assert many.envs == TABULAR_ENVS and many.agent["alpha"] * TABULAR_ENVS == pytest.approx(TABULAR_ALPHA_X_ENVS)
    assert derive(facts, "tabular", n_envs=1024).agent["alpha"] == pytest.approx(TABULAR_ALPHA_X_ENVS / 1024)
    assert derive(facts, "tabular", n_envs=1).agent["alpha"] == 0.1  # capped: the course's starting alpha


def test_dqn_on_discrete_states_trains_on_many_envs_one_gradient_step_per_step_of_all():
    d = derive(EnvFacts(actions=6, states=500, horizon=200), "dqn")
    assert d.envs == DQN_ENVS and d.agent["train_freq"] == DQN_ENVS and d.agent["batch_size"] == 2048
    assert d.agent["buffer_size"] == d.train["steps"]  # every transition kept
    alone = derive(EnvFacts(actions=6, states=500, horizon=200), "dqn", n_envs=1)
    assert alone.envs == 1 and alone.agent["train_freq"] == 1 and alone.agent["batch_size"] == 64
    assert envs_per_agent("Taxi-v4", "dqn") == DQN_ENVS and envs_per_agent("Taxi-v4", "tabular") == TABULAR_ENVS


def test_vector_observations_scale_with_the_horizon():
    short, long = EnvFacts(actions=2, obs_dim=4, horizon=200), EnvFacts(actions=2, obs_dim=4, horizon=1000)
    assert derive(short, "dqn").train["steps"] < derive(long, "dqn").train["steps"]
    assert derive(long, "dqn").train["eval_episodes"] == 20


def test_a_preset_applies_to_the_env_it_was_tuned_for_only():
    assert derived_settings("FrozenLake-v1", "dqn") is None
    assert derived_settings("FrozenLake-v1", "dqn", {"is_slippery": False}) is None  # still 16 states
    other_map = derived_settings("FrozenLake-v1", "dqn", {"map_name": "8x8"})
    assert other_map is not None and other_map.facts.states == 64
    assert derived_settings("Acrobot-v1", "dqn") is None and derived_settings("Acrobot-v1", "pqn") is not None


def test_the_spec_records_what_was_derived_and_sets_win_over_it():
    spec = RunSpec.build("Taxi-v4", "tabular", sets=["steps=5000"])
    assert spec.derived is not None and spec.derived["facts"]["states"] == 500
    assert spec.train.steps == 5000  # --set over the derived budget
    assert spec.agent_config.alpha_decay_steps == spec.derived["settings"]["alpha_decay_steps"]
    assert "per pair" in spec.derived["why"]["steps"]
    written = spec.to_dict()
    assert written["derived"] == spec.derived and RunSpec.from_dict(json.loads(json.dumps(written))) == spec
    assert "derived" not in RunSpec.build("FrozenLake-v1", "dqn").to_dict()
    group = RunSpec.build("Taxi-v4", "dqn", seeds=[0, 1])
    assert group.n_envs == DQN_ENVS and group.lockstep


def test_qlearn_presets_says_what_was_derived_and_from_what(capsys):
    assert main(["presets", "CliffWalking-v1"]) == 0
    out = capsys.readouterr().out
    assert "no preset" in out and "48 states, 4 actions, no time limit" in out
    assert f"steps: {TABULAR_STEPS_PER_PAIR:,} per pair x S x A = 48 x 4" in out and "checked on" in out
    assert main(["presets", "CliffWalking-v1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["CliffWalking-v1"]
    assert got["tabular"]["settings"]["steps"] == TABULAR_STEPS_PER_PAIR * 48 * 4
    assert got["dqn"]["settings"]["envs"] == DQN_ENVS


def test_a_greedy_policy_that_cycles_on_an_env_without_a_time_limit_still_ends():
    class Up:  # on CliffWalking, "up" from the start leaves it where it is: an episode that never ends
        def act(self, obs, greedy=True):
            return np.zeros((1, 1), dtype=np.int64)

    res = evaluate(Up(), make_env("CliffWalking-v1"), episodes=2)
    assert res.mean_length == UNLIMITED_HORIZON and res.mean_return == -UNLIMITED_HORIZON


def test_derived_dqn_defaults_reach_the_optimum_on_a_map_they_were_not_chosen_on(tmp_path):
    kwargs = {"desc": generate_random_map(8, seed=4)}  # an 8x8 map: among the check envs, not the design ones
    spec = RunSpec.build("FrozenLake-v1", "dqn", seeds=[0, 1], env_kwargs=kwargs, sets=["checkpoint_every=0"])
    assert spec.derived is not None
    res = run(spec, out=str(tmp_path), progress=False)
    mdp = TabularMDP.from_env(make_env("FrozenLake-v1", **kwargs))
    q_star, _ = value_iteration(mdp, spec.agent_config.gamma)
    optimum = float(policy_returns(mdp, greedy_policy(q_star)[None])[0])
    assert optimum > 0.8
    for k in range(2):  # the delivered (final) agents, exact from the model
        got = float(policy_returns(mdp, greedy_policy(res.agent.q_table(k))[None])[0])
        # 5% here (the goal of 2% on 5 seeds is measured in bench/toy_text.py: BENCHMARKS.md, toy-text).
        assert got >= 0.95 * optimum and np.isclose(got, res.delivered_exact[k]), (k, got, optimum)
    recorded = json.loads((res.run_dirs[0] / "config.json").read_text())
    assert recorded["derived"]["facts"]["states"] == 64
