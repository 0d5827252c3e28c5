"""MinAtar scores at 500k env steps: qlearn's preset, one seed per process (a resumable job), against SB3's
500k-step scores with the same network and settings (shared/MEASURED.md; not rerun here: 30-50 minutes a run).

The preset (``qlearn presets``) is the MinAtar paper's settings with Adam at 2.5e-4 and Huber loss, no
Double DQN: the settings SB3 ran with. The run trains through ``qlearn.run`` into ``--out`` (checkpoints
every 50k steps; a killed job continues with ``--resume RUN_DIR``), then its last network plays
``--episodes`` greedy games (sticky actions on, as in training; SB3's figures were scored the same way) and
the delivered (best evaluated) one too. One row per seed is appended to ``bench/results/minatar_scores.jsonl``.

``--seeds 0,1,2`` trains those seeds in lockstep in one process (``qlearn train --seeds``: each seed's
draws are its own, as alone) and writes one row per seed.

    python bench/minatar_scores.py --game Breakout-v1 --seed 0
    python bench/minatar_scores.py --game Freeway-v1 --seeds 0,1,2
    python bench/minatar_scores.py --resume runs/minatar/MinAtar-Breakout-v1__dqn__0__...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import append  # noqa: E402

import qlearn  # noqa: E402
from qlearn.agents.dqn import DQNAgent  # noqa: E402
from qlearn.envs.make import make_env  # noqa: E402
from qlearn.envs.pixels import protocol_of  # noqa: E402
from qlearn.evaluation import evaluate  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402

# SB3 DQN, same network and settings, seed 0, 500k env steps, 50 greedy episodes (shared/MEASURED.md)
SB3_500K = {"Breakout-v1": (12.62, 10.7), "Freeway-v1": (46.94, 4.1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--game", default="Breakout-v1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", help="comma-separated seeds trained in lockstep in one process")
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--out", default="runs/minatar")
    p.add_argument("--resume", metavar="RUN_DIR")
    args = p.parse_args()
    configure_threads(1)
    from record import commit_of

    started = commit_of()  # the row's stamp is taken when it is written, an hour on: note what ran
    t = time.perf_counter()
    if args.resume:
        res = qlearn.resume(args.resume, progress=False)
    else:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
        spec = qlearn.RunSpec.build(  # the preset, then the steps
            f"MinAtar/{args.game}", "dqn", seeds=seeds, lockstep=len(seeds) > 1, steps=args.steps
        )
        res = qlearn.run(spec, out=args.out, progress=False, command=" ".join(sys.argv))
    config = json.loads((Path(res.run_dirs[0]) / "config.json").read_text())
    env_id = config["env_id"]
    env = make_env(env_id)
    rows = []
    for i, run_dir in enumerate(res.run_dirs):
        summary = res.summary(i)
        seed = int(res.agent.seeds[i])
        row = {"env": env_id, "protocol": protocol_of(env), "seed": seed, "steps": res.steps,
               "train_wall_s": res.wall_time, "sps": res.steps / max(res.wall_time, 1e-9), "run_dir": str(run_dir),
               "episodes": args.episodes, "lockstep_seeds": [int(s) for s in res.agent.seeds]}
        for name in ("last", "agent"):
            agent = DQNAgent.load(Path(run_dir) / f"{name}.pt", env)
            ev = evaluate(agent, env, args.episodes, seed=12_345)
            key = "final" if name == "last" else "delivered"
            row.update({f"{key}_mean": ev.mean_return, f"{key}_std": ev.std_return, f"{key}_ci95": list(ev.ci95)})
        row["best_eval_score"], row["best_eval_step"] = summary["best_score"], summary["best_step"]
        sb3 = SB3_500K.get(env_id.split("/")[1])
        row["sb3_500k_mean"], row["sb3_500k_std"] = sb3 if sb3 else (None, None)
        row["wall_s"] = time.perf_counter() - t
        row["started_at_commit"], row["started_dirty"] = started
        print(json.dumps(row), flush=True)
        rows.append(row)
    append("minatar_scores", rows)


if __name__ == "__main__":
    main()
