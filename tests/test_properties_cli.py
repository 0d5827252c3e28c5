"""Property-based tests (Hypothesis) of the command line: random argument lists never give a traceback.

``qlearn.cli.main.main(argv)`` runs in this process (a subprocess per example would be far too slow)
with stdout and stderr replaced by buffers that encode like a terminal's: stdout strictly as UTF-8,
stderr with backslash escapes (Python's own setting for stderr). Whatever the arguments, ``main`` must
return an exit status or raise SystemExit with 0 (help, version) or 2 (a usage error), and a status of 2
comes with one ``qlearn: error: ...`` line last on stderr. Nothing else may escape.

Lists that would start long work are kept short: ``train`` always gets ``--steps 20 --no-progress
--no-plots --out TMP`` appended (argparse keeps the last value) and at most 3 seeds x 4 envs; ``play``
(reads the keyboard) is left out. Numbers stay small, so no setting asks for a huge table or buffer
(that case has its own test below). Every example runs in a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from qlearn.cli.main import build_parser, main
from qlearn.config import DQNConfig, TabularConfig, TrainConfig, field_names

SUBCOMMANDS = ["train", "evaluate", "qtable", "optimal", "play", "plot", "render", "report", "sweep", "presets"]
FLAGS = ["--steps", "--set", "--seed", "--seeds", "--envs", "--episodes", "--json", "--agent", "--map", "--map-name",
         "--compare", "--slippery", "--no-slippery", "--env-arg", "--resume", "--config", "--out", "--gamma",
         "--max-steps", "--run", "--fps", "--human", "--device", "--pretrain", "--num-cpus", "--address",
         "--no-progress", "--no-plots", "--help", "-h", "--version", "--", "-", "--st", "--no-s", "--sets", "-x"]
ENVS = ["FrozenLake-v1", "FrozenLake8x8-v1", "CartPole-v1", "CliffWalking-v1", "MountainCar-v0",
        "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0", "Blackjack-v1", "phys2d/CartPole-v1",
        "tabular/CliffWalking-v0", "Taxi-v3", "FrozenLake-v9", "frozenlake", "no_such_module_q:Env-v0", "json:Nope-v0",
        "ALE/Pong-v5"]
WORDS = ["dqn", "tabular", "optimal", "course", "4x4", "8x8", "5x5", "SFFF,FHFH,FFFH,HFFG", "SF,FG", "SG", "SFX,FFG",
         "cpu", "auto", "cuda", "cuda:7", "none", "true", "false", "runs", ".", "..", "/", "x.gif", "x.mp4",
         "sweep.yaml", "table.csv", "is_slippery=false", "map_name=8x8", "map_name=5x5", "desc=[1]", "foo=bar",
         "max_episode_steps=0", "max_episode_steps=5", "success_rate=0.5", "reward_schedule=1"]
NUMBERS = st.integers(-3, 40).map(str) | st.sampled_from(
    ["0", "-1", "2.5", "1e400", "nan", "inf", "-inf", "1e-3", "0.5", "007", "1_0", "0x10", "1e2", "٣", " 5 "])
CONFIG_KEYS = sorted(set(field_names(DQNConfig)) | set(field_names(TabularConfig)) | set(field_names(TrainConfig)))
# Text a shell can pass: no NUL (argv cannot hold one); lone surrogates stand for undecodable bytes.
# A newline inside an argument is tested on its own (test_newline_in_an_argument_keeps_the_error_on_one_line).
TEXT = st.text(st.characters(blacklist_characters="\x00:\n", blacklist_categories=("Cs",)), max_size=10) | \
    st.sampled_from(["\udcff", "a\udc80b", "ü", "日本", "--", "-", "=", "==", "a=b=c", " "])
SETS = st.tuples(st.sampled_from(CONFIG_KEYS) | TEXT, NUMBERS | TEXT | st.sampled_from(WORDS)).map("=".join)

TOKEN = st.one_of(st.sampled_from(SUBCOMMANDS), st.sampled_from(FLAGS), st.sampled_from(ENVS), st.sampled_from(WORDS),
                  NUMBERS, SETS, TEXT)

GOOD_SETS = ["lr=0.001", "hidden=8,8", "hidden=4", "n_step=3", "prioritized=true", "dueling=yes", "double=false",
             "learning_starts=0", "batch_size=8", "buffer_size=64", "train_freq=1", "loss=huber", "encoding=scalar",
             "bins=5", "bin_low=-1,-1,-1,-1", "bin_high=1,1,1,1", "eval_every=5", "keep_best=false",
             "checkpoint_every=5", "tau=0.5", "lr_end=none", "scale_obs=false", "alpha=0.5", "gamma=0.9"]
REAL_ENVS = st.sampled_from(["FrozenLake-v1", "FrozenLake8x8-v1", "CartPole-v1", "CliffWalking-v1",
                             "MountainCar-v0", "Acrobot-v1"])
SMALL_INT = st.one_of(st.integers(-1, 4).map(str), st.integers(0, 4).map(str), NUMBERS)
VALUES = {
    "--set": st.one_of(st.sampled_from(GOOD_SETS), st.sampled_from(GOOD_SETS), SETS),
    "--env-arg": st.sampled_from(WORDS) | SETS,
    "--agent": st.sampled_from(["dqn", "tabular"]) | TEXT, "--map": st.sampled_from(WORDS) | TEXT,
    "--map-name": st.sampled_from(["4x4", "8x8", "5x5"]) | TEXT,
    "--compare": st.sampled_from(["optimal", "course", "table.csv"]) | TEXT,
    "--device": st.sampled_from(["cpu", "auto", "cuda", "cuda:7", "tpu"]) | TEXT,
    "--pretrain": st.sampled_from(["optimal", "course", "table.csv"]) | TEXT,
    "--seeds": SMALL_INT, "--envs": SMALL_INT, "--gamma": NUMBERS | st.sampled_from(["0.9", "1", "0"]),
}
INTS = st.one_of(st.integers(-2, 12).map(str), st.integers(1, 12).map(str), NUMBERS)
for _opt in ("--steps", "--seed", "--episodes", "--max-steps", "--fps", "--num-cpus"):
    VALUES[_opt] = INTS
GENERIC = NUMBERS | st.sampled_from(WORDS) | st.sampled_from(ENVS) | TEXT


def _grammar() -> dict[str, tuple[list[tuple[str, bool]], bool]]:
    """Per subcommand: its options (and whether each takes a value) and whether it takes positionals."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, parser in sub.choices.items():
        opts = [(s, a.nargs != 0) for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")]
        out[name] = (opts, any(not a.option_strings for a in parser._actions))
    return out


GRAMMAR = _grammar()
# A well-formed train command line: real options with values that make sense, so runs actually happen
GOOD_TRAIN = [("--agent", st.sampled_from(["dqn", "tabular"])), ("--set", st.sampled_from(GOOD_SETS)),
              ("--set", st.sampled_from(GOOD_SETS)), ("--seed", st.integers(0, 5).map(str)),
              ("--seeds", st.integers(1, 3).map(str)), ("--envs", st.integers(1, 4).map(str)), ("--json", None),
              ("--no-slippery", None), ("--slippery", None), ("--map-name", st.sampled_from(["4x4", "8x8"])),
              ("--map", st.sampled_from(["SFFF,FHFH,FFFH,HFFG", "SF,FG", "SG", "SHG"])), ("--device", st.just("cpu")),
              ("--env-arg", st.sampled_from(["is_slippery=false", "max_episode_steps=5", "success_rate=0.5"])),
              ("--pretrain", st.sampled_from(["optimal", "course"]))]


@st.composite
def argv_lists(draw):
    """Mostly a subcommand with its own options and values of every kind; sometimes noise anywhere."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.lists(TOKEN, max_size=8))
    # train is where most can go wrong, so it comes up about a third of the time; play reads the keyboard
    cmd = draw(st.sampled_from(["train"] * 4 + sorted(set(GRAMMAR) - {"play"})))
    opts, positional = GRAMMAR[cmd]
    argv = [cmd]
    if cmd == "train" and draw(st.booleans()):
        argv.append(draw(REAL_ENVS))
        for _ in range(draw(st.integers(0, 5))):
            opt, values = draw(st.sampled_from(GOOD_TRAIN))
            argv += [opt] if values is None else [opt, draw(values)]
        return argv
    if positional and draw(st.integers(0, 9)):
        envs = st.one_of(REAL_ENVS, REAL_ENVS, st.sampled_from(ENVS))
        argv.append(draw(envs if cmd in ("train", "optimal", "presets", "play") else GENERIC))
    for _ in range(draw(st.integers(0, 5))):
        opt, takes_value = draw(st.sampled_from(opts))
        argv.append(opt)
        if takes_value:
            argv.append(draw(VALUES.get(opt, GENERIC)))
    if draw(st.integers(0, 5)) == 0:  # a stray token somewhere
        argv.insert(draw(st.integers(0, len(argv))), draw(TOKEN))
    return argv


def parse_quietly(argv: list[str]):
    """The parsed namespace, or None where argparse exits (usage error, --help, --version)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return build_parser().parse_args(argv)
        except SystemExit:
            return None


def terminal_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    return out, err


def read(stream: io.TextIOWrapper) -> str:
    return stream.buffer.getvalue().decode("utf-8", errors="replace")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in a fresh temporary working folder: (exit status, stdout, stderr)."""
    out, err = terminal_streams()
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="qlearn-cli-") as tmp:
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
        finally:
            os.chdir(old)
    return code, read(out), read(err)


@pytest.fixture(autouse=True, scope="module")
def _quiet_environment():
    saved = dict(os.environ)
    os.environ.update({"MPLBACKEND": "Agg", "QLEARN_THREADS": "1", "SDL_VIDEODRIVER": "dummy",
                       "SDL_AUDIODRIVER": "dummy"})
    for key in ("DISPLAY", "WAYLAND_DISPLAY"):
        os.environ.pop(key, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def check_outcome(argv: list[str], code, out: str, err: str) -> None:
    assert "Traceback" not in err, err
    assert isinstance(code, int) and code in (0, 2), (argv, code, err)
    if code == 2:
        lines = [ln for ln in err.split("\n") if ln.strip()]
        assert lines, (argv, "exit 2 without a message")
        assert lines[-1].startswith("qlearn: error:") or lines[-1].startswith("usage:"), (argv, lines[-1])


BOX_ENVS = {"CartPole-v1", "MountainCar-v0", "Acrobot-v1"}


def known_bug(ns) -> bool:
    """Argument lists that hit a known, open bug (none at the moment: the ones found are fixed)."""
    return False


def safe_train_argv(argv: list[str], out_dir: str) -> list[str]:
    return [*argv, "--steps", "20", "--no-progress", "--no-plots", "--out", out_dir, "--set", "eval_episodes=2"]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(argv=argv_lists())
def test_random_command_lines_exit_0_or_2_with_one_error_line(argv):
    ns = parse_quietly(argv)
    if ns is not None:
        assume(ns.command != "play")  # it reads keys from the terminal
        if ns.command == "train":
            with tempfile.TemporaryDirectory(prefix="qlearn-runs-") as runs:
                argv = safe_train_argv(argv, runs)
                ns = parse_quietly(argv)
                if ns is not None:
                    assert ns.steps == 20 and ns.out == runs and ns.no_progress
                    assume((ns.seeds or 1) <= 3 and (ns.envs or 1) <= 4)
                    assume(not known_bug(ns))
                code, out, err = run_cli(argv)
                check_outcome(argv, code, out, err)
                event(f"train: exit {code}")
                if code == 0 and ns is not None and ns.json:
                    assert Path(json.loads(out)["run_dir"]).resolve().is_relative_to(Path(runs).resolve())
            return
    code, out, err = run_cli(argv)
    check_outcome(argv, code, out, err)
    event(f"{ns.command if ns else 'no parse'}: exit {code}")
    if code == 0 and ns is not None and getattr(ns, "json", False):
        json.loads(out)  # --json means machine-readable stdout


# ------------------------------------------------------------------------------ fixed hostile command lines
@pytest.mark.parametrize("argv", [
    [], ["--json"], ["-"], ["--"], ["train"], ["train", "--steps"], ["train", "FrozenLake-v1", "--steps", "x"],
    ["evaluate"], ["evaluate", "\udcff"], ["optimal", "FrozenLake-v1", "--gamma", "nan"],
    ["optimal", "FrozenLake-v1", "--gamma", "inf"], ["optimal", "FrozenLake-v1", "--map-name", "5x5"],
    ["optimal", "FrozenLake-v1", "--env-arg", "desc=[]"], ["presets", "日本"], ["sweep", "missing.yaml"],
    ["report"], ["render", ".", "--episodes", "0"], ["train", "FrozenLake-v1", "--set", "hidden=0"],
    ["train", "FrozenLake-v1", "--set", "lr=nan"], ["train", "FrozenLake-v1", "--seeds", "-1"],
    ["train", "FrozenLake-v1", "--device", "cuda:99"], ["train", "FrozenLake-v1", "--envs", "0"],
])
def test_hostile_command_lines(argv, tmp_path):
    if argv and argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path)]
    code, out, err = run_cli(argv)
    check_outcome(argv, code, out, err)
    assert code == 2


def test_out_folder_that_is_not_utf8_is_a_one_line_error(tmp_path):
    argv = ["train", "FrozenLake-v1", "--steps", "20", "--no-progress", "--no-plots", "--out",
            str(tmp_path / "runs\udcff")]
    code, out, err = run_cli(argv)
    check_outcome(argv, code, out, err)


HUGE = [
    pytest.param(["FrozenLake-v1", "--set", "buffer_size=1e13"], id="buffer_size=1e13"),
    pytest.param(["FrozenLake-v1", "--set", "hidden=10000000,10000000"], id="hidden=1e7,1e7"),
    pytest.param(["CartPole-v1", "--agent", "tabular", "--set", "bins=100000", "--set", "bin_low=-1,-1,-1,-1",
                  "--set", "bin_high=1,1,1,1"], id="tabular-bins=1e5^4"),
]


@pytest.mark.parametrize("args", HUGE)
def test_settings_too_large_for_memory_are_one_line_errors(args, tmp_path):
    """Run in a subprocess with a 16 GiB address-space limit, so the allocation fails at once on any machine."""
    import subprocess

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30)); "
            "from qlearn.cli.main import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code, "train", *args, "--steps", "20", "--no-progress",
                           "--no-plots", "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    check_outcome(args, proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 2


# ------------------------------------------------------------------- bugs the random search found (strict xfail)
def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    code, out, err = run_cli(argv)
    check_outcome(argv, code, out, err)
    return code, out, err


def test_optimal_on_taxi_is_not_a_traceback():
    assert run_in_process(["optimal", "Taxi-v4"])[0] == 0


def test_train_tabular_on_taxi_is_not_a_traceback(tmp_path):
    assert run_in_process(["train", "Taxi-v4", "--agent", "tabular", "--steps", "20", "--no-progress",
                           "--out", str(tmp_path)])[0] == 0


@pytest.mark.parametrize("table", ["course", "optimal", "table.csv"])
def test_pretrain_on_continuous_states_is_a_one_line_error(table, tmp_path):
    assert run_in_process(["train", "CartPole-v1", "--pretrain", table, "--steps", "20", "--no-progress",
                           "--no-plots", "--out", str(tmp_path)])[0] == 2


@pytest.mark.parametrize("args", [["Acrobot-v1", "--seeds", "2"], ["Acrobot-v1", "--envs", "2"],
                                  ["CartPole-v1", "--seeds", "2", "--env-arg", "max_episode_steps=5"]],
                         ids=["acrobot-seeds", "acrobot-envs", "cartpole-env-arg"])
def test_lockstep_on_gym_vector_envs_is_not_a_traceback(args, tmp_path):
    assert run_in_process(["train", *args, "--steps", "20", "--no-progress", "--no-plots", "--out", str(tmp_path),
                           "--set", "eval_episodes=2"])[0] == 0


@pytest.mark.parametrize("argv", [["evaluate", "runs/a\nb"], ["presets", "FrozenLake-v1", "x\ny"]],
                         ids=["path", "stray"])
def test_newline_in_an_argument_keeps_the_error_on_one_line(argv):
    code, _, err = run_cli(argv)
    assert code == 2
    assert len([ln for ln in err.split("\n") if ln.strip()]) == 1, err
