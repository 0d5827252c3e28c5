"""``qlearn render RUN_DIR``: greedy episodes of a run's agent as a GIF or MP4, or shown in a window
(``--human``)."""

from __future__ import annotations

import argparse
from typing import Any

from qlearn.cli.common import emit_json, offscreen
from qlearn.errors import QlearnError
from qlearn.evaluation import evaluate
from qlearn.render import can_show_window, play_frames, write_animation
from qlearn.runs import read_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("render", help="animate greedy episodes of a run (GIF, or a window with --human)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=3, help="greedy episodes (default: 3)")
    p.add_argument("--out", help="GIF or MP4 file (default: RUN_DIR/episodes.gif)")
    p.add_argument("--fps", type=int, default=0, help="frames per second (default: 6 for grid worlds, 30 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--human", action="store_true", help="show the episodes in a window instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn render``."""
    if args.episodes < 1:
        raise QlearnError(f"--episodes must be >= 1, got {args.episodes}")
    if args.fps < 0:
        raise QlearnError(f"--fps must be a positive number of frames per second, got {args.fps}")
    run_info = read_run(args.run_dir)
    if args.human:
        if not can_show_window():
            raise QlearnError(
                "--human needs a display (none here: $DISPLAY is not set); write a GIF instead (drop --human)"
            )
        env = run_info.make_env(render_mode="human")
        agent = run_info.load_agent(env)
        res = evaluate(agent, env, args.episodes, seed=args.seed)
        print(f"{args.episodes} episodes shown, mean return {res.mean_return:.3f}")
        return 0
    offscreen()
    env = run_info.make_env(render_mode="rgb_array")
    agent = run_info.load_agent(env)
    grid = hasattr(env.unwrapped, "P")  # a toy-text world: every step is a frame, shown slowly
    frames, episodes = play_frames(agent, env, args.episodes, seed=args.seed, stride=1 if grid else 2)
    out = write_animation(frames, args.out or run_info.path / "episodes.gif", fps=args.fps or (6 if grid else 30))
    if args.json:
        emit_json({"animation": str(out), "frames": len(frames), "episodes": episodes})
    else:
        for e in episodes:
            print(f"episode {e['episode']}: return {e['return']:g} in {e['steps']} steps")
        print(out)
    return 0
