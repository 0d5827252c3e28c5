"""A sweep trial's training speed against the same run launched directly, and a sweep's fixed cost.

For each case, one after the other in one script run (same machine, same load):

- ``direct``: ``qlearn train ENV --agent A --seeds K --steps S`` as a subprocess; training env steps per
  second per seed from its ``aggregate.json`` (steps per seed / training wall time);
- ``trial``: the same settings as a one-trial ``qlearn sweep`` on a local Ray instance started by the
  command (``--num-cpus 2``): the trial's own training env steps per second per seed, and the command's
  fixed cost: Ray's start and shutdown (from the sweep's ``summary.json``) and the whole command's time.

``--repeats R`` runs each case's arms R times, interleaved (direct, trial, direct, trial, ...): on a busy
2-core machine one pair's ratio varies by +-10%, so the table gives the median ratio of the pairs and
their range.

``--loads`` runs N busy-loop processes beside the arms: the task-path gap the sweep issue reports was
seen while other work ran on this 2-core machine. Under load, a third arm runs the direct K=1 command at
niceness 15, where Ray starts its workers (qlearn's sweeps now start them at 0): the cause of that gap.

Run:  .venv/bin/python bench/sweep_overhead.py [--loads 0,2] [--repeats 5] [--cases frozenlake_k1,frozenlake_k4] [--no-record]
Rows go to bench/results/sweep_overhead.jsonl; ``scripts/bench_tables.py`` makes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record  # bench/ is on the path when run as a script

CASES = {
    "frozenlake_k1": ("FrozenLake-v1", "dqn", 1, 10_000),
    "frozenlake_k4": ("FrozenLake-v1", "dqn", 4, 20_000),
    "frozenlake_k4_long": ("FrozenLake-v1", "dqn", 4, 80_000),  # ~30 s of training: start-up transients matter less
}
ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
RECIPE = "course"
"""Both arms run FrozenLake's one-env recipe: the shape every row before 65076ab ran (its defaults then)."""


def qlearn(*args: str, nice: int = 0) -> tuple[float, str]:
    t = time.perf_counter()
    prefix = ["nice", "-n", str(nice)] if nice else []
    proc = subprocess.run([*prefix, sys.executable, "-m", "qlearn", *args], capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"qlearn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def direct(env: str, agent: str, k: int, steps: int, out: Path, nice: int = 0) -> dict:
    wall, stdout = qlearn("train", env, "--agent", agent, "--recipe", RECIPE, "--seeds", str(k), "--steps", str(steps),
                          "--out", str(out), "--no-progress", "--json", nice=nice)
    agg = json.loads(stdout)["aggregate"]
    return {"sps": agg["steps_per_agent"] / agg["wall_time"], "train_wall": agg["wall_time"], "command_s": wall}


def trial(env: str, agent: str, k: int, steps: int, out: Path, cpus: int = 1) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "one.yaml"
    spec.write_text(f"env: {env}\nagent: {agent}\nrecipe: {RECIPE}\nseeds: {k}\nsteps: {steps}\ncpus_per_trial: {cpus}\n")
    wall, stdout = qlearn("sweep", str(spec), "--out", str(out), "--num-cpus", "2", "--no-progress", "--json")
    summary = json.loads(stdout)
    (row,) = summary["trials"]
    return {"sps": row["sps"], "train_wall": steps / row["sps"], "command_s": wall, **summary["timing"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="frozenlake_k1,frozenlake_k4")
    ap.add_argument("--loads", default="0,2", help="busy-loop processes beside the arms, e.g. 0,2")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved (direct, trial) pairs per case and load")
    record.add_arguments(ap)
    args = ap.parse_args()
    write = record.recorder("sweep_overhead", args)
    stamp = record.stamp()
    run = stamp["date"]  # the rows of one script run: the table takes its pairs together
    print(f"stamp: {json.dumps(stamp)}", flush=True)
    for load in (int(x) for x in args.loads.split(",")):
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
        try:
            for name in args.cases.split(","):
                env, agent, k, steps = CASES[name]
                for rep in range(args.repeats):
                    with tempfile.TemporaryDirectory() as tmp:
                        d = direct(env, agent, k, steps, Path(tmp) / "direct")
                        t = trial(env, agent, k, steps, Path(tmp) / "sweep")
                        arms = [("direct", d), ("trial", t)]
                        if load and k == 1 and rep == 0:  # the old gap's cause: Ray's workers run at niceness 15
                            arms.append(("direct at niceness 15", direct(env, agent, k, steps, Path(tmp) / "d15",
                                                                         nice=15)))
                    write([{"case": name, "env": env, "agent": agent, "seeds": k, "steps": steps, "load": load,
                            "arm": arm, "run": run, "rep": rep, "repeats": args.repeats, **m} for arm, m in arms])
                    print(f"{name} load {load} pair {rep + 1}/{args.repeats}: direct {d['sps']:.0f} steps/s "
                          f"({d['command_s']:.1f} s command), trial {t['sps']:.0f} steps/s ({t['command_s']:.1f} s "
                          f"command; Ray start {t['ray_start_s']} s, shutdown {t['ray_stop_s']} s): trial/direct "
                          f"{t['sps'] / d['sps']:.2f}", flush=True)
        finally:
            for b in burners:
                b.kill()
    record.show("sweep_overhead", args=args)


if __name__ == "__main__":
    main()
