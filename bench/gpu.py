"""Many seeds on one device in one short run: K agents of FrozenLake 4x4 in lockstep vs one agent.

Meant for a lent GPU (`--device cuda`, K up to 1,024), and runnable on the CPU with small K to check the
script itself. Each K trains the FrozenLake ``batched`` recipe (32 envs per agent, 40k env steps per
agent) through `run_many`, the code behind `qlearn train --seeds K`, writing every seed's run folder.
Reports per K: training wall time (the lockstep loop, per-seed logs included), total wall time (plus
building the agents and writing K run folders with two checkpoints each), env steps/s of all agents
together, and the share of seeds at exact greedy success >= 0.70, for the final networks and for the
delivered ones (the best evaluation kept). A short K=1 run first warms CUDA up, so that its start-up
cost is not charged to the first timed run. On a GPU, one seed on the CPU (numpy gradient step, the
fastest way to train a lone seed) is timed last on the same machine, for the honest comparison.

Run:  python bench/gpu.py --device cuda --ks 1 32 256 1024
      .venv/bin/python bench/gpu.py --device cpu --ks 1 4 --steps 4000 --no-record     (a quick check here)
Each timed K appends a row to bench/results/gpu.jsonl (``bench/record.py``; on a lent machine
``bash bench/gpu_check.sh`` points them at ``$OUT``), with ``train_vs_first``: its training time over the
first K's (``first_k``) in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script
import torch

from qlearn.runs import versions
from qlearn.threads import configure_threads
from qlearn.training.runner import run_many


def one(k: int, args: argparse.Namespace, out: str, device: str | None = None) -> dict:
    device = device or args.device
    t = time.perf_counter()
    res = run_many("FrozenLake-v1", "dqn", seeds=range(k), n_envs=args.envs, steps=args.steps, out=out,
                   progress=False, device=device, recipe=args.recipe, sets=args.set)
    total = time.perf_counter() - t
    final, delivered = np.asarray(res.final_scores), np.asarray(res.delivered_scores)
    return {"device": device, "k": k, "sets": list(args.set), "train_s": round(res.wall_time, 2), "total_s": round(total, 2),
            "env_steps_per_s": round(res.env_steps_per_second), "final_ge_070": float((final >= 0.70).mean()),
            "delivered_ge_070": float((delivered >= 0.70).mean()), "final_mean": float(final.mean()),
            "final_min": float(final.min()), "peak_gpu_mb": (round(torch.cuda.max_memory_allocated() / 2**20)
                                                             if device.startswith("cuda") else None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 1024], help="numbers of seeds to time (first: the base)")
    ap.add_argument("--recipe", default="batched")
    ap.add_argument("--envs", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="env steps per agent (default: the recipe's)")
    ap.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                    help="settings over the recipe (default: checkpoint_every=0, no mid-run checkpoints)")
    record.add_arguments(ap)
    ap.add_argument("--profile-k", type=int, help="after the table, one more run of this many seeds under cProfile "
                    "(its top functions by own time are printed; the run is not in the table)")
    args = ap.parse_args()
    args.set = args.set if args.set is not None else ["checkpoint_every=0"]
    configure_threads(1)
    out = tempfile.mkdtemp(prefix="qlearn-gpu-")
    cuda = args.device.startswith("cuda")
    info = {"versions": versions(), "device": args.device, "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "cpu": platform.processor() or platform.machine(), "recipe": args.recipe, "envs": args.envs,
            "command": "python bench/gpu.py " + " ".join(sys.argv[1:])}
    print(json.dumps(info), flush=True)
    run_many("FrozenLake-v1", "dqn", seeds=[0], n_envs=args.envs, steps=2000, out=out, progress=False,
             device=args.device, recipe=args.recipe)  # warm-up: CUDA context, kernels, imports
    rows = []
    for k in args.ks:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rows.append(one(k, args, out))
        print(json.dumps(rows[-1]), flush=True)
    if cuda:  # the fastest lone seed is on the CPU (numpy gradient step): measured on this machine's CPU too
        rows.append(one(1, args, out, device="cpu"))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    if args.profile_k:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(one, args.profile_k, args, out)
        print(f"\ncProfile of {args.profile_k} seeds (own time):")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    record.recorder("gpu", args)({"recipe": args.recipe, "envs": args.envs, **r, "first_k": base["k"],
                                  "train_vs_first": round(r["train_s"] / base["train_s"], 3)} for r in rows)
    record.show("gpu", args=args)


if __name__ == "__main__":
    main()
