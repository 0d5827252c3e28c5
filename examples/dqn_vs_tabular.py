"""The course's Task 3-4 and 3-5: compare the learned Q-tables with the exact one, evaluate, and set
Deep Q-Learning against tabular Q-learning on the slippery lake.

Run: python examples/dqn_vs_tabular.py [--quick]
"""

import sys

import numpy as np

from qlearn import DQNAgent, TabularQAgent, evaluate, make_env, train
from qlearn.envs import TabularMDP, greedy_policy, success_probability, value_iteration
from qlearn.envs.tabular import policy_grid
from qlearn.presets import preset
from qlearn.config import DQNConfig, TabularConfig, with_overrides

quick = "--quick" in sys.argv
env = make_env("FrozenLake-v1")
mdp = TabularMDP.from_env(env)
q_star, v_star = value_iteration(mdp, gamma=0.99)
live = ~mdp.terminal  # holes and the goal are never acted in

results = {}
for name, cls, cfg_cls, steps in (("tabular", TabularQAgent, TabularConfig, 100_000),
                                  ("dqn", DQNAgent, DQNConfig, 50_000)):
    steps = steps // 10 if quick else steps
    cfg = with_overrides(cfg_cls(), preset("FrozenLake-v1", name)[0])
    agent = cls.for_env(env, cfg, seed=0)
    run = train(agent, env, steps, eval_every=1_000, progress=False)
    q = agent.q_table()
    ev = evaluate(agent, env, episodes=200, seed=0)
    results[name] = (q, ev)
    agree = (greedy_policy(q) == greedy_policy(q_star))[live].mean()
    print(f"\n{name}: {steps} steps in {run.wall_time:.1f} s")
    print(f"  exact success of the greedy policy {success_probability(mdp, q):.3f} (optimum {success_probability(mdp, q_star):.3f})")
    print(f"  200 episodes: success {ev.success_rate:.2f}, 95% CI [{ev.success_ci95[0]:.2f}, {ev.success_ci95[1]:.2f}]")
    print(f"  Q-table vs Q*: mean |diff| {np.abs(q - q_star)[live].mean():.3f}, same greedy action on {agree:.0%} of states")
    print("  policy on the lake:", *policy_grid(mdp, q), sep="\n    ")
