"""``qlearn report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page (plots, evaluation, animation) for
one run, or several side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.cli.common import emit_json, exact_score, offscreen
from qlearn.envs.tabular import TabularMDP, value_iteration
from qlearn.errors import QlearnError
from qlearn.evaluation import evaluate
from qlearn.reference import compare_tables
from qlearn.render import play_frames, write_gif
from qlearn.report import comparison_table, page, run_section
from qlearn.runs import read_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page for one or more runs")
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html for one run, report.html for several)")
    p.add_argument("--episodes", type=int, default=100, help="greedy evaluation episodes per run (default: 100)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def value_error(agent: Any, env: Any) -> dict[str, Any]:
    """The agent's Q-table against Q* (value iteration at its gamma) over the states it can be in and act:
    largest and mean |Q - Q*| and how many greedy actions are optimal."""
    mdp = TabularMDP.from_env(env)
    q_star, _ = value_iteration(mdp, float(agent.config.gamma))
    return compare_tables(np.asarray(agent.q_table()), q_star, mdp.reachable() & ~mdp.terminal)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn report``."""
    from qlearn.figures import write_plots  # matplotlib: imported only when plots are drawn

    offscreen()
    runs = [read_run(d) for d in args.run_dirs]  # every folder checked before any work
    sections: list[str] = []
    evaluations: list[dict[str, Any] | None] = []
    for run_info in runs:
        notes = [f"note: {s}" for s in write_plots(run_info)[1]]
        try:
            env = run_info.make_env()
            agent = run_info.load_agent(env)
        except QlearnError as exc:
            evaluations.append(None)
            sections.append(run_section(run_info, None, notes + [f"no evaluation: {exc}"]))
            continue
        ev = evaluate(agent, env, args.episodes, seed=12345).to_dict()
        exact = exact_score(agent, env)
        if exact is not None:
            ev["exact_success_probability"] = exact
            ev["value_error"] = value_error(agent, env)
        evaluations.append(ev)
        if not (run_info.path / "episodes.gif").is_file():
            grid = hasattr(env.unwrapped, "P")
            try:
                renv = run_info.make_env(render_mode="rgb_array")
                frames, _ = play_frames(agent, renv, 2, stride=1 if grid else 2)
                write_gif(frames, run_info.path / "episodes.gif", fps=6 if grid else 30)
            except (QlearnError, ImportError) as exc:  # rendering is a nicety: the page still works
                notes.append(f"no animation: {exc}")
        sections.append(run_section(run_info, ev, notes))
    out = Path(args.out) if args.out else (runs[0].path / "report.html" if len(runs) == 1 else Path("report.html"))
    title = f"qlearn report: {runs[0].env_id}" + (f" ({len(runs)} runs)" if len(runs) > 1 else "")
    out.write_text(page(title, sections, comparison_table(runs, evaluations) if len(runs) > 1 else None))
    if args.json:
        emit_json({"report": str(out), "runs": [str(r.path) for r in runs], "evaluations": evaluations})
    else:
        print(out)
    return 0
