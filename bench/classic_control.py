"""CartPole-v1, MountainCar-v0 and Acrobot-v1: qlearn's presets and SB3 DQN with the RL Zoo settings,
same seeds, same evaluation (100 greedy episodes with the same episode seeds, by ``qlearn.evaluate``).

Run:  .venv/bin/python bench/classic_control.py [--envs CartPole-v1,MountainCar-v0,Acrobot-v1]
          [--seeds 0,1,2,3,4] [--only qlearn|sb3] [--json FILE | --no-record]
(``pip install -e .[bench]`` first for Stable-Baselines3.) Prints one line per run and a Markdown table, and
appends each run's row to bench/results/classic_control.jsonl (``bench/record.py``) as it finishes.
qlearn runs are exactly ``qlearn train ENV --seed S`` (preset and its envs per agent, best evaluated checkpoint kept); SB3
runs use the Zoo's hyperparameters for its DQN and are judged on their final network.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script

from qlearn.envs import make_env
from qlearn.evaluation import evaluate
from qlearn.threads import configure_threads
from qlearn.spec import RunSpec
from qlearn.training.runner import run

EVAL_SEED = 12345
ZOO = {  # rl-baselines3-zoo hyperparams/dqn.yml
    "CartPole-v1": dict(n_timesteps=50_000, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                        learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
                        gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
                        policy_kwargs=dict(net_arch=[256, 256])),
    "MountainCar-v0": dict(n_timesteps=120_000, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
                           learning_starts=1000, gamma=0.98, target_update_interval=600, train_freq=16,
                           gradient_steps=8, exploration_fraction=0.2, exploration_final_eps=0.07,
                           policy_kwargs=dict(net_arch=[256, 256])),
    "Acrobot-v1": dict(n_timesteps=100_000, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                       learning_starts=0, gamma=0.99, target_update_interval=250, train_freq=4,
                       gradient_steps=-1, exploration_fraction=0.12, exploration_final_eps=0.1,
                       policy_kwargs=dict(net_arch=[256, 256])),
}
THRESHOLD = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0, "Acrobot-v1": -100.0}


class SB3Greedy:
    """Adapter: an SB3 model behind qlearn's ``act`` so both are evaluated by the same function."""

    def __init__(self, model) -> None:
        self.model = model

    def act(self, obs: np.ndarray, *, greedy: bool = True) -> np.ndarray:
        action, _ = self.model.predict(obs[0], deterministic=True)
        return np.asarray(action).reshape(1, -1)


def run_qlearn(env_id: str, seed: int, out: str) -> dict:
    t = time.perf_counter()
    spec = RunSpec.build(env_id, "dqn", seeds=[seed], lockstep=True)  # as `qlearn train ENV --seed S`: the preset's envs
    res = run(spec, out=out, progress=False)
    wall = time.perf_counter() - t
    ev = evaluate(res.agent, make_env(env_id), 100, seed=EVAL_SEED)
    return {"lib": "qlearn", "env": env_id, "seed": seed, "steps": res.steps, "wall": wall,
            "mean_return": ev.mean_return, "ci95": ev.ci95, "best_step": res.best_step}


def run_sb3(env_id: str, seed: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DQN

    hp = dict(ZOO[env_id])
    steps = hp.pop("n_timesteps")
    t = time.perf_counter()
    model = DQN("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **hp)
    model.learn(steps)
    wall = time.perf_counter() - t
    ev = evaluate(SB3Greedy(model), make_env(env_id), 100, seed=EVAL_SEED)
    return {"lib": "sb3", "env": env_id, "seed": seed, "steps": steps, "wall": wall,
            "mean_return": ev.mean_return, "ci95": ev.ci95}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="CartPole-v1,MountainCar-v0")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--only", choices=["qlearn", "sb3"])
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    out = tempfile.mkdtemp(prefix="qlearn-bench-")
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    save = record.recorder("classic_control", args)
    rows = []
    for env_id in args.envs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for lib in ("qlearn", "sb3"):
                if args.only and lib != args.only:
                    continue
                r = run_qlearn(env_id, seed, out) if lib == "qlearn" else run_sb3(env_id, seed)
                rows.append(r)
                print(json.dumps(r), flush=True)
                save([r])
    record.show("classic_control", args=args)


if __name__ == "__main__":
    main()
