"""Wall time to threshold on CartPole-v1 (>= 475) and MountainCar-v0 (>= -110), qlearn vs SB3 DQN (issue 4).

qlearn trains with its preset (``qlearn train ENV``'s settings) through :func:`qlearn.train`; SB3 trains with
the RL Zoo's tuned settings (``rl-baselines3-zoo`` ``hyperparams/dqn.yml``, the best published settings for
SB3 DQN on these tasks). Both are scored the same way at the same points: the mean return of 20 greedy
episodes (fresh episode seeds each time) every ``--every`` env steps, and stop at the first score at or
above the threshold. Evaluation time is measured and excluded for both, so the figure is training time.

Run:  .venv/bin/python bench/classic_ttt.py [--envs CartPole-v1,MountainCar-v0] [--seeds 0,1,2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from classic_control import ZOO, SB3Greedy  # noqa: E402

import qlearn.training.loop as loop_mod  # noqa: E402
from qlearn import DQNAgent, DQNConfig, make_env, train  # noqa: E402
from qlearn.config import with_overrides  # noqa: E402
from qlearn.evaluation import evaluate  # noqa: E402
from qlearn.presets import preset  # noqa: E402
from qlearn.runs import versions  # noqa: E402
from qlearn.training import configure_threads  # noqa: E402

THRESHOLD = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0}
EVERY = {"CartPole-v1": 2_500, "MountainCar-v0": 5_000}
BUDGET = {"CartPole-v1": 50_000, "MountainCar-v0": 120_000}
EPISODES = 20


class TimedScorer(loop_mod.Scorer):
    """qlearn's own scorer, with the seconds it spends counted (to leave them out of training time)."""

    spent = 0.0

    def __call__(self, agent):
        t = time.perf_counter()
        try:
            return super().__call__(agent)
        finally:
            TimedScorer.spent += time.perf_counter() - t


def qlearn_ttt(env_id: str, seed: int) -> dict:
    loop_mod.Scorer = TimedScorer
    TimedScorer.spent = 0.0
    over, _ = preset(env_id, "dqn")
    t0 = time.perf_counter()
    env = make_env(env_id)
    agent = DQNAgent.for_env(env, with_overrides(DQNConfig(), over), seed=seed)
    hit: dict = {}

    class Stop:
        def on_eval(self, row):
            if row["score"] >= THRESHOLD[env_id]:
                hit.update(step=row["step"], s=time.perf_counter() - t0 - TimedScorer.spent, score=row["score"])
                return False
            return True

    train(agent, env, BUDGET[env_id], seed=seed, eval_every=EVERY[env_id], eval_episodes=EPISODES,
          callbacks=[Stop()], progress=False, checkpoint_every=0)
    return {"lib": "qlearn", "env": env_id, "seed": seed, "s": hit.get("s"), "step": hit.get("step"),
            "score": hit.get("score"), "eval_s": TimedScorer.spent}


def sb3_ttt(env_id: str, seed: int) -> dict:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    hp = dict(ZOO[env_id])
    hp.pop("n_timesteps")
    eval_env = make_env(env_id)

    class Stop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next, self.spent, self.calls, self.hit = EVERY[env_id], 0.0, 0, None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next:
                return True
            self.next += EVERY[env_id]
            t = time.perf_counter()
            self.calls += 1  # the same episode seeds as qlearn's scorer at its n-th evaluation
            score = evaluate(SB3Greedy(self.model), eval_env, EPISODES, seed=10_000 + 1000 * self.calls).mean_return
            self.spent += time.perf_counter() - t
            if score >= THRESHOLD[env_id]:
                self.hit = (self.num_timesteps, score)
            return self.hit is None

    t0 = time.perf_counter()
    model = DQN("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **hp)
    cb = Stop()
    model.learn(BUDGET[env_id], callback=cb)
    wall = time.perf_counter() - t0 - cb.spent
    return {"lib": "sb3", "env": env_id, "seed": seed, "s": wall if cb.hit else None,
            "step": cb.hit[0] if cb.hit else None, "score": cb.hit[1] if cb.hit else None, "eval_s": cb.spent}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="CartPole-v1,MountainCar-v0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    args = ap.parse_args()
    configure_threads(1)
    import stable_baselines3

    rows = []
    print(f"versions: {json.dumps({**versions(), 'stable_baselines3': stable_baselines3.__version__})}", flush=True)
    for env_id in args.envs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for fn in (qlearn_ttt, sb3_ttt):
                row = fn(env_id, seed)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\n| env | seed | qlearn s to threshold (env steps) | SB3 Zoo s (env steps) | qlearn : SB3 |\n|---|---|---|---|---|")
    for env_id in args.envs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            q, s = (next(r for r in rows if r["lib"] == lib and r["env"] == env_id and r["seed"] == seed)
                    for lib in ("qlearn", "sb3"))
            f = lambda r: "not reached" if r["s"] is None else f"{r['s']:.1f} ({r['step']})"  # noqa: E731
            ratio = f"{s['s'] / q['s']:.1f}x faster" if q["s"] and s["s"] else "n/a"
            print(f"| {env_id} | {seed} | {f(q)} | {f(s)} | {ratio} |")
        qs = [r["s"] for r in rows if r["lib"] == "qlearn" and r["env"] == env_id]
        ss = [r["s"] for r in rows if r["lib"] == "sb3" and r["env"] == env_id]
        if all(v is not None for v in qs + ss):
            print(f"| {env_id} | median | {np.median(qs):.1f} | {np.median(ss):.1f} | "
                  f"{np.median(ss) / np.median(qs):.1f}x faster |")


if __name__ == "__main__":
    main()
