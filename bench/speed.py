"""Speed, side by side with Stable-Baselines3 DQN, in one script run on one machine (issue 4).

1. Environment steps per second at matched hyperparameters (one agent, one env, 64x64 MLP, batch 64,
   lr 1e-3, a gradient step every 4 env steps, buffer 50k, 20k steps): FrozenLake-v1 and CartPole-v1.
2. Wall time to threshold on FrozenLake-v1 4x4 slippery (exact greedy success >= 0.70, checked every
   512 env steps; the checks' own time excluded for both), seeds 100-119 (held out: bench/ttt_search.py
   chose settings on seeds 0-19): qlearn's ``fast`` recipe (linear Q-network, one agent, 256 envs) and
   its ``batched`` recipe (64x64, 32 envs) vs SB3 with the fastest settings the same search found for it,
   SB3 given qlearn's ``fast`` recipe, and SB3 with the settings of MEASURED.md.
3. Many seeds: 32 seeds of FrozenLake 4x4 with the ``batched`` recipe in one process (``qlearn train
   FrozenLake-v1 --recipe batched --seeds 32``) vs 32 single-seed runs one after another: SB3 (fastest
   settings, same 40k steps per seed) and qlearn (same recipe, one seed per process call). Single runs are
   timed on a subset and scaled. Reports how many seeds end at >= 0.70 with their final network.
4. Peak memory of 32 agents x 100k transitions of replay memory (a child process per case).

5. With ``--classic``: time to threshold on CartPole-v1 (>= 475) and MountainCar-v0 (>= -110), qlearn's
   presets vs SB3 with the RL Zoo settings, and where an env has a ``batched`` recipe (CartPole) that
   recipe and SB3 given the same recipe (``bench/classic_ttt.py``'s functions; ~20 minutes).
The GPU case (1,024 seeds on one device) is ``bash bench/gpu_check.sh`` on a machine with CUDA.

The whole issue-4 table in one run:
      .venv/bin/python bench/speed.py --classic
Parts: [--many-k 32] [--single-runs 8] [--skip sps,ttt,many,memory] [--classic-seeds 0,1,2,3,4]
Prints a Markdown table of ratios qlearn : SB3 with versions. Single-thread torch and BLAS for both. Each
part's rows are appended to bench/results/speed.jsonl as the part ends (``bench/record.py``; a row's
``part`` is sps, ttt, many, memory or classic_ttt; ``--json FILE`` elsewhere, ``--no-record`` nowhere).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import record  # bench/ is on the path when run as a script
import torch
from classic_ttt import StopAt

from qlearn import DQNAgent, DQNConfig, make_env, train
from qlearn.config import with_overrides
from qlearn.envs import TabularMDP, success_probability
from qlearn.envs.vector import make_batched
from qlearn.presets import preset, recipe_envs
from qlearn.runs import versions
from qlearn.threads import configure_threads
from qlearn.training import train_many
from qlearn.training.runner import run_many

THRESHOLD = 0.70
CHECK_EVERY = 512
MATCHED = dict(lr=1e-3, batch_size=64, hidden=(64, 64), buffer_size=50_000, learning_starts=1_000, train_freq=4,
               gradient_steps=1, target_update_interval=250, double=False, loss="huber", epsilon_decay_steps=4_000)
SB3_MATCHED = dict(learning_rate=1e-3, batch_size=64, buffer_size=50_000, learning_starts=1_000, train_freq=4,
                   gradient_steps=1, target_update_interval=1_000, exploration_fraction=0.2,
                   exploration_final_eps=0.05, gamma=0.99, policy_kwargs={"net_arch": [64, 64]})
# SB3's fastest settings to 0.70 found by bench/ttt_search.py, the same search protocol that picked qlearn's
# `fast` recipe (bench/results/ttt_search.jsonl): 0.161 s median over seeds 0-19 in its final stage (a linear
# Q-network, as qlearn's winner; the earlier fastest, 64x64 at lr 3e-3 on 32 envs, took 0.38 s).
SB3_FAST_ENVS = 64
SB3_FAST = dict(learning_rate=3e-2, batch_size=512, buffer_size=50_000, learning_starts=100, train_freq=1,
                gradient_steps=2, target_update_interval=64, exploration_fraction=0.05, exploration_final_eps=0.05,
                gamma=0.99, policy_kwargs={"net_arch": []})
SB3_BUDGET = 100_000  # total_timesteps for SB3's time-to-threshold runs (its exploration_fraction refers to it)


def sb3_dqn(env, seed: int, **kw):
    from stable_baselines3 import DQN

    return DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kw)


def sb3_fast_model(seed: int, hp: dict | None = None, n_envs: int | None = None):
    """SB3 DQN on ``n_envs`` vectorized FrozenLakes (default: the fastest settings found)."""
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("FrozenLake-v1", n_envs=n_envs or SB3_FAST_ENVS, seed=seed)
    return sb3_dqn(env, seed, **(SB3_FAST if hp is None else hp))


# ------------------------------------------------------------------------------------------ 1. steps/s
def steps_per_second(env_id: str, steps: int = 20_000) -> tuple[float, float]:
    env = make_env(env_id)
    agent = DQNAgent.for_env(env, DQNConfig(**MATCHED), seed=0)
    t = time.perf_counter()
    train(agent, env, steps, eval_every=0, keep_best=False, progress=False)  # no evaluation inside the timing
    q = steps / (time.perf_counter() - t)
    model = sb3_dqn(gym.make(env_id), 0, **SB3_MATCHED)
    t = time.perf_counter()
    model.learn(steps)
    s = steps / (time.perf_counter() - t)
    return q, s


# ------------------------------------------------------------------------------- 2. time to threshold
MDP = None


def exact_success(q_table: np.ndarray) -> float:
    global MDP
    if MDP is None:
        MDP = TabularMDP.from_env(make_env("FrozenLake-v1"))
    return success_probability(MDP, q_table)


def qlearn_time_to_threshold(seed: int, recipe: str = "fast", budget: int = 100_000, overrides: dict | None = None,
                             n_envs: int | None = None) -> tuple[float | None, int | None]:
    """A FrozenLake recipe's loop (as ``train_many``'s; ``overrides`` laid over the recipe), scored exactly
    every 512 env steps. Seconds count from before the agent and its envs are built."""
    t0 = time.perf_counter()
    over, _ = preset("FrozenLake-v1", "dqn", recipe)
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), with_overrides(DQNConfig(), {**over, **(overrides or {})}),
                             seeds=[seed])
    venv = make_batched("FrozenLake-v1", 1, n_envs or recipe_envs("FrozenLake-v1", recipe), seeds=[seed])
    stop = StopAt(THRESHOLD, t0)
    train_many(agent, venv, budget, env_id="FrozenLake-v1", eval_every=CHECK_EVERY, hooks=[stop], progress=False)
    return (stop.hit["s"], stop.hit["step"]) if stop.hit else (None, None)


def sb3_time_to_threshold(seed: int, hp: dict | None = None, n_envs: int | None = None,
                          cap: int | None = None) -> tuple[float | None, int | None]:
    """SB3 DQN (default: the fastest settings found; ``n_envs=1`` with ``hp``: one plain env), scored the same
    way; ``cap`` stops a run that has not reached the threshold after that many env steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    obs = torch.arange(16)

    class Stop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_check, self.paused, self.hit = CHECK_EVERY, 0.0, None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_check:
                return True
            t = time.perf_counter()
            while self.next_check <= self.num_timesteps:
                self.next_check += CHECK_EVERY
            with torch.no_grad():
                qt = self.model.q_net(obs).numpy()
            if exact_success(qt) >= THRESHOLD:
                self.hit = self.num_timesteps
            self.paused += time.perf_counter() - t
            return self.hit is None and (cap is None or self.num_timesteps < cap)

    t0 = time.perf_counter()
    if n_envs == 1:
        model = sb3_dqn(gym.make("FrozenLake-v1"), seed, **hp)
    else:
        model = sb3_fast_model(seed, hp, n_envs)
    cb = Stop()
    model.learn(SB3_BUDGET, callback=cb)
    wall = time.perf_counter() - t0 - cb.paused
    return (wall, cb.hit) if cb.hit is not None else (None, None)


# ---------------------------------------------------------------------------------------- 3. many seeds
def final_exact(agent: DQNAgent) -> np.ndarray:
    return np.array([exact_success(q) for q in agent.q_table(None)])


def many_seeds(k: int, single_runs: int) -> dict:
    out = tempfile.mkdtemp(prefix="qlearn-speed-")
    t = time.perf_counter()
    res = run_many("FrozenLake-v1", "dqn", seeds=range(k), recipe="batched", n_envs=recipe_envs("FrozenLake-v1", "batched"),
                   sets=["keep_best=false", "checkpoint_every=0"], out=out, progress=False)  # SB3 writes none either
    lockstep = time.perf_counter() - t
    steps = res.steps
    # qlearn, one seed per run, same recipe (the library call `qlearn train --recipe batched` makes)
    q_scores, t = [], time.perf_counter()
    for s in range(single_runs):
        one = run_many("FrozenLake-v1", "dqn", seeds=[s], recipe="batched", sets=["keep_best=false", "checkpoint_every=0"], out=out,
                       n_envs=recipe_envs("FrozenLake-v1", "batched"), progress=False)
        q_scores.append(float(one.final_scores[0]))
    q_single = (time.perf_counter() - t) / single_runs
    # SB3, fastest settings, the same env steps per seed
    s_scores, t = [], time.perf_counter()
    for s in range(single_runs):
        model = sb3_fast_model(s)
        model.learn(steps)
        with torch.no_grad():
            s_scores.append(exact_success(model.q_net(torch.arange(16)).numpy()))
    s_single = (time.perf_counter() - t) / single_runs
    fs = np.asarray(res.final_scores)
    return {"k": k, "steps_per_seed": steps, "lockstep_s": lockstep, "env_steps_per_s": k * steps / lockstep,
            "final_scores": fs.round(4).tolist(), "final_ge_070": int((fs >= THRESHOLD).sum()),
            "single_runs_timed": single_runs,
            "qlearn_single_s": q_single, "qlearn_one_after_another_s": q_single * k,
            "qlearn_single_scores": q_scores,
            "sb3_single_s": s_single, "sb3_one_after_another_s": s_single * k, "sb3_single_scores": s_scores}


# --------------------------------------------------------------------------------------------- 4. memory
MEMORY_CHILD = r"""
import json, sys, numpy as np


def peak_mb():  # VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024



from qlearn import DQNAgent, DQNConfig, make_env
from qlearn.threads import configure_threads
configure_threads(1)
env_id, k, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
before = peak_mb()
agent = DQNAgent.for_env(make_env(env_id), DQNConfig(buffer_size=cap, learning_starts=0, train_freq=10**9), seeds=range(k))
space = make_env(env_id).observation_space
rng = np.random.default_rng(0)
chunk = 1000
for _ in range(cap // chunk):  # fill every slot (touch all pages), 1,000 env steps per call
    if agent.buffer.n_envs != chunk:  # as DQNAgent.observe does: the empty memory is freed first
        agent.buffer = None
        agent.buffer = agent._make_buffer(n_envs=chunk)
    o = np.stack([[space.sample() for _ in range(chunk)] for _ in range(k)])
    agent.buffer.store(agent._stored(o), rng.integers(0, 2, (k, chunk)), np.zeros((k, chunk)),
                       agent._stored(o), np.zeros((k, chunk)), np.zeros((k, chunk)))
for _ in range(20):
    agent.train_step()
buf = agent.buffer
nbytes = sum(getattr(buf, f).numel() * getattr(buf, f).element_size() for f in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"))
print(json.dumps({"peak_rss_mb": peak_mb(), "rss_before_agent_mb": before, "replay_bytes_mb": nbytes / 2**20, "size": len(buf)}))
"""


def memory(env_id: str, k: int = 32, capacity: int = 100_000) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, env_id, str(k), str(capacity)],
                          capture_output=True, text=True, check=True)
    return {"env": env_id, "k": k, "capacity": capacity, **json.loads(proc.stdout.strip().splitlines()[-1])}


# ------------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many-k", type=int, default=32)
    ap.add_argument("--single-runs", type=int, default=8, help="single-seed runs timed (per library) to scale to K")
    ap.add_argument("--threshold-seeds", default=",".join(map(str, range(100, 120))),
                    help="seeds of the time-to-threshold rows (default 100-119: not the seeds bench/ttt_search.py chose on)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: sps,ttt,many,memory")
    ap.add_argument("--classic", action="store_true", help="also time to threshold on CartPole and MountainCar")
    ap.add_argument("--classic-seeds", default="0,1,2,3,4")
    ap.add_argument("--classic-envs", default="CartPole-v1,MountainCar-v0")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    import stable_baselines3

    skip = set(filter(None, args.skip.split(",")))
    out: dict = {"versions": {**versions(), "stable_baselines3": stable_baselines3.__version__},
                 "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                            f"{__import__('os').cpu_count()} cores", "command": " ".join(sys.argv)}
    print(f"versions: {json.dumps(out['versions'])}", flush=True)

    write, saved = record.recorder("speed", args), [0]

    def save():  # append the rows of `out` not yet written
        rows = rows_of(out)
        write(rows[saved[0]:])
        saved[0] = len(rows)

    if "sps" not in skip:
        out["sps"] = {}
        for env_id in ("FrozenLake-v1", "CartPole-v1", "MountainCar-v0"):
            q, s = steps_per_second(env_id)
            out["sps"][env_id] = {"qlearn": q, "sb3": s}
            print(f"steps/s {env_id}: qlearn {q:.0f}, sb3 {s:.0f}, ratio {q / s:.2f}", flush=True)
        save()
    if "ttt" not in skip:
        from classic_ttt import sb3_like_recipe

        like = sb3_like_recipe("FrozenLake-v1", "fast")
        like_envs = like.pop("n_envs")
        sb3_fast_model(0).learn(256)  # first-call costs (imports, allocator) outside the timed runs
        qlearn_time_to_threshold(0, budget=2_048)
        out["ttt"] = []
        for seed in (int(x) for x in args.threshold_seeds.split(",")):
            row = {"seed": seed}
            row["qlearn_s"], row["qlearn_steps"] = qlearn_time_to_threshold(seed, "fast")
            row["qlearn_batched_s"], row["qlearn_batched_steps"] = qlearn_time_to_threshold(seed, "batched")
            row["sb3_fast_s"], row["sb3_fast_steps"] = sb3_time_to_threshold(seed)
            row["sb3_like_s"], row["sb3_like_steps"] = sb3_time_to_threshold(seed, like, like_envs)
            row["sb3_matched_s"], row["sb3_matched_steps"] = sb3_time_to_threshold(seed, SB3_MATCHED, 1)
            out["ttt"].append(row)
            print(f"time to 0.70: {json.dumps(row)}", flush=True)
        save()
    if "many" not in skip:
        out["many"] = many_seeds(args.many_k, args.single_runs)
        print(f"many seeds: {json.dumps(out['many'])}", flush=True)
        save()
    if "memory" not in skip:
        out["memory"] = [memory("FrozenLake-v1"), memory("CartPole-v1")]
        print(f"memory: {json.dumps(out['memory'])}", flush=True)
        save()
    if args.classic:
        from classic_ttt import qlearn_recipe_ttt, qlearn_ttt, sb3_ttt

        from qlearn.presets import recipes

        out["classic_ttt"] = []
        for env_id in args.classic_envs.split(","):
            runs = [qlearn_ttt, sb3_ttt]
            if "batched" in recipes(env_id):  # the recipe, and SB3 given the same recipe
                runs += [lambda e, s: qlearn_recipe_ttt(e, s, "batched"), lambda e, s: sb3_ttt(e, s, "batched")]
            for seed in (int(x) for x in args.classic_seeds.split(",")):
                for fn in runs:
                    out["classic_ttt"].append(fn(env_id, seed))
                    print(json.dumps(out["classic_ttt"][-1]), flush=True)
                    save()
    record.show("speed_sps", "speed_ttt", "speed_many", "speed_memory", args=args)


def rows_of(out: dict) -> list[dict]:
    """``out``'s results as rows, in the order the parts ran (each part's rows only grow at the end)."""
    rows: list[dict] = []
    for part, value in out.items():
        if part == "sps":
            rows += [{"part": part, "env": env_id, **d} for env_id, d in value.items()]
        elif part == "many":
            rows.append({"part": part, **value})
        elif part in ("ttt", "memory", "classic_ttt"):
            rows += [{"part": part, **r} for r in value]
    return rows


if __name__ == "__main__":
    main()
