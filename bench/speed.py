"""Speed, side by side with Stable-Baselines3 DQN, in one script run on one machine.

1. Environment steps per second at matched hyperparameters (one agent, one env, 64x64 MLP, batch 64,
   lr 1e-3, a gradient step every 4 env steps, buffer 50k, 20k steps): FrozenLake-v1 and CartPole-v1.
2. Wall time to threshold on FrozenLake-v1 4x4 slippery (exact greedy success >= 0.70, checked every
   1,000 steps; evaluation time excluded for both): qlearn's preset vs SB3 with the best settings we have
   (MEASURED.md: lr 1e-3, batch 64, 64x64, train_freq 4).
3. Many seeds: K seeds of FrozenLake 4x4 (preset, 50k steps each) in one qlearn process (``--seeds K``)
   vs the same K seeds one after another with qlearn and with SB3 (SB3 timed on a subset and scaled).

Run:  .venv/bin/python bench/speed.py [--seeds-k 16] [--sb3-seed-runs 2] [--json FILE]
Prints a Markdown table of ratios qlearn : SB3 with versions.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import gymnasium as gym
import torch

from qlearn import DQNAgent, DQNConfig, make_env, train
from qlearn.envs import TabularMDP, success_probability
from qlearn.runs import versions
from qlearn.training import configure_threads
from qlearn.training.runner import run_experiment, run_many

MATCHED = dict(lr=1e-3, batch_size=64, hidden=(64, 64), buffer_size=50_000, learning_starts=1_000, train_freq=4,
               gradient_steps=1, target_update_interval=250, double=False, loss="huber", epsilon_decay_steps=4_000)
SB3_MATCHED = dict(learning_rate=1e-3, batch_size=64, buffer_size=50_000, learning_starts=1_000, train_freq=4,
                   gradient_steps=1, target_update_interval=1_000, exploration_fraction=0.2,
                   exploration_final_eps=0.05, gamma=0.99, policy_kwargs={"net_arch": [64, 64]})


def sb3_model(env_id: str, seed: int, **kw):
    from stable_baselines3 import DQN

    return DQN("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **{**SB3_MATCHED, **kw})


def steps_per_second(env_id: str, steps: int = 20_000) -> tuple[float, float]:
    env = make_env(env_id)
    agent = DQNAgent.for_env(env, DQNConfig(**MATCHED), seed=0)
    t = time.perf_counter()
    train(agent, env, steps, eval_every=0, keep_best=False, progress=False)  # no evaluation inside the timing
    q = steps / (time.perf_counter() - t)
    model = sb3_model(env_id, 0)
    t = time.perf_counter()
    model.learn(steps)
    s = steps / (time.perf_counter() - t)
    return q, s


def time_to_threshold_frozenlake(seed: int, budget: int = 100_000) -> tuple[float | None, float | None]:
    """Seconds of training (evaluation excluded) until exact success >= 0.70: qlearn preset, SB3."""
    from stable_baselines3.common.callbacks import BaseCallback

    mdp = TabularMDP.from_env(make_env("FrozenLake-v1"))

    class Clock:
        def __init__(self):
            self.train_time, self.t0, self.hit = 0.0, time.perf_counter(), None

        def pause(self):
            self.train_time += time.perf_counter() - self.t0

        def resume(self):
            self.t0 = time.perf_counter()

    clock = Clock()

    class QlearnStop:
        def on_eval(self, info):
            clock.pause()
            if info["score"] >= 0.70 and clock.hit is None:
                clock.hit = clock.train_time
                return False
            clock.resume()
            return True

    # qlearn: the preset, scored exactly every 1,000 steps (its own scorer: the pause covers only the callback)
    from qlearn.presets import preset
    from qlearn.config import with_overrides

    over, _ = preset("FrozenLake-v1", "dqn")
    env = make_env("FrozenLake-v1")
    agent = DQNAgent.for_env(env, with_overrides(DQNConfig(), over), seed=seed)
    clock.resume()
    train(agent, env, budget, seed=seed, eval_every=1_000, callbacks=[QlearnStop()], progress=False)
    q_hit = clock.hit

    class SB3Stop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.train_time, self.t0, self.hit = 0.0, None, None

        def _on_training_start(self):
            self.t0 = time.perf_counter()

        def _on_step(self):
            if self.num_timesteps % 1_000:
                return True
            self.train_time += time.perf_counter() - self.t0
            with torch.no_grad():
                qt = self.model.q_net(torch.arange(mdp.n_states)).numpy()
            if success_probability(mdp, qt) >= 0.70:
                self.hit = self.train_time
                return False
            self.t0 = time.perf_counter()
            return True

    cb = SB3Stop()
    sb3_model("FrozenLake-v1", seed).learn(budget, callback=cb)
    return q_hit, cb.hit


def many_seeds(k: int, sb3_runs: int) -> dict:
    out = tempfile.mkdtemp(prefix="qlearn-speed-")
    t = time.perf_counter()
    res = run_many("FrozenLake-v1", "dqn", seeds=range(k), out=out, progress=False)
    lockstep = time.perf_counter() - t
    t = time.perf_counter()
    singles = [run_experiment("FrozenLake-v1", "dqn", seed=s, out=out, progress=False).delivered_score
               for s in range(sb3_runs)]
    q_single = (time.perf_counter() - t) / sb3_runs
    t = time.perf_counter()
    for s in range(sb3_runs):
        sb3_model("FrozenLake-v1", s).learn(50_000)
    s_single = (time.perf_counter() - t) / sb3_runs
    return {"k": k, "lockstep_s": lockstep, "qlearn_one_after_another_s": q_single * k,
            "sb3_one_after_another_s": s_single * k, "scores": [float(x) for x in res.delivered_scores],
            "all_ge_070": bool((res.delivered_scores >= 0.70).all()), "single_check": singles}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds-k", type=int, default=16)
    ap.add_argument("--sb3-seed-runs", type=int, default=2, help="SB3/qlearn single runs timed to scale to K")
    ap.add_argument("--threshold-seeds", default="0,1,2")
    ap.add_argument("--json")
    args = ap.parse_args()
    configure_threads(1)
    import stable_baselines3

    out: dict = {"versions": {**versions(), "stable_baselines3": stable_baselines3.__version__}}
    print(f"versions: {json.dumps(out['versions'])}", flush=True)
    out["sps"] = {}
    for env_id in ("FrozenLake-v1", "CartPole-v1"):
        q, s = steps_per_second(env_id)
        out["sps"][env_id] = {"qlearn": q, "sb3": s}
        print(f"steps/s {env_id}: qlearn {q:.0f}, sb3 {s:.0f}, ratio {q / s:.2f}", flush=True)
    out["ttt"] = []
    for seed in (int(x) for x in args.threshold_seeds.split(",")):
        q, s = time_to_threshold_frozenlake(seed)
        out["ttt"].append({"seed": seed, "qlearn_s": q, "sb3_s": s})
        print(f"time to 0.70 FrozenLake seed {seed}: qlearn {q}, sb3 {s}", flush=True)
    out["many"] = many_seeds(args.seeds_k, args.sb3_seed_runs)
    print(f"many seeds: {json.dumps(out['many'])}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    m = out["many"]
    print("\n| measure | qlearn | SB3 | ratio qlearn : SB3 |\n|---|---|---|---|")
    for env_id, d in out["sps"].items():
        print(f"| env steps/s, {env_id}, matched settings, 1 agent | {d['qlearn']:.0f} | {d['sb3']:.0f} | "
              f"{d['qlearn'] / d['sb3']:.2f}x |")
    for d in out["ttt"]:
        ratio = f"{d['sb3_s'] / d['qlearn_s']:.1f}x faster" if d["qlearn_s"] and d["sb3_s"] else "n/a"
        print(f"| seconds to exact success >= 0.70, FrozenLake seed {d['seed']} | {d['qlearn_s']} | {d['sb3_s']} | {ratio} |")
    print(f"| {m['k']} seeds FrozenLake 4x4 (50k steps each), wall s | {m['lockstep_s']:.0f} (lockstep) | "
          f"{m['sb3_one_after_another_s']:.0f} (one after another, scaled) | "
          f"{m['sb3_one_after_another_s'] / m['lockstep_s']:.1f}x faster |")
    print(f"| same, qlearn one after another (scaled) | {m['qlearn_one_after_another_s']:.0f} | | "
          f"lockstep {m['qlearn_one_after_another_s'] / m['lockstep_s']:.1f}x faster |")
    print(f"| seeds ending at >= 0.70 (lockstep) | {sum(s >= 0.70 for s in m['scores'])}/{m['k']} | | |")


if __name__ == "__main__":
    main()
