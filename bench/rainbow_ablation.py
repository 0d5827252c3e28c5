"""The Rainbow recipe against the DQN preset, and Rainbow with each of its six parts switched off in turn.

Per env (CartPole-v1 at 50k env steps, MountainCar-v0 at 120k: the presets' budgets), each configuration
trains 5 seeds in lockstep in one process (``qlearn.run``, as ``qlearn train ENV --seeds 5``):

- ``dqn``: the env's DQN preset; ``rainbow``: ``--recipe rainbow`` (``qlearn presets ENV`` describes it);
- ``rainbow -<part>``: the recipe with one part off: ``distributional=none`` (plain Q-values), ``noisy=false``
  (epsilon-greedy with the preset's schedule), ``dueling=false``, ``double=false``, ``n_step=1``,
  ``prioritized=false``.

Every evaluation the trainer makes (the preset's ``eval_every``, greedy episodes from fresh seeds) is kept per
seed, so the learning curve is the IQM over seeds at each evaluation with a 95% bootstrap interval (resampling
seeds). Rows go to ``bench/results/rainbow_ablation.jsonl`` as each configuration finishes; the figures
``docs/img/rainbow_ablation_<env>.png`` are drawn from the newest rows (``--plot`` redraws them alone).

    python bench/rainbow_ablation.py [--envs CartPole-v1,MountainCar-v0] [--configs dqn,rainbow,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import append, read  # noqa: E402

import qlearn  # noqa: E402
from qlearn.stats import bootstrap_ci, iqm  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402

ABLATIONS = {
    "rainbow -distributional": ["distributional=none"],
    "rainbow -noisy": ["noisy=false"],
    "rainbow -dueling": ["dueling=false"],
    "rainbow -double": ["double=false"],
    "rainbow -n_step": ["n_step=1"],
    "rainbow -prioritized": ["prioritized=false"],
}
CONFIGS = ["dqn", "rainbow", *ABLATIONS]
FIGURES = Path(__file__).resolve().parent.parent / "docs" / "img"


def curve(scores: np.ndarray) -> dict:
    """IQM over seeds per evaluation ``scores[E, K]``, with 95% bootstrap intervals."""
    cis = [bootstrap_ci(row, iqm, n_boot=2_000, seed=0) for row in scores]
    return {"iqm": [iqm(row) for row in scores], "lo": [c[0] for c in cis], "hi": [c[1] for c in cis]}


def run_config(env_id: str, name: str, seeds: list[int], out: str, steps: int | None = None) -> dict:
    recipe = None if name == "dqn" else "rainbow"
    sets = ABLATIONS.get(name, [])
    spec = qlearn.RunSpec.build(env_id, "dqn", seeds=seeds, lockstep=True, recipe=recipe, sets=sets, steps=steps)
    t = time.perf_counter()
    res = qlearn.run(spec, out=out, progress=False, command=" ".join(sys.argv))
    wall = time.perf_counter() - t
    scores = np.array([np.asarray(s, float) for s in res.eval_scores])  # [E, K]
    final = np.asarray(res.final_scores, float)
    return {
        "env": env_id,
        "config": name,
        "recipe": recipe,
        "sets": sets,
        "seeds": seeds,
        "steps": res.steps,
        "eval_steps": [int(x) for x in res.eval_steps],
        "eval_scores": scores.tolist(),
        **curve(scores),
        "final_scores": final.tolist(),
        "final_iqm": iqm(final),
        "final_iqm_ci95": list(bootstrap_ci(final, iqm, n_boot=2_000, seed=0)),
        "eval_episodes": spec.train.eval_episodes,
        "wall_s": wall,
        "diverged": res.diverged,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.agent_config.__dict__.items()},
    }


def newest_rows(rows: list[dict]) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        out[(r["env"], r["config"])] = r
    return out


def plot(rows: list[dict]) -> list[Path]:
    """One figure per env: each configuration's IQM curve with its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, list[dict]] = {}
    for (env, _), r in newest_rows(rows).items():
        by_env.setdefault(env, []).append(r)
    written = []
    for env, got in by_env.items():
        fig, ax = plt.subplots(figsize=(8, 5))
        for r in sorted(got, key=lambda r: CONFIGS.index(r["config"]) if r["config"] in CONFIGS else 99):
            style = dict(lw=2.5) if r["config"] in ("dqn", "rainbow") else dict(lw=1.2, ls="--")
            line = ax.plot(r["eval_steps"], r["iqm"], label=r["config"], **style)[0]
            ax.fill_between(r["eval_steps"], r["lo"], r["hi"], color=line.get_color(), alpha=0.12)
        ax.set(
            xlabel="env steps per seed",
            ylabel=f"greedy return, IQM over {len(got[0]['seeds'])} seeds (95% CI)",
            title=f"{env}: Rainbow, its ablations and the DQN preset",
        )
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        path = FIGURES / f"rainbow_ablation_{env.replace('/', '-')}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", default="CartPole-v1,MountainCar-v0")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--out", default="runs/bench_rainbow")
    p.add_argument("--steps", type=int, help="env steps per seed (default: the preset's)")
    p.add_argument("--no-record", action="store_true", help="print, do not append rows or draw figures")
    p.add_argument("--plot", action="store_true", help="only redraw the figures from the recorded rows")
    args = p.parse_args()
    configure_threads(1)
    if not args.plot:
        seeds = [int(s) for s in args.seeds.split(",")]
        for env_id in args.envs.split(","):
            for name in args.configs.split(","):
                row = run_config(env_id, name, seeds, args.out, args.steps)
                print(
                    json.dumps({k: row[k] for k in ("env", "config", "final_iqm", "final_iqm_ci95", "wall_s")}),
                    flush=True,
                )
                if not args.no_record:
                    append("rainbow_ablation", [row])
    if args.no_record:
        return
    for path in plot(read("rainbow_ablation")):
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
