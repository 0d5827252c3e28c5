"""PQN against qlearn's fastest DQN recipe and SB3's fastest settings, in one script run (issue 15).

``--part classic``: FrozenLake-v1 (4x4 slippery, exact success of the greedy policy >= 0.70) and CartPole-v1
(mean return of 100 greedy episodes >= 475) with 8 seeds:

- qlearn PQN: ``qlearn train ENV --agent pqn --seeds 8`` (the env's PQN preset), and qlearn DQN's fastest
  recipe (``--recipe batched``), each for the preset's steps and with ``--until GOAL`` (stopped once every
  seed's evaluation reached the goal; sampled evaluations by their CI's lower end): the whole command is
  timed (interpreter start, imports, training with its evaluations, the run folders and plots), then each
  seed's delivered ``agent.pt`` is scored (exactly on FrozenLake; 100 greedy episodes on CartPole, episode
  seeds apart from training's).
- SB3 DQN with the fastest settings measured so far (FrozenLake: ``bench/speed.py``'s ``SB3_FAST``, 64
  envs, found by ``bench/ttt_search.py``; CartPole: the RL Zoo's, ``bench/classic_ttt.py``), one seed after
  another as SB3 trains them, each stopped at its first check at or above the threshold (FrozenLake: exact,
  every 512 env steps; CartPole: 20 greedy episodes every 2,500 env steps) with the checks' time left out:
  the sum over seeds is a lower bound on what one SB3 command training 8 seeds would take.

``--part minatar``: MinAtar Breakout-v1, 3 seeds in lockstep, 500k env steps with PQN's preset; final score of
each delivered agent (100 greedy episodes) and wall time. ``--with-dqn`` also runs the DQN preset at the same
steps in the same script (about two hours on 2 cores); without it, BENCHMARKS.md compares with the DQN preset's
rows of ``bench/minatar_scores.py``, from another run.

Run:  .venv/bin/python bench/pqn.py --part classic [--envs FrozenLake-v1,CartPole-v1] [--seeds 8]
      .venv/bin/python bench/pqn.py --part minatar
Each configuration appends its row to bench/results/pqn.jsonl as it finishes (``bench/record.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

from qlearn.agents import load_agent  # noqa: E402
from qlearn.envs import make_env  # noqa: E402
from qlearn.envs.tabular import TabularMDP  # noqa: E402
from qlearn.evaluation import evaluate, exact_success  # noqa: E402

THRESHOLD = {"FrozenLake-v1": 0.70, "CartPole-v1": 475.0, "MinAtar/Breakout-v1": None}
DQN_RECIPE = {"FrozenLake-v1": "batched", "CartPole-v1": "batched"}
SCORE_EPISODES, SCORE_SEED = 100, 50_000
MINATAR_EPISODES, MINATAR_SEED = 50, 12_345  # as bench/minatar_scores.py scores the DQN preset


def qlearn_command(env_id: str, seeds: int, extra: list[str], out: Path, episodes: int, episode_seed: int) -> dict:
    """Run ``qlearn train ENV --seeds K ...`` as a user would, timed whole; then each seed's delivered agent
    (``agent.pt``, ``score``) and last agent (``last.pt``, ``final``) scored: exactly where the env has a model,
    else the mean return of ``episodes`` greedy episodes from ``episode_seed``."""
    shown = ["train", env_id, "--seeds", str(seeds), *extra]
    cmd = [sys.executable, "-m", "qlearn", *shown, "--no-progress", "--json", "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    run = Path(json.loads(proc.stdout)["run_dir"])
    thr = THRESHOLD[env_id]
    per_seed = []
    for d in sorted(run.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])):
        env = make_env(env_id)
        scores = {}
        for key, name in (("score", "agent.pt"), ("final", "last.pt")):
            agent = load_agent(d / name, env)
            if hasattr(env.unwrapped, "P"):
                scores[key] = float(exact_success(agent, TabularMDP.from_env(env)))
            else:
                scores[key] = float(evaluate(agent, env, episodes, seed=episode_seed).mean_return)
        evals = [line.split(",") for line in (d / "evals.csv").read_text().splitlines()[1:]]
        first = next((int(s[0]) for s in evals if thr is not None and float(s[1]) >= thr), None)
        per_seed.append({"seed": int(d.name.split("_")[1]), **scores, "first_eval_at_goal": first})
    return {
        "command": " ".join(["qlearn", *shown]),
        "wall_s": wall,
        "seeds": per_seed,
        "episodes": episodes,
        "solved": sum(s["score"] >= thr for s in per_seed) if thr is not None else None,
    }


def sb3_fastest(env_id: str, seeds: int) -> dict:
    """SB3 DQN's fastest settings measured so far, seed after seed, each stopped at its threshold."""
    per_seed = []
    if env_id == "FrozenLake-v1":
        from speed import sb3_time_to_threshold

        for s in range(seeds):
            wall, step = sb3_time_to_threshold(s)
            per_seed.append({"seed": s, "s": wall, "step": step})
        settings = "bench/speed.py SB3_FAST (64 envs, linear)"
    else:
        from classic_ttt import sb3_ttt

        for s in range(seeds):
            row = sb3_ttt(env_id, s)
            per_seed.append({"seed": s, "s": row["s"], "step": row["step"]})
        settings = "RL Zoo (bench/classic_ttt.py)"
    reached = [r["s"] for r in per_seed if r["s"] is not None]
    return {"settings": settings, "seeds": per_seed, "solved": len(reached), "wall_s": float(sum(reached))}


def classic(args: argparse.Namespace) -> None:
    save = record.recorder("pqn", args)
    for env_id in args.envs.split(","):
        goal = str(THRESHOLD[env_id])
        runs = [
            ("qlearn pqn", ["--agent", "pqn"]),
            ("qlearn pqn --until", ["--agent", "pqn", "--until", goal]),
            (f"qlearn dqn --recipe {DQN_RECIPE[env_id]}", ["--recipe", DQN_RECIPE[env_id]]),
            (f"qlearn dqn --recipe {DQN_RECIPE[env_id]} --until", ["--recipe", DQN_RECIPE[env_id], "--until", goal]),
        ]
        rows = {}
        with tempfile.TemporaryDirectory() as tmp:
            for i, (lib, extra) in enumerate(runs):
                rows[lib] = qlearn_command(env_id, args.seeds, extra, Path(tmp) / str(i), SCORE_EPISODES, SCORE_SEED)
        sb3 = sb3_fastest(env_id, args.seeds)
        for lib, row in [*rows.items(), ("sb3", sb3)]:
            out = {
                "part": "classic",
                "env": env_id,
                "lib": lib,
                "k": args.seeds,
                **row,
                "sb3_wall_over_this": sb3["wall_s"] / row["wall_s"] if row["wall_s"] else None,
            }
            print(json.dumps(out), flush=True)
            save([out])


def minatar(args: argparse.Namespace) -> None:
    save = record.recorder("pqn", args)
    env_id = "MinAtar/Breakout-v1"
    runs = [("qlearn pqn", ["--agent", "pqn"])] + ([("qlearn dqn", [])] if args.with_dqn else [])
    for lib, extra in runs:
        with tempfile.TemporaryDirectory() as tmp:
            row = qlearn_command(
                env_id, 3, [*extra, "--steps", str(args.minatar_steps)], Path(tmp), MINATAR_EPISODES, MINATAR_SEED
            )
        out = {
            "part": "minatar",
            "env": env_id,
            "lib": lib,
            "k": 3,
            "steps": args.minatar_steps,
            **row,
            "final_mean": float(np.mean([s["final"] for s in row["seeds"]])),
        }
        print(json.dumps(out), flush=True)
        save([out])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["classic", "minatar"], default="classic")
    ap.add_argument("--envs", default="FrozenLake-v1,CartPole-v1")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--minatar-steps", type=int, default=500_000)
    ap.add_argument("--with-dqn", action="store_true", help="--part minatar: also run the DQN preset (slow)")
    record.add_arguments(ap)
    args = ap.parse_args()
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    (classic if args.part == "classic" else minatar)(args)
    record.show("pqn_classic" if args.part == "classic" else "pqn_minatar", args=args)


if __name__ == "__main__":
    main()
