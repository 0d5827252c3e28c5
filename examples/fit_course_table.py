"""The course's Tasks 2 and 3-4: fit a network to the known Q-table, play with it, then train online.

Run: python examples/fit_course_table.py
"""

import numpy as np

from qlearn import DQNAgent, DQNConfig, evaluate, make_env, train
from qlearn.agents.pretrain import pretrain
from qlearn.envs import TabularMDP, success_probability
from qlearn.reference import COURSE_Q_TABLE

env = make_env("FrozenLake-v1")
mdp = TabularMDP.from_env(env)
agent = DQNAgent.for_env(env, DQNConfig(epsilon_start=0.0, epsilon_end=0.0), seed=0)

mse = pretrain(agent, np.array(COURSE_Q_TABLE))
print(f"fitted the network to the course's Q-table: mse {mse:.1e}")
print("network's Q-table (rounded):\n", np.round(agent.q_table(), 2))
p = success_probability(mdp, agent.q_table())
print(f"greedy play with the fitted network: exact success probability {p:.3f} (optimum 0.740)")
res = evaluate(agent, env, episodes=200, seed=0)
print(f"200 sampled episodes: success {res.success_rate:.2f}, 95% CI {np.round(res.success_ci95, 2)}")
assert p > 0.70

# Continue training online from the pretrained network: does the table drift?
before = agent.q_table()
train(agent, env, steps=3_000, progress=False, keep_best=False)
drift = np.abs(agent.q_table() - before)[~mdp.terminal].max()
print(f"after 3,000 online steps: max change on non-terminal states {drift:.3f}, "
      f"success {success_probability(mdp, agent.q_table()):.3f}")
