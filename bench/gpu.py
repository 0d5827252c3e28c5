"""Many seeds on one device in one short run: K agents of FrozenLake 4x4 in lockstep vs one agent.

Meant for a lent GPU (`--device cuda`, K=1,024), and runnable on the CPU with small K to check the
script itself. Reports wall time of K seeds vs one seed, env steps/s in total, and the share of seeds
ending at exact greedy success >= 0.70.

Run:  .venv/bin/python bench/gpu.py --device cuda --seeds-k 1024 --steps 50000
      .venv/bin/python bench/gpu.py --device cpu --seeds-k 4 --steps 5000      (a quick check here)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from qlearn.runs import versions
from qlearn.training import configure_threads
from qlearn.training.runner import run_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seeds-k", type=int, default=1024)
    ap.add_argument("--envs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    configure_threads(1)
    out = tempfile.mkdtemp(prefix="qlearn-gpu-")
    info = {"versions": versions(), "device": args.device,
            "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None}
    print(json.dumps(info), flush=True)
    rows = {}
    for k in (1, args.seeds_k):
        t = time.perf_counter()
        res = run_many("FrozenLake-v1", "dqn", seeds=range(k), n_envs=args.envs, steps=args.steps, out=out,
                       progress=False, device=args.device)
        wall = time.perf_counter() - t
        scores = np.asarray(res.delivered_scores)
        rows[k] = {"k": k, "wall_s": wall, "env_steps_per_s": res.env_steps_per_second,
                   "share_ge_070": float((scores >= 0.70).mean()), "mean_score": float(scores.mean())}
        print(json.dumps(rows[k]), flush=True)
    ratio = rows[args.seeds_k]["wall_s"] / rows[1]["wall_s"]
    print("\n| device | seeds | wall s | env steps/s | seeds >= 0.70 |\n|---|---|---|---|---|")
    for r in rows.values():
        print(f"| {args.device} | {r['k']} | {r['wall_s']:.0f} | {r['env_steps_per_s']:.0f} | {r['share_ge_070']:.1%} |")
    print(f"\n{args.seeds_k} seeds took {ratio:.2f}x the wall time of one seed")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**info, "rows": list(rows.values()), "ratio": ratio}, fh, indent=1)


if __name__ == "__main__":
    main()
