"""Handlers of the ``qlearn`` subcommands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import QlearnError


def _emit_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, default=_jsonable))


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def _note(msg: str) -> None:
    print(msg, file=sys.stderr)


def env_kwargs_from(args: Any) -> dict[str, Any]:
    """gymnasium.make keywords from --map-name/--map/--slippery/--env-arg."""
    kwargs: dict[str, Any] = {}
    for item in args.env_arg:
        if "=" not in item:
            raise QlearnError(f"bad --env-arg {item!r}: expected KEY=VALUE, e.g. --env-arg is_slippery=false")
        key, raw = item.split("=", 1)
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    if args.map_name:
        kwargs["map_name"] = args.map_name
    if args.desc:
        rows = [r.strip() for r in args.desc.replace(";", ",").split(",") if r.strip()]
        if len({len(r) for r in rows}) != 1 or any(set(r) - set("SFHG") for r in rows):
            raise QlearnError(f"bad --map {args.desc!r}: rows of equal length using S, F, H, G, e.g. SFFF,FHFH,FFFH,HFFG")
        if sum(r.count("S") for r in rows) != 1 or sum(r.count("G") for r in rows) < 1:
            raise QlearnError(f"bad --map {args.desc!r}: it needs exactly one S (start) and at least one G (goal)")
        kwargs["desc"] = rows
    if args.slippery is not None:
        kwargs["is_slippery"] = args.slippery
    return kwargs


# ----------------------------------------------------------------------------------------------- train
def cmd_train(args: Any) -> int:
    from qlearn.cli.train import run_training

    return run_training(args)


# -------------------------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: Any) -> int:
    from qlearn.evaluation import evaluate
    from qlearn.runs import read_run
    from qlearn.training import configure_threads

    configure_threads()
    if args.episodes < 1:
        raise QlearnError(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise QlearnError(f"--max-steps must be >= 1, got {args.max_steps}")
    run = read_run(args.run_dir)
    env = run.make_env()
    agent = run.load_agent(env)
    res = evaluate(agent, env, args.episodes, args.max_steps, seed=args.seed)
    out = res.to_dict()
    exact = _exact_success(agent, env)
    exact_name = "exact_success_probability" if run.env_id.startswith("FrozenLake") else "exact_expected_return"
    if exact is not None:
        out[exact_name] = exact
    if args.json:
        _emit_json(out)
        return 0
    print(f"{run.env_id}  {agent.kind} agent  ({run.path})")
    print(f"  episodes      {res.episodes} greedy, mean length {res.mean_length:.1f}")
    print(f"  mean return   {res.mean_return:.3f} ± {res.std_return:.3f} (std)   "
          f"95% CI [{res.ci95[0]:.3f}, {res.ci95[1]:.3f}]")
    print(f"  success rate  {res.success_rate:.3f}   95% CI [{res.success_ci95[0]:.3f}, {res.success_ci95[1]:.3f}] (Wilson)")
    if exact is not None:
        what = "success probability" if exact_name == "exact_success_probability" else "expected return"
        print(f"  exact {what} of the greedy policy within the time limit (from the model): {exact:.4f}")
    return 0


def _exact_success(agent: Any, env: Any) -> float | None:
    from qlearn.envs.tabular import TabularMDP, success_probability

    if not hasattr(env.unwrapped, "P"):
        return None
    return success_probability(TabularMDP.from_env(env), agent.q_table(0))


# ---------------------------------------------------------------------------------------------- qtable
def cmd_qtable(args: Any) -> int:
    from qlearn.envs.tabular import TabularMDP, policy_grid
    from qlearn.runs import read_run

    run = read_run(args.run_dir)
    env = run.make_env()
    agent = run.load_agent(env)
    q = agent.q_table(0)
    gamma = agent.config.gamma
    from qlearn.reference import compare_tables, load_reference, optimal_under

    ref, ref_name = load_reference(args.compare, env, gamma)
    mdp = TabularMDP.from_env(env) if hasattr(env.unwrapped, "P") else None
    mask = ~mdp.terminal if mdp is not None else np.ones(len(q), dtype=bool)
    cmp = compare_tables(q, ref, mask)
    if args.json:
        _emit_json({"q_table": q.tolist(), "reference": ref.tolist(), "reference_name": ref_name, **cmp})
        return 0
    names = ["left", "down", "right", "up"] if q.shape[1] == 4 else [f"a{i}" for i in range(q.shape[1])]
    head = " ".join(f"{n:>6}" for n in names)
    print(f"{run.env_id}  {agent.kind} agent  vs  {ref_name}")
    print(f"{'state':>5} | {head} | {head} | agree")
    agree = optimal_under(q, ref)
    for s in range(len(q)):
        mark = "" if mask[s] else "  (terminal)"
        ok = "yes" if agree[s] else "NO"
        print(f"{s:>5} | {' '.join(f'{v:6.2f}' for v in q[s])} | {' '.join(f'{v:6.2f}' for v in ref[s])} | "
              f"{ok if mask[s] else '-'}{mark}")
    print(f"non-terminal states: max |diff| {cmp['max_abs_diff']:.3f}, mean |diff| {cmp['mean_abs_diff']:.3f}, "
          f"greedy action is optimal under the reference on {cmp['greedy_agree']}/{cmp['states_compared']}")
    if mdp is not None and mdp.grid is not None:
        print("learned policy:            reference policy:")
        for a, b in zip(policy_grid(mdp, q), policy_grid(mdp, ref)):
            print(f"  {a:<24}  {b}")
    return 0


# --------------------------------------------------------------------------------------------- optimal
def cmd_optimal(args: Any) -> int:
    from qlearn.envs import make_env
    from qlearn.envs.tabular import TabularMDP, greedy_policy, policy_grid, success_probability, value_iteration

    env = make_env(args.env_id, **env_kwargs_from(args))
    mdp = TabularMDP.from_env(env)
    q, v = value_iteration(mdp, args.gamma)
    p = success_probability(mdp, q)
    if args.json:
        _emit_json({"env_id": args.env_id, "gamma": args.gamma, "q_table": q.tolist(), "v": v.tolist(),
                    "policy": greedy_policy(q).tolist(), "success_probability": p, "horizon": mdp.horizon})
        return 0
    print(f"{args.env_id}: optimal values by value iteration (gamma={args.gamma:g})")
    print(f"{'state':>5} | {'left':>6} {'down':>6} {'right':>6} {'up':>6} | {'V*':>6}")
    for s in range(mdp.n_states):
        print(f"{s:>5} | {' '.join(f'{x:6.3f}' for x in q[s])} | {v[s]:6.3f}")
    if mdp.grid is not None:
        print("greedy policy of Q*:")
        for line in policy_grid(mdp, q):
            print("  " + line)
    what = "success probability" if args.env_id.startswith("FrozenLake") else "expected return"
    limit = f"the {mdp.horizon}-step limit" if mdp.horizon else "1,000 steps (the env has no time limit)"
    print(f"exact {what} of this policy within {limit}: {p:.4f}")
    return 0


# ------------------------------------------------------------------------------------------------ play
def cmd_play(args: Any) -> int:
    from qlearn.cli.play import play

    return play(args, env_kwargs_from(args))


# ------------------------------------------------------------------------------------------------ plot
def cmd_plot(args: Any) -> int:
    from pathlib import Path

    from qlearn.cli.plots import write_plots, write_seed_plots
    from qlearn.runs import read_run

    if (Path(args.run_dir) / "aggregate.json").is_file():  # a --seeds folder: the band, then each seed
        written, skipped = write_seed_plots(Path(args.run_dir))
    else:
        written, skipped = write_plots(read_run(args.run_dir))
    if args.json:
        _emit_json({"plots": [str(p) for p in written], "skipped": skipped})
        return 0
    for p in written:
        print(p)
    for s in skipped:
        _note(f"qlearn: note: {s}")
    return 0


# ---------------------------------------------------------------------------------------------- render
def cmd_render(args: Any) -> int:
    from qlearn.render import can_show_window, play_frames, write_animation
    from qlearn.runs import read_run

    if args.episodes < 1:
        raise QlearnError(f"--episodes must be >= 1, got {args.episodes}")
    if args.fps < 0:
        raise QlearnError(f"--fps must be a positive number of frames per second, got {args.fps}")
    run = read_run(args.run_dir)
    if args.human:
        if not can_show_window():
            raise QlearnError("--human needs a display (none here: $DISPLAY is not set); write a GIF instead "
                              "(drop --human)")
        env = run.make_env(render_mode="human")
        agent = run.load_agent(env)
        from qlearn.evaluation import evaluate

        res = evaluate(agent, env, args.episodes, seed=args.seed)
        print(f"{args.episodes} episodes shown, mean return {res.mean_return:.3f}")
        return 0
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering: no window, no display needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = run.make_env(render_mode="rgb_array")
    agent = run.load_agent(env)
    grid = hasattr(env.unwrapped, "P")
    frames, episodes = play_frames(agent, env, args.episodes, seed=args.seed, stride=1 if grid else 2)
    out = write_animation(frames, args.out or run.path / "episodes.gif", fps=args.fps or (6 if grid else 30))
    if args.json:
        _emit_json({"animation": str(out), "frames": len(frames), "episodes": episodes})
    else:
        for e in episodes:
            print(f"episode {e['episode']}: return {e['return']:g} in {e['steps']} steps")
        print(out)
    return 0


# ---------------------------------------------------------------------------------------------- report
def cmd_report(args: Any) -> int:
    import os

    from qlearn.cli.plots import write_plots
    from qlearn.evaluation import evaluate
    from qlearn.render import play_frames, write_gif
    from qlearn.report import comparison_table, page, run_section
    from qlearn.runs import read_run

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    runs = [read_run(d) for d in args.run_dirs]  # every folder checked before any work
    sections, evaluations = [], []
    for run in runs:
        notes = [f"note: {s}" for s in write_plots(run)[1]]
        try:
            env = run.make_env()
            agent = run.load_agent(env)
        except QlearnError as exc:
            evaluations.append(None)
            sections.append(run_section(run, None, notes + [f"no evaluation: {exc}"]))
            continue
        ev = evaluate(agent, env, args.episodes, seed=12345).to_dict()
        exact = _exact_success(agent, env)
        if exact is not None:
            ev["exact_success_probability"] = exact
        evaluations.append(ev)
        if not (run.path / "episodes.gif").is_file():
            try:
                renv = run.make_env(render_mode="rgb_array")
                frames, _ = play_frames(agent, renv, 2, stride=1 if hasattr(env.unwrapped, "P") else 2)
                write_gif(frames, run.path / "episodes.gif", fps=6 if hasattr(env.unwrapped, "P") else 30)
            except (QlearnError, ImportError) as exc:  # rendering is a nicety: the page still works
                notes.append(f"no animation: {exc}")
        sections.append(run_section(run, ev, notes))
    out = Path(args.out) if args.out else (runs[0].path / "report.html" if len(runs) == 1 else Path("report.html"))
    title = f"qlearn report: {runs[0].env_id}" + (f" ({len(runs)} runs)" if len(runs) > 1 else "")
    out.write_text(page(title, sections, comparison_table(runs, evaluations) if len(runs) > 1 else None))
    if args.json:
        _emit_json({"report": str(out), "runs": [str(r.path) for r in runs], "evaluations": evaluations})
    else:
        print(out)
    return 0


# ----------------------------------------------------------------------------------------------- sweep
def cmd_sweep(args: Any) -> int:
    from qlearn.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep_file)
    summary = run_sweep(sweep, out=args.out, address=args.address, num_cpus=args.num_cpus,
                        progress=not args.no_progress)
    if args.json:
        _emit_json(summary)
        return 0

    print((Path(summary["folder"]) / "summary.md").read_text())
    print(f"results: {summary['folder']}")
    return 0


# --------------------------------------------------------------------------------------------- presets
def cmd_presets(args: Any) -> int:
    from qlearn.errors import did_you_mean
    from qlearn.presets import all_presets

    presets = all_presets()
    if args.env_id:
        if args.env_id not in presets:
            raise QlearnError(f"no preset for {args.env_id!r}{did_you_mean(args.env_id, presets)}; "
                              f"presets exist for: {', '.join(presets)} (others use generic defaults)")
        presets = {args.env_id: presets[args.env_id]}
    if args.json:
        _emit_json(presets)
        return 0
    for env_id, entry in presets.items():
        print(env_id + (f"  ({entry['_source']})" if "_source" in entry else ""))
        for agent in ("dqn", "tabular"):
            if agent in entry:
                settings = {**entry[agent], **entry.get("train", {}).get(agent, {})}
                print(f"  {agent:8} " + " ".join(f"{k}={v}" for k, v in settings.items()))
        for name, recipe in entry.get("recipes", {}).items():
            print(f"  recipe {name} (--recipe {name}): {recipe.get('_doc', '')}")
            for agent in ("dqn", "tabular"):
                if agent in recipe:
                    settings = {**recipe[agent], **recipe.get("train", {}).get(agent, {})}
                    envs = f"envs={recipe['envs']} " if "envs" in recipe else ""
                    print(f"    {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
    return 0
