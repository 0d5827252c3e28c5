"""Distributional heads measured against the truth and against the peer, in one script run.

Parts (each appends rows to ``bench/results/distributional.jsonl``):

1. ``frozenlake``: slippery FrozenLake 4x4 with the preset and ``distributional=c51`` (and ``qr``), 5 seeds
   in lockstep: each seed's exact success probability (from ``P``) and the Wasserstein-1 distance of its
   start state's learned return distribution (the greedy action's) from the exact distribution of its
   own greedy policy (``qlearn.exact_returns``), with the floor (the exact distribution's distance from
   its best representation by the agent). The issue's goal: 5/5 at least 0.70, distance at most 0.05.

2. ``peer``: CartPole-v1 (50k env steps) and MountainCar-v0 (120k), qlearn's preset with
   ``distributional=qr`` (the Zoo's quantile count) and ``distributional=c51``, 5 seeds in lockstep in one
   ``qlearn train ENV --seeds 5`` command, against sb3-contrib's QR-DQN with the RL Zoo's ``qrdqn.yml``
   settings, 5 runs one after another, each its own command. Every network (qlearn: last and delivered;
   sb3-contrib: last) plays 100 greedy episodes from the same seeds; solved means a mean of at least 475
   (CartPole) or -110 (MountainCar). Wall time: each whole command (process start to exit), less the
   100-episode scoring this script adds to the sb3-contrib commands; qlearn's own periodic evaluations stay in.

Usage: ``python bench/distributional.py [--parts frozenlake,peer] [--kinds c51,qr] [--envs CartPole-v1]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classic_control import THRESHOLD, ZOO, SB3Greedy  # noqa: E402
from record import append  # noqa: E402

import qlearn  # noqa: E402
from qlearn.agents.dqn import DQNAgent  # noqa: E402
from qlearn.envs.make import make_env  # noqa: E402
from qlearn.envs.tabular import TabularMDP, success_probability  # noqa: E402
from qlearn.evaluation import evaluate  # noqa: E402
from qlearn.exact_returns import compare_agent  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402


def part_frozenlake(args) -> list[dict]:
    rows = []
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    for kind in args.kinds.split(","):
        spec = qlearn.RunSpec.build("FrozenLake-v1", "dqn", seeds=range(args.seeds), lockstep=True,
                                    sets=[f"distributional={kind}"])
        t = time.perf_counter()
        res = qlearn.run(spec, out=args.out, progress=False, command=" ".join(sys.argv))
        wall = time.perf_counter() - t
        seeds = []
        for i in range(args.seeds):
            agent = res.agent.select(i)
            q = agent.q_table(0)
            _, _, w1, floor, _ = compare_agent(agent, env)
            start = int(mdp.isd.argmax())
            seeds.append({"seed": i, "exact_success": success_probability(mdp, q), "w1_start": float(w1[start]),
                          "floor_start": float(floor[start]), "w1_max_nonterminal": float(w1[~mdp.terminal].max())})
        row = {"part": "frozenlake", "env": "FrozenLake-v1", "kind": kind, "seeds": seeds, "steps": res.steps,
               "wall_s": wall, "settings": spec.agent_config.__dict__ | {"hidden": list(spec.agent_config.hidden)},
               "solved": sum(s["exact_success"] >= 0.70 for s in seeds),
               "within_0.05": sum(s["w1_start"] <= 0.05 for s in seeds)}
        rows.append(row)
    return rows


N_QUANTILES = {"CartPole-v1": 10, "MountainCar-v0": 25}  # rl-baselines3-zoo hyperparams/qrdqn.yml
EPISODES, EVAL_SEED = 100, 50_000


def zoo_qrdqn(env_id: str) -> dict:
    """The Zoo's qrdqn.yml for ``env_id``: its dqn.yml settings with the quantile count."""
    return {**ZOO[env_id], "policy_kwargs": dict(net_arch=[256, 256], n_quantiles=N_QUANTILES[env_id])}


def sb3_one(env_id: str, seed: int) -> dict:
    """One sb3-contrib QR-DQN run (this script's ``--sb3-one`` child process), scored like qlearn's."""
    import gymnasium as gym
    import torch
    from sb3_contrib import QRDQN

    torch.set_num_threads(1)
    hp = zoo_qrdqn(env_id)
    steps = hp.pop("n_timesteps")
    t = time.perf_counter()
    model = QRDQN("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **hp)
    model.learn(steps)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    ev = evaluate(SB3Greedy(model), make_env(env_id), EPISODES, seed=EVAL_SEED)
    return {"seed": seed, "train_s": train_s, "score_s": time.perf_counter() - t, "final_mean": ev.mean_return,
            "final_ci95": list(ev.ci95), "settings": {k: str(v) for k, v in hp.items()}, "steps": steps}


def command_wall(cmd: list[str]) -> tuple[float, str]:
    """Seconds one whole command takes, and its stdout (a failure stops the benchmark with its output)."""
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def part_peer(args):
    """qlearn's C51 and QR (5 seeds, one command) against sb3-contrib QR-DQN (5 commands), per env."""
    seeds = list(range(args.seeds))
    for env_id in args.envs.split(","):
        env, goal = make_env(env_id), THRESHOLD[env_id]
        runs = []
        for i in seeds:
            wall, out = command_wall([sys.executable, __file__, "--sb3-one", env_id, str(i)])
            runs.append({**json.loads(out.strip().splitlines()[-1]), "command_s": wall})
            runs[-1]["command_s_unscored"] = wall - runs[-1]["score_s"]
            print(json.dumps({"sb3-contrib": env_id, **runs[-1]}), flush=True)
        peer_s = sum(r["command_s_unscored"] for r in runs)
        yield {"part": "peer", "env": env_id, "lib": "sb3-contrib", "kind": "qr", "seeds": runs, "wall_s": peer_s,
               "solved": sum(r["final_mean"] >= goal for r in runs), "threshold": goal, "episodes": EPISODES}
        for kind in args.kinds.split(","):
            sets = [f"distributional={kind}"] + ([f"quantiles={N_QUANTILES[env_id]}"] if kind == "qr" else [])
            out_dir = tempfile.mkdtemp(prefix="qlearn_peer_", dir=args.out if Path(args.out).is_dir() else None)
            cmd = [sys.executable, "-m", "qlearn", "train", env_id, "--seeds", str(len(seeds)), "--out", out_dir,
                   "--no-plots"] + [x for s_ in sets for x in ("--set", s_)]
            wall, _ = command_wall(cmd)
            (parent,) = Path(out_dir).iterdir()
            rows = []
            for i in seeds:
                row = {"seed": i}
                for name, key in (("last", "final"), ("agent", "delivered")):
                    agent = DQNAgent.load(parent / f"seed_{i}" / f"{name}.pt", env)
                    ev = evaluate(agent, env, EPISODES, seed=EVAL_SEED)
                    row.update({f"{key}_mean": ev.mean_return, f"{key}_ci95": list(ev.ci95)})
                rows.append(row)
            yield {"part": "peer", "env": env_id, "lib": "qlearn", "kind": kind, "command": " ".join(cmd[1:]),
                   "seeds": rows, "wall_s": wall, "speedup_vs_peer": peer_s / wall, "threshold": goal,
                   "solved": sum(r["final_mean"] >= goal for r in rows),
                   "solved_delivered": sum(r["delivered_mean"] >= goal for r in rows), "episodes": EPISODES,
                   "settings": json.loads((parent / "seed_0" / "config.json").read_text())["agent_config"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="frozenlake")
    p.add_argument("--kinds", default="c51,qr")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--envs", default="CartPole-v1,MountainCar-v0", help="the peer part's envs")
    p.add_argument("--out", default="runs/bench_distributional")
    p.add_argument("--sb3-one", nargs=2, metavar=("ENV", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    configure_threads(1)
    if args.sb3_one:
        print(json.dumps(sb3_one(args.sb3_one[0], int(args.sb3_one[1]))))
        return
    parts = {"frozenlake": part_frozenlake, "peer": part_peer}
    for name in args.parts.split(","):
        for row in parts[name](args):  # appended as each finishes: a stopped run keeps what it measured
            print(json.dumps(row), flush=True)
            append("distributional", [row])


if __name__ == "__main__":
    main()
