"""The course's Task 4: MountainCar with what we have learned. Deep Q-Learning with the preset
(Double DQN, 3-step returns, a decaying learning rate), tabular Q-learning on bins, and a look at the
learned value over (position, velocity).

Run: python examples/mountaincar.py [--quick]     (the full run takes a few minutes)
"""

import sys

import matplotlib

matplotlib.use("Agg")

from qlearn import evaluate, make_env  # noqa: E402
from qlearn.plotting import value_policy_grid  # noqa: E402
from qlearn.training.runner import run_experiment  # noqa: E402

quick = "--quick" in sys.argv
env = make_env("MountainCar-v0")
for agent_kind, steps in (("dqn", 120_000), ("tabular", 1_000_000)):
    steps = 3_000 if quick else steps
    res = run_experiment("MountainCar-v0", agent_kind, seed=0, steps=steps, out="runs", progress=not quick,
                         sets=["eval_every=1000", "eval_episodes=3"] if quick else [])
    ev = evaluate(res.agent, env, 20 if quick else 100, seed=12345)
    print(f"{agent_kind}: {res.steps} steps in {res.wall_time:.0f} s; greedy mean return {ev.mean_return:.1f} "
          f"(95% CI [{ev.ci95[0]:.1f}, {ev.ci95[1]:.1f}]); solved means >= -110")
    space = env.observation_space
    fig = value_policy_grid(res.agent, space.low, space.high, env_id="MountainCar-v0", resolution=61)
    fig.savefig(f"mountaincar_{agent_kind}.png", dpi=90)
    print(f"  value and policy over (position, velocity): mountaincar_{agent_kind}.png")
