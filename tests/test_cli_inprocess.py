"""Subcommands run in this process through ``qlearn.cli.main.main(argv)`` (output captured with capsys),
where a subprocess is not the point: the parsed options reach the library unchanged, and what is printed
comes from the env's info (map, action names, what the exact score means)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest

from qlearn.cli import train as cli_train
from qlearn.cli.common import EXIT_USAGE
from qlearn.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("QLEARN_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("qlearn: error:"), err
    return lines[0]


# ------------------------------------------------------------------------------------------ train
class FakeResult:
    run_dir = None
    steps, episodes, wall_time, sps = 10, 2, 0.5, 20.0
    best_score = None
    interrupted = False

    def summary(self):
        return {"run_dir": None, "steps": self.steps, "interrupted": False}


def test_run_training_passes_the_options_and_leaves_args_alone(monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(cli_train, "run_experiment", lambda *a, **kw: calls.append((a, kw)) or FakeResult())
    args = build_parser().parse_args(["train", "FrozenLake-v1", "--agent", "tabular", "--envs", "1", "--steps", "10", "--seed", "4",
                                      "--set", "lr=0.5", "--no-slippery", "--out", str(tmp_path), "--no-progress",
                                      "--no-plots", "--json"])
    before = dict(vars(args))
    assert args.func(args) == 0
    assert vars(args) == before  # nothing written back into the namespace (device, envs stay as parsed)
    (pos, kw), = calls
    assert pos == ("FrozenLake-v1", "tabular")
    assert kw["seed"] == 4 and kw["steps"] == 10 and kw["sets"] == ["lr=0.5"] and kw["out"] == str(tmp_path)
    assert kw["env_kwargs"] == {"is_slippery": False} and kw["device"] == "cpu" and kw["progress"] is False
    assert kw["recipe"] is None and kw["pretrain"] is None and kw["command"].startswith("qlearn ")
    assert json.loads(capsys.readouterr().out) == {"run_dir": None, "steps": 10, "interrupted": False}


def test_a_recipe_sets_the_envs_of_a_many_seed_run(monkeypatch, capsys):
    calls = []

    def fake_many(*a, **kw):
        calls.append(kw)
        raise SystemExit(0)  # stop before reporting: only the arguments matter here

    monkeypatch.setattr(cli_train, "run_many", fake_many)
    args = build_parser().parse_args(["train", "FrozenLake-v1", "--recipe", "batched", "--device", "cpu"])
    before = dict(vars(args))
    with pytest.raises(SystemExit):
        args.func(args)
    assert vars(args) == before and args.envs is None
    assert calls[0]["n_envs"] == 32 and list(calls[0]["seeds"]) == [0] and calls[0]["recipe"] == "batched"


def test_train_mistakes_are_one_line_errors(capsys, tmp_path):
    for argv, needle in ((["train"], "ENV_ID"), (["train", "--resume", "x", "--recipe", "batched"], "--recipe"),
                         (["train", "FrozenLake-v1", "--seeds", "0", "--out", str(tmp_path)], "--seeds"),
                         (["train", "FrozenLake-v1", "--map", "SFX", "--out", str(tmp_path)], "--map")):
        assert main(argv) == EXIT_USAGE
        assert needle in one_error_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------- optimal
def test_optimal_draws_the_policy_on_the_lake(capsys):
    assert main(["optimal", "FrozenLake-v1", "--no-slippery"]) == 0
    out = capsys.readouterr().out
    assert "state |   left   down  right     up |     V*" in out
    assert "greedy policy of Q*:\n  ↓ → ↓ ←\n  ↓ H ↓ H\n  → ↓ ↓ H\n  H → → G\n" in out
    assert "exact success probability of this policy within the 100-step limit: 1.0000" in out


@pytest.mark.parametrize("env_id, header", [
    ("CliffWalking-v1", "state |     up  right   down   left |     V*"),
    ("Taxi-v4", "state |  south  north   east   west pickup   drop |     V*"),
])
def test_optimal_names_each_envs_actions_and_draws_no_map_it_lacks(env_id, header, capsys):
    assert main(["optimal", env_id]) == 0
    out = capsys.readouterr().out
    assert header in out and "greedy policy" not in out and "exact expected return" in out


def test_a_users_grid_env_gets_its_map_drawn(capsys):
    if "UserLake-v0" not in gym.registry:
        gym.register("UserLake-v0", entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
                     kwargs={"desc": ["SFH", "FFG"], "is_slippery": False}, max_episode_steps=20)
    assert main(["optimal", "UserLake-v0"]) == 0
    out = capsys.readouterr().out
    assert "greedy policy of Q*:\n  ↓ ↓ H\n  → → G\n" in out
    assert "exact expected return" in out  # not a known family: the return is not read as a success probability


def test_optimal_json(capsys):
    assert main(["optimal", "FrozenLake-v1", "--map", "SFF,FHF,FFG", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["q_table"]) == 9 and out["horizon"] == 100 and 0 < out["success_probability"] <= 1
    assert out["expected_return"] == out["success_probability"] <= out["best_within_limit"] + 1e-12
    # Taxi's return is not a success probability: it is reported as the expected return only.
    assert main(["optimal", "Taxi-v4", "--json"]) == 0
    taxi = json.loads(capsys.readouterr().out)
    assert "success_probability" not in taxi and taxi["expected_return"] == pytest.approx(7.93)


def test_optimal_distribution_json_and_text(capsys):
    assert main(["optimal", "FrozenLake-v1", "--distribution", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    dist = data["return_distribution"]
    assert len(dist) == 16 and data["return_distribution_exact"] is True
    for s in range(16):  # each state's pairs sum to 1 and their mean is V*(s)
        assert sum(p for _, p in dist[s]) == pytest.approx(1.0)
        assert sum(r * p for r, p in dist[s]) == pytest.approx(data["v"][s], abs=1e-5)
    assert main(["optimal", "FrozenLake-v1", "--distribution"]) == 0
    out = capsys.readouterr().out
    assert "return distribution from state 0" in out and "exact" in out and "P(G = 0.0000)" in out


def test_qtable_compares_a_distributional_run_with_the_exact_distributions(capsys, tmp_path):
    assert main(["train", "FrozenLake-v1", "--set", "distributional=qr", "--set", "quantiles=8", "--steps", "2048",
                 "--out", str(tmp_path), "--no-plots"]) == 0
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir()) / "seed_0"  # one agent on the preset's 128 envs
    capsys.readouterr()
    assert main(["qtable", str(run_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["distributional"] == "qr" and len(data["learned_distribution"][0][0]) == 8
    w1, floor = data["return_distribution_w1"], data["return_distribution_w1_floor"]
    assert len(w1) == 16 and all(f <= d + 1e-9 for d, f in zip(w1, floor))  # nothing beats the floor
    assert main(["qtable", str(run_dir)]) == 0
    assert "return distributions (qr) against the exact ones" in capsys.readouterr().out
    assert main(["plot", str(run_dir)]) == 0
    assert (run_dir / "return_distributions.png").stat().st_size > 10_000  # learned beside exact, two states


def test_optimal_of_an_env_without_a_model_is_a_one_line_error(capsys):
    assert main(["optimal", "CartPole-v1"]) == EXIT_USAGE
    assert "transition model" in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------- play
def test_play_reads_keys_and_moves_by_the_grid(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("ssdsdd\x1b[Bq"))
    assert main(["play", "FrozenLake-v1", "--no-slippery", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["games"] == [{"steps": 6, "return": 1.0, "outcome": "goal"}] and out["won"] == 1
    assert [m["action"] for m in out["moves"]] == ["down", "down", "right", "down", "right", "right", "down"]


def test_play_draws_the_board(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("dq"))
    assert main(["play", "FrozenLake-v1", "--no-slippery"]) == 0
    out = capsys.readouterr().out
    assert "\nP F F F\nF H F H\nF F F H\nH F F G\nstate 0\n" in out and "\nS P F F\n" in out
    assert "bye: 0 games, 0 won" in out


def test_play_needs_a_map(capsys):
    assert main(["play", "CartPole-v1"]) == EXIT_USAGE
    assert "grid world" in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------- the others
def test_presets_in_process(capsys):
    assert main(["presets", "MountainCar-v0"]) == 0
    assert "n_step=3" in capsys.readouterr().out
    assert main(["presets", "MountainCar-v9"]) == EXIT_USAGE
    assert "MountainCar-v0" in one_error_line(capsys.readouterr().err)


def test_usage_errors_exit_2_in_qleans_style(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate"])
    assert exc.value.code == EXIT_USAGE
    assert "(see: qlearn evaluate --help)" in one_error_line(capsys.readouterr().err)


def test_every_handler_returns_a_status(monkeypatch, tmp_path, capsys):
    """A missing run folder reaches each run-reading handler as a one-line error, not a traceback."""
    for cmd in ("evaluate", "qtable", "plot", "render", "report"):
        assert main([cmd, str(tmp_path / "nope")]) == EXIT_USAGE, cmd
        assert "does not exist" in one_error_line(capsys.readouterr().err), cmd


def test_handlers_are_plain_functions_of_the_namespace():
    args = SimpleNamespace(env_arg=["x=1"], map_name=None, desc=None, slippery=None, env_id="FrozenLake-v1")
    from qlearn.cli.common import env_kwargs_from

    assert env_kwargs_from(args) == {"x": 1}


def test_one_seed_on_many_envs_is_reported_and_plotted_as_one_run(capsys, tmp_path):
    # --agent pqn runs one seed on 16 envs by default: a group of K=1, reported as one run (its seed's folder).
    code = main(["train", "FrozenLake-v1", "--agent", "pqn", "--steps", "1600", "--set", "eval_every=800",
                 "--out", str(tmp_path), "--no-progress", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    run = Path(out["run_dir"])
    assert run.name == "seed_0" and (run.parent / "aggregate.json").is_file() and out["steps"] == 1600
    assert str(run / "learning_curve.png") in out["plots"] and (run / "learning_curve.png").stat().st_size > 0
    assert not (run.parent / "seeds_curve.png").exists()  # no band of one seed
