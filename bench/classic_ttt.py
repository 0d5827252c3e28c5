"""Wall time to threshold on CartPole-v1 (>= 475) and MountainCar-v0 (>= -110), qlearn vs SB3 DQN (issue 4).

qlearn trains with its preset (``qlearn train ENV``'s settings) through :func:`qlearn.train`; SB3 trains with
the RL Zoo's tuned settings (``rl-baselines3-zoo`` ``hyperparams/dqn.yml``, the best published settings for
SB3 DQN on these tasks). Both are scored the same way at the same points: the mean return of 20 greedy
episodes (fresh episode seeds each time) every ``--every`` env steps, and stop at the first score at or
above the threshold. Evaluation time is measured and excluded for both, so the figure is training time.

With ``--recipe NAME`` it also times qlearn with that preset recipe (N envs per agent, ``qlearn train ENV
--recipe NAME``) and SB3 DQN with settings matching the recipe (same N envs, network, batch, schedules,
gradient steps per env step and target interval), so that a recipe's speed-up is measured against SB3
given the same idea.

Run:  .venv/bin/python bench/classic_ttt.py [--envs CartPole-v1,MountainCar-v0] [--seeds 0,1,2] [--json FILE | --no-record]
      .venv/bin/python bench/classic_ttt.py --envs CartPole-v1 --seeds 0,1,2,3,4 --recipe batched
Each run appends its row to bench/results/classic_ttt.jsonl as it finishes (``bench/record.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402
from classic_control import ZOO, SB3Greedy  # noqa: E402

from qlearn import DQNAgent, DQNConfig, make_env, train  # noqa: E402
from qlearn.config import with_overrides  # noqa: E402
from qlearn.evaluation import evaluate  # noqa: E402
from qlearn.presets import preset  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402

THRESHOLD = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0}
EVERY = {"CartPole-v1": 2_500, "MountainCar-v0": 5_000}
BUDGET = {"CartPole-v1": 50_000, "MountainCar-v0": 120_000, "FrozenLake-v1": 100_000}  # FrozenLake: SB3's, bench/speed.py
EPISODES = 20


class StopAt:
    """Trainer hook: stop at the first evaluation scoring >= ``threshold``; seconds since ``t0`` with the time
    spent scoring left out (as the SB3 callback below does)."""

    def __init__(self, threshold: float, t0: float) -> None:
        self.threshold, self.t0, self.hit, self.scoring = threshold, t0, None, 0.0

    def on_eval(self, row: dict) -> bool:
        self.scoring = row["scoring_time"]
        if row["score"] >= self.threshold:
            self.hit = {"s": time.perf_counter() - self.t0 - row["scoring_time"], "step": row["step"],
                        "score": row["score"]}
            return False
        return True


def qlearn_ttt(env_id: str, seed: int) -> dict:
    """qlearn's preset on one Gymnasium env, through the library's ``train`` (the one trainer)."""
    over, _ = preset(env_id, "dqn")
    t0 = time.perf_counter()
    env = make_env(env_id)
    agent = DQNAgent.for_env(env, with_overrides(DQNConfig(), over), seed=seed)
    stop = StopAt(THRESHOLD[env_id], t0)
    train(agent, env, BUDGET[env_id], seed=seed, eval_every=EVERY[env_id], eval_episodes=EPISODES,
          callbacks=[stop], progress=False, checkpoint_every=0)
    hit = stop.hit or {}
    return {"lib": "qlearn", "env": env_id, "seed": seed, "s": hit.get("s"), "step": hit.get("step"),
            "score": hit.get("score"), "eval_s": stop.scoring}


def qlearn_recipe_ttt(env_id: str, seed: int, recipe: str) -> dict:
    """qlearn with a preset recipe's N envs per agent, through ``train_many`` (what ``qlearn train ENV --recipe
    NAME`` runs) for one agent, scored on EPISODES evaluation episodes every EVERY env steps."""
    from qlearn.envs.vector import make_batched
    from qlearn.presets import recipe_envs
    from qlearn.training import train_many
    from qlearn.training.scoring import EVAL_SEED_OFFSET

    over, _ = preset(env_id, "dqn", recipe)
    n = recipe_envs(env_id, recipe)
    t0 = time.perf_counter()
    agent = DQNAgent.for_env(make_env(env_id), with_overrides(DQNConfig(), over), seeds=(seed,))
    stop = StopAt(THRESHOLD[env_id], t0)
    train_many(agent, make_batched(env_id, 1, n, seeds=[seed]), BUDGET[env_id], env_id=env_id,
               eval_env=make_batched(env_id, 1, EPISODES, seeds=[EVAL_SEED_OFFSET + seed]), eval_every=EVERY[env_id],
               eval_episodes=EPISODES, hooks=[stop], progress=False)
    hit = stop.hit or {}
    return {"lib": f"qlearn-{recipe}", "env": env_id, "seed": seed, "s": hit.get("s"), "step": hit.get("step"),
            "score": hit.get("score"), "eval_s": stop.scoring, "updates": agent.updates}


def sb3_like_recipe(env_id: str, recipe: str) -> dict:
    """SB3 DQN settings matching a qlearn recipe: same envs, network, batch, learning-rate schedule,
    exploration, gradient steps per env step and env steps between target copies (SB3 counts those in env
    steps, qlearn in gradient steps). SB3's DQN has no Double DQN; the recipe's Double stays qlearn's."""
    from qlearn.presets import recipe_envs

    cfg = with_overrides(DQNConfig(), preset(env_id, "dqn", recipe)[0])
    n, budget = recipe_envs(env_id, recipe), BUDGET[env_id]

    def lr(progress_remaining: float) -> float:
        frac = min(1.0, (1.0 - progress_remaining) * budget / cfg.lr_decay_steps) if cfg.lr_end is not None else 0.0
        return cfg.lr + frac * ((cfg.lr_end if cfg.lr_end is not None else cfg.lr) - cfg.lr)

    return dict(n_envs=n, learning_rate=lr, batch_size=cfg.batch_size, buffer_size=cfg.buffer_size,
                learning_starts=cfg.learning_starts, gamma=cfg.gamma, train_freq=max(1, cfg.train_freq // n),
                gradient_steps=cfg.gradient_steps,
                target_update_interval=cfg.target_update_interval * cfg.train_freq // cfg.gradient_steps,
                exploration_fraction=cfg.epsilon_decay_steps / budget, exploration_initial_eps=cfg.epsilon_start,
                exploration_final_eps=cfg.epsilon_end, max_grad_norm=cfg.max_grad_norm,
                policy_kwargs=dict(net_arch=list(cfg.hidden)))


def sb3_ttt(env_id: str, seed: int, recipe: str | None = None) -> dict:
    """SB3 DQN with the RL Zoo settings, or (``recipe``) with settings matching that qlearn recipe."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    if recipe is None:
        hp = dict(ZOO[env_id])
        hp.pop("n_timesteps")
        n_envs = 1
    else:
        hp = sb3_like_recipe(env_id, recipe)
        n_envs = hp.pop("n_envs")
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
    train_env = gym.make(env_id) if n_envs == 1 else make_vec_env(env_id, n_envs=n_envs, seed=seed)
    model = DQN("MlpPolicy", train_env, seed=seed, device="cpu", verbose=0, **hp)
    cb = Stop()
    model.learn(BUDGET[env_id], callback=cb)
    wall = time.perf_counter() - t0 - cb.spent
    return {"lib": "sb3" if recipe is None else f"sb3-like-{recipe}", "env": env_id, "seed": seed,
            "s": wall if cb.hit else None,
            "step": cb.hit[0] if cb.hit else None, "score": cb.hit[1] if cb.hit else None, "eval_s": cb.spent}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="CartPole-v1,MountainCar-v0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--recipe", help="also time qlearn with this preset recipe (N envs) and SB3 with matching settings")
    ap.add_argument("--skip-preset", action="store_true", help="leave out qlearn's preset (1 env) rows")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    from stable_baselines3 import DQN

    runs = [] if args.skip_preset else [qlearn_ttt]
    runs.append(sb3_ttt)
    if args.recipe:
        runs += [lambda e, s: qlearn_recipe_ttt(e, s, args.recipe), lambda e, s: sb3_ttt(e, s, args.recipe)]
    # untimed warm-up: the first optimiser of a process imports torch._dynamo (~1 s), for either library
    DQNAgent.for_env(make_env("CartPole-v1"), DQNConfig())
    DQN("MlpPolicy", gym.make("CartPole-v1"), device="cpu")
    rows = []
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    for env_id in args.envs.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for fn in runs:
                row = fn(env_id, seed)
                rows.append(row)
                print(json.dumps(row), flush=True)
                record.recorder("classic_ttt", args)([row])
    record.show("classic_ttt", "classic_ttt_recipe", args=args)


if __name__ == "__main__":
    main()
