"""How often FrozenLake-v1's ``batched`` recipe ends at >= 0.70 with its final network (keep_best off).

Lockstep groups (``--seeds 32`` from several first seeds) and single-seed runs (one agent on 32 envs),
each judged by the exact success probability of the last network. Every agent draws from streams keyed
by its own seed, so seed s alone is the same run as seed s in a group: the single runs check that.

Run:  .venv/bin/python bench/recipe_reliability.py [--starts 0,32,64,96,128] [--singles 0:72] [--json FILE | --no-record]
Appends one row per lockstep group and per single-seed run to bench/results/recipe_reliability.jsonl.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script

from qlearn.threads import configure_threads
from qlearn.training.runner import run_many


def group(first: int, k: int, out: str) -> list[float]:
    res = run_many("FrozenLake-v1", "dqn", seeds=range(first, first + k), n_envs=32, recipe="batched",
                   sets=["keep_best=false", "checkpoint_every=0"], out=out, progress=False)
    return [float(x) for x in res.final_scores]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", default="0,32,64,96,128")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--singles", default="0:72")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    out = tempfile.mkdtemp(prefix="qlearn-recipe-")
    result: dict = {"lockstep": {}, "single": {}}
    t = time.perf_counter()
    for first in (int(s) for s in args.starts.split(",") if s):
        scores = group(first, args.k, out)
        result["lockstep"][first] = scores
        print(f"lockstep seeds {first}-{first + args.k - 1}: {sum(s >= 0.70 for s in scores)}/{len(scores)} >= 0.70, "
              f"min {min(scores):.4f}", flush=True)
    lo, hi = (int(x) for x in args.singles.split(":"))
    for s in range(lo, hi):
        result["single"][s] = group(s, 1, out)[0]
    singles = np.array(list(result["single"].values()))
    alone_differs = {s: v for s, v in result["single"].items() if any(
        v != scores[s - first] for first, scores in result["lockstep"].items() if first <= s < first + len(scores))}
    print(f"single-seed runs {lo}-{hi - 1}: {int((singles >= 0.70).sum())}/{len(singles)} >= 0.70; "
          f"below: {[s for s, v in result['single'].items() if v < 0.70]}; unlike the same seed in its group: "
          f"{alone_differs or 'none'}")
    print(f"total {time.perf_counter() - t:.0f} s")
    record.recorder("recipe_reliability", args)(
        [{"mode": "lockstep", "first_seed": first, "k": len(scores), "scores": scores}
         for first, scores in result["lockstep"].items()]
        + [{"mode": "single", "seed": s, "score": v} for s, v in result["single"].items()])


if __name__ == "__main__":
    main()
