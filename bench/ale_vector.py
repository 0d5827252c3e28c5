"""Atari games stepped many at once: ale-py's vector env (``--env-arg vector=ale``) against the Gymnasium
pipeline in a ``SyncVectorEnv`` and against SB3's ``make_atari_env`` + ``VecFrameStack``, in one script run.

Parts (rows to ``bench/results/ale_vector.jsonl``):

1. ``env``: env steps per second with uniformly random actions, ``--steps`` steps of all N envs after 50
   steps of warm-up, for each N in ``--envs``: qlearn's batched env on the Gymnasium pipeline
   (``vector=gymnasium``), on ale-py's vector env with 1 and 2 emulator threads, and SB3's
   ``make_atari_env(ID, n_envs=N)`` with ``VecFrameStack(4)`` (a ``DummyVecEnv``). Every arm plays the same
   protocol on ``*NoFrameskip-v4`` (4 frames per action, max-pooled, 84x84 grayscale, 4 stacked, up to 30
   no-op starts, no sticky actions).
2. ``train``: ``qlearn train ID --envs N`` with the Atari DQN preset (replay start a quarter of the
   ``--train-steps`` budget, games cut at 2,000 frames in both arms, one evaluation game at the end), once
   per vector env; env steps/s over the run's wall time (its end evaluation included).

Run: ``.venv/bin/python bench/ale_vector.py [--envs 8,32] [--parts env,train]``; nothing else should run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script
import torch

GAME = "BreakoutNoFrameskip-v4"


def qlearn_env(n: int, vector: str, threads: int = 1):
    from qlearn.envs.ale_vector import AleVectorBatched
    from qlearn.envs.vector import make_batched

    if vector == "ale":
        return AleVectorBatched(GAME, 1, n, vector="ale", threads=threads)
    return make_batched(GAME, 1, n)


def timed(venv, n: int, steps: int, actions) -> float:
    """Env steps per second of ``venv`` over ``steps`` steps of its ``n`` envs after 50 of warm-up;
    ``actions(rng, count)`` the action batch the env takes."""
    rng = np.random.default_rng(0)
    count = venv.action_space.n
    venv.reset()
    for i in range(50 + steps):
        if i == 50:
            t = time.perf_counter()
        venv.step(actions(rng, count))
    sps = n * steps / (time.perf_counter() - t)
    venv.close()
    return sps


def time_qlearn(n: int, steps: int, vector: str, threads: int = 1) -> float:
    return timed(qlearn_env(n, vector, threads), n, steps, lambda rng, a: torch.as_tensor(rng.integers(0, a, (1, n))))


def time_sb3(n: int, steps: int) -> float:
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)  # (SB3 makes the id with gym.make)
    venv = VecFrameStack(make_atari_env(GAME, n_envs=n, seed=0), n_stack=4)
    return timed(venv, n, steps, lambda rng, a: rng.integers(0, a, n))


def train(n: int, steps: int, vector: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "qlearn", "train", GAME, "--envs", str(n), "--steps", str(steps), "--env-arg",
               f"vector={vector}", "--env-arg", "max_frames=2000", "--set", f"learning_starts={steps // 4}", "--set",
               f"eval_every={steps}", "--set", "eval_episodes=1", "--set", "checkpoint_every=0", "--out", out,
               "--no-progress", "--json"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "QLEARN_THREADS": "1"})
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        agg = json.loads(proc.stdout)["aggregate"]
    return {"sps": agg["steps_per_agent"] / agg["wall_time"], "train_wall": agg["wall_time"], "command_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="8,32")
    ap.add_argument("--steps", type=int, default=300, help="timed steps of all N envs (env part)")
    ap.add_argument("--train-steps", type=int, default=16_000, help="env steps per env batch (train part)")
    ap.add_argument("--train-envs", type=int, default=8)
    ap.add_argument("--parts", default="env,train")
    record.add_arguments(ap)
    args = ap.parse_args()
    write = record.recorder("ale_vector", args)
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    parts = args.parts.split(",")
    if "env" in parts:
        for n in (int(x) for x in args.envs.split(",")):
            arms = {
                "SB3 make_atari_env + VecFrameStack": time_sb3(n, args.steps),
                "qlearn vector=gymnasium": time_qlearn(n, args.steps, "gymnasium"),
                "qlearn vector=ale, 1 thread": time_qlearn(n, args.steps, "ale", 1),
                "qlearn vector=ale, 2 threads": time_qlearn(n, args.steps, "ale", 2),
            }
            peer = arms["SB3 make_atari_env + VecFrameStack"]
            write([{"part": "env", "env": GAME, "n_envs": n, "arm": arm, "sps": sps, "peer_sps": peer}
                   for arm, sps in arms.items()])
            print(f"N={n}: " + ", ".join(f"{a} {s:.0f} ({s / peer:.2f}x SB3)" for a, s in arms.items()), flush=True)
    if "train" in parts:
        n, steps = args.train_envs, args.train_steps
        gym_arm, ale_arm = train(n, steps, "gymnasium"), train(n, steps, "ale")
        write([{"part": "train", "env": GAME, "n_envs": n, "steps": steps, "arm": f"qlearn dqn vector={v}", **m}
               for v, m in (("gymnasium", gym_arm), ("ale", ale_arm))])
        print(f"train N={n}: gymnasium {gym_arm['sps']:.0f} env steps/s, ale {ale_arm['sps']:.0f} "
              f"({ale_arm['sps'] / gym_arm['sps']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
