"""The command line, run as a user runs it: in a subprocess, reading its output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ENV = {**{k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}, "QLEARN_THREADS": "1",
       "MPLBACKEND": "Agg"}


def qlearn(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qlearn", *args], capture_output=True, text=True, env=ENV,
                          input=stdin, cwd=cwd, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, one clear line on stderr naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("qlearn: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = qlearn("train", "FrozenLake-v1", "--agent", "dqn", "--steps", "3200", "--seed", "3", "--out", str(out),
                  "--set", "learning_starts=500", "--set", "eval_every=1000", "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    run_dir = Path(summary["run_dir"])
    assert summary["steps"] == 3200  # the default: 32 envs per agent, one run folder (its seed's)
    return run_dir


def test_help_lists_commands():
    proc = qlearn("--help")
    assert proc.returncode == 0
    for cmd in ("train", "evaluate", "qtable", "optimal", "play", "plot", "presets"):
        assert cmd in proc.stdout


def test_train_writes_a_complete_run_folder(dqn_run):
    names = {p.name for p in dqn_run.iterdir()}
    assert {"config.json", "metrics.csv", "evals.csv", "agent.pt", "last.pt", "summary.json", "tb"} <= names
    cfg = json.loads((dqn_run / "config.json").read_text())
    assert cfg["env_id"] == "FrozenLake-v1" and cfg["agent"] == "dqn"
    assert cfg["agent_config"]["learning_starts"] == 500  # --set reached the agent
    assert cfg["train"]["seed"] == 3 and "torch" in cfg["versions"]
    assert any(p.name.startswith("events.out.tfevents") for p in (dqn_run / "tb").iterdir())
    rows = (dqn_run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,episode,return") and len(rows) > 10
    assert dqn_run.name == "seed_3" and dqn_run.parent.name.startswith("FrozenLake-v1__dqn__3__")
    assert cfg["n_envs"] == 128 and cfg["agent_config"]["train_freq"] == 128  # the preset's default shape


def test_evaluate_json_fields(dqn_run):
    proc = qlearn("evaluate", str(dqn_run), "--episodes", "40", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("mean_return", "std_return", "success_rate", "ci95", "episodes"):
        assert key in out
    assert out["episodes"] == 40
    low, high = out["ci95"]
    assert low <= out["mean_return"] <= high
    assert 0.0 <= out["exact_success_probability"] <= 0.7443  # never above the best possible


def test_qtable_against_optimal_course_and_file(dqn_run, tmp_path):
    proc = qlearn("qtable", str(dqn_run), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    q = np.array(out["q_table"])
    assert q.shape == (16, 4)
    assert 0 <= out["greedy_agree"] <= out["states_compared"] == 11  # 16 states less 4 holes and the goal
    assert out["max_abs_diff"] >= out["mean_abs_diff"] >= 0
    text = qlearn("qtable", str(dqn_run), "--compare", "course")
    assert text.returncode == 0 and "course" in text.stdout and "greedy action is optimal under the reference" in text.stdout
    # a reference equal to the learned table itself: zero difference, full agreement
    path = tmp_path / "mine.csv"
    np.savetxt(path, q, delimiter=",")
    same = json.loads(qlearn("qtable", str(dqn_run), "--compare", str(path), "--json").stdout)
    assert same["max_abs_diff"] < 1e-6 and same["greedy_agree"] == 11


def test_optimal_json_matches_known_optimum():
    out = json.loads(qlearn("optimal", "FrozenLake-v1", "--json").stdout)
    assert abs(out["success_probability"] - 0.7402) < 5e-4
    assert np.array(out["q_table"]).shape == (16, 4) and len(out["v"]) == 16 and len(out["policy"]) == 16
    assert abs(out["q_table"][14][1] - 0.86) < 0.005  # the course's table, state 14, down
    det = json.loads(qlearn("optimal", "FrozenLake-v1", "--no-slippery", "--json").stdout)
    assert det["success_probability"] == pytest.approx(1.0)


def test_tabular_train_and_custom_map(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--agent", "tabular", "--steps", "2000", "--out", str(tmp_path),
                  "--map", "SFF,FHF,FFG", "--no-slippery", "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    run = Path(json.loads(proc.stdout)["run_dir"])
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["env_kwargs"] == {"desc": ["SFF", "FHF", "FFG"], "is_slippery": False}
    q = np.array(json.loads(qlearn("qtable", str(run), "--json").stdout)["q_table"])
    assert q.shape == (9, 4)


def test_plot_writes_images(dqn_run):
    proc = qlearn("plot", str(dqn_run), "--json")
    assert proc.returncode == 0, proc.stderr
    plots = [Path(p) for p in json.loads(proc.stdout)["plots"]]
    assert {p.name for p in plots} == {"learning_curve.png", "q_table.png", "values.png"}
    for p in plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_play_from_piped_keys():
    # Non-slippery 4x4: down, down, right, down, right, right reaches the goal (S at 0, G at 15).
    proc = qlearn("play", "FrozenLake-v1", "--no-slippery", stdin="ssdsddq")
    assert proc.returncode == 0, proc.stderr
    assert "reached the goal" in proc.stdout and "1 games, 1 won" in proc.stdout


def test_play_json_records_every_move_and_game(dqn_run):
    proc = qlearn("play", "FrozenLake-v1", "--no-slippery", "--json", stdin="ssdsddsq")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # nothing but the JSON on stdout
    assert out["games"] == [{"steps": 6, "return": 1.0, "outcome": "goal"}] and out["won"] == 1
    assert [m["action"] for m in out["moves"]] == ["down", "down", "right", "down", "right", "right", "down"]
    assert [m["to"] for m in out["moves"][:6]] == [4, 8, 9, 13, 14, 15] and not any(m["slid"] for m in out["moves"])
    assert out["moves"][-1]["game"] == 2 and out["unfinished_steps"] == 1
    advised = json.loads(qlearn("play", "--run", str(dqn_run), "--seed", "0", "--json", stdin="sq").stdout)
    assert advised["moves"][0]["agent_suggested"] in {"left", "down", "right", "up"}


def test_play_shows_agent_advice(dqn_run):
    proc = qlearn("play", "--run", str(dqn_run), "--seed", "0", stdin="q")
    assert proc.returncode == 0, proc.stderr
    assert "agent suggests" in proc.stdout


def test_presets_listed():
    proc = qlearn("presets", "--json")
    assert proc.returncode == 0
    assert "FrozenLake-v1" in json.loads(proc.stdout)


# ------------------------------------------------------------------------------------------ bad input
def test_unknown_env_suggests_close_names(tmp_path):
    assert_user_error(qlearn("train", "FrozenLake-v9", "--out", str(tmp_path)), "FrozenLake-v9", "FrozenLake-v1")


@pytest.mark.parametrize("agent", ["dqn", "tabular"])
def test_continuous_actions_refused(agent, tmp_path):
    assert_user_error(qlearn("train", "Pendulum-v1", "--agent", agent, "--out", str(tmp_path)), "Box", "discrete")


def test_tabular_on_continuous_states_refused(tmp_path):
    assert_user_error(qlearn("train", "CartPole-v1", "--agent", "tabular", "--out", str(tmp_path)),
                      "tabular", "--agent dqn")


def test_bad_set_key_and_value(tmp_path):
    assert_user_error(qlearn("train", "FrozenLake-v1", "--set", "lrr=0.1", "--out", str(tmp_path)), "lrr", "lr")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--set", "lr=fast", "--out", str(tmp_path)), "lr", "number")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--set", "gamma=2", "--out", str(tmp_path)), "gamma")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--set", "gamma", "--out", str(tmp_path)), "key=value")
    assert not any(tmp_path.iterdir()), "a refused run must not leave a folder behind"


def test_missing_and_corrupt_run_folders(tmp_path, dqn_run):
    assert_user_error(qlearn("evaluate", str(tmp_path / "nope")), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(qlearn("qtable", str(empty)), "config.json")
    bad_cfg = tmp_path / "badcfg"
    bad_cfg.mkdir()
    (bad_cfg / "config.json").write_text("{not json")
    assert_user_error(qlearn("evaluate", str(bad_cfg)), "corrupt")
    bad_ckpt = tmp_path / "badckpt"
    bad_ckpt.mkdir()
    (bad_ckpt / "config.json").write_text((dqn_run / "config.json").read_text())
    (bad_ckpt / "agent.pt").write_bytes(os.urandom(300))
    assert_user_error(qlearn("evaluate", str(bad_ckpt)), "corrupt")
    no_ckpt = tmp_path / "nockpt"
    no_ckpt.mkdir()
    (no_ckpt / "config.json").write_text((dqn_run / "config.json").read_text())
    assert_user_error(qlearn("qtable", str(no_ckpt)), "agent.pt")


def test_bad_map_and_compare(dqn_run, tmp_path):
    assert_user_error(qlearn("optimal", "FrozenLake-v1", "--map", "SFX,FFG"), "--map")
    assert_user_error(qlearn("qtable", str(dqn_run), "--compare", str(tmp_path / "missing.csv")), "missing.csv")


def test_pretrain_on_optimal_table_then_train(tmp_path):
    # 300 steps < learning_starts: the delivered net is the pretrained one, so it plays like Q*.
    proc = qlearn("train", "FrozenLake-v1", "--pretrain", "optimal", "--steps", "300", "--out", str(tmp_path),
                  "--set", "eval_every=300", "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "pretrained on optimal" in proc.stderr and "--recipe course" in proc.stderr  # one agent, one env
    run = json.loads(proc.stdout)["run_dir"]
    out = json.loads(qlearn("qtable", run, "--json").stdout)
    assert out["greedy_agree"] == 11 and out["max_abs_diff"] < 0.02
    assert_user_error(qlearn("train", "FrozenLake-v1", "--agent", "tabular", "--pretrain", "course",
                             "--out", str(tmp_path)), "--pretrain")


def test_users_own_env_trains_with_generic_defaults(tmp_path):
    """An env registered by the user's own module (no preset): generic DQN defaults learn it."""
    proc = subprocess.run([sys.executable, "-m", "qlearn", "train", "tests.fixtures.corridor:Corridor-v0",
                           "--steps", "4000", "--set", "learning_starts=500", "--set", "epsilon_decay_steps=2000",
                           "--set", "eval_every=1000", "--set", "eval_episodes=5", "--out", str(tmp_path),
                           "--no-progress", "--no-plots", "--json"],
                          capture_output=True, text=True, env=ENV, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)["run_dir"]
    assert json.loads((Path(run) / "config.json").read_text())["agent_config"]["hidden"] == [64, 64]  # generic
    res = subprocess.run([sys.executable, "-m", "qlearn", "evaluate", run, "--episodes", "5", "--json"],
                         capture_output=True, text=True, env=ENV, timeout=300, cwd=Path(__file__).resolve().parents[1])
    out = json.loads(res.stdout)
    assert out["success_rate"] == 1.0 and out["mean_length"] == 5  # straight to the goal


def test_presets_for_the_classic_problems():
    out = json.loads(qlearn("presets", "--json").stdout)
    for env_id in ("FrozenLake-v1", "CartPole-v1", "MountainCar-v0", "Acrobot-v1"):
        assert env_id in out and "dqn" in out[env_id]
    # FrozenLake8x8-v1's hand-tuned DQN preset gave way to the derived settings, which beat it.
    assert "FrozenLake8x8-v1" not in out
    derived = json.loads(qlearn("presets", "FrozenLake8x8-v1", "--json").stdout)["FrozenLake8x8-v1"]
    assert derived["dqn"]["facts"]["states"] == 64 and derived["dqn"]["settings"]["envs"] > 1
    text = qlearn("presets", "MountainCar-v0").stdout
    assert "n_step=3" in text and "RL Zoo" in text
    assert_user_error(qlearn("presets", "MountainCar-v9"), "MountainCar-v0")


# ------------------------------------------------------------------------------ many seeds, one process
def test_train_many_seeds_writes_a_folder_per_seed_and_an_aggregate(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--seeds", "2", "--envs", "2", "--steps", "2000",
                  "--set", "eval_every=1000", "--no-progress", "--no-plots", "--json", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    parent = Path(out["run_dir"])
    assert parent.parent == tmp_path and parent.name.startswith("FrozenLake-v1__dqn__seeds0-1__")
    assert [Path(d) for d in out["run_dirs"]] == [parent / "seed_0", parent / "seed_1"]
    agg = out["aggregate"]
    assert agg["seeds"] == [0, 1] and len(agg["scores"]) == 2 and agg["final_score"]["n"] == 2
    assert {"mean", "ci95", "iqm", "min", "max"} <= set(agg["final_score"])
    assert [row["step"] for row in agg["curve"]] == [1000, 2000]
    assert json.loads((parent / "aggregate.json").read_text())["scores"] == agg["scores"]
    assert agg["selected_by"] == "episodes" and len(agg["exact_scores"]) == 2  # the model reports, not chooses
    for seed, (run, score) in enumerate(zip(out["run_dirs"], agg["exact_scores"])):
        cfg = json.loads((Path(run) / "config.json").read_text())
        assert cfg["train"]["seed"] == seed and cfg["n_envs"] == 2 and cfg["lockstep_seeds"] == [0, 1]
        ev = qlearn("evaluate", run, "--episodes", "10", "--json")
        assert ev.returncode == 0, ev.stderr
        ev = json.loads(ev.stdout)
        assert ev["episodes"] == 10
        assert ev["exact_success_probability"] == pytest.approx(score, abs=1e-6)  # the delivered agent
        qt = qlearn("qtable", run, "--json")
        assert qt.returncode == 0, qt.stderr
        assert np.array(json.loads(qt.stdout)["q_table"]).shape == (16, 4)


def test_train_zero_seeds_is_a_user_error(tmp_path):
    assert_user_error(qlearn("train", "FrozenLake-v1", "--seeds", "0", "--out", str(tmp_path)), "--seeds")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--seeds", "2", "--envs", "0", "--out", str(tmp_path)), "--envs")
    assert not any(tmp_path.iterdir()), "a refused run must not leave a folder behind"


def test_render_writes_an_animated_gif(dqn_run, tmp_path):
    from PIL import Image

    out = tmp_path / "eps.gif"
    proc = qlearn("render", str(dqn_run), "--episodes", "2", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert len(info["episodes"]) == 2 and info["frames"] > 2
    gif = Image.open(out)
    # FrozenLake's own rgb_array frames (Pillow may merge repeated frames of the end-of-episode pause)
    assert 2 < gif.n_frames <= info["frames"] and gif.size == (256, 256)
    assert_user_error(qlearn("render", str(dqn_run), "--out", str(tmp_path / "x.avi")), ".mp4")
    mp4 = qlearn("render", str(dqn_run), "--episodes", "1", "--out", str(tmp_path / "x.mp4"))
    assert mp4.returncode == 0, mp4.stderr
    head = (tmp_path / "x.mp4").read_bytes()[:12]
    assert head[4:8] == b"ftyp"  # an MP4 container
    assert_user_error(qlearn("render", str(dqn_run), "--human"), "display")


def test_plot_of_an_incomplete_run_plots_what_it_can(dqn_run, tmp_path):
    part = tmp_path / "part"
    part.mkdir()
    for name in ("config.json", "metrics.csv"):  # no evals.csv, no agent.pt
        (part / name).write_text((dqn_run / name).read_text())
    proc = qlearn("plot", str(part), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [Path(p).name for p in out["plots"]] == ["learning_curve.png"]
    assert any("agent.pt" in s for s in out["skipped"])


def test_device_choice_is_checked(tmp_path):
    import torch

    if not torch.cuda.is_available():
        assert_user_error(qlearn("train", "FrozenLake-v1", "--device", "cuda", "--out", str(tmp_path)), "CUDA")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--device", "tpu", "--out", str(tmp_path)), "cpu, cuda")
    assert not any(tmp_path.iterdir())


def test_plot_of_a_seeds_folder_draws_the_band(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--seeds", "2", "--steps", "1000", "--set", "eval_every=500",
                  "--out", str(tmp_path), "--no-progress", "--no-plots", "--json")
    assert proc.returncode == 0, proc.stderr
    parent = Path(json.loads(proc.stdout)["run_dir"])
    out = json.loads(qlearn("plot", str(parent), "--json").stdout)
    names = [Path(p).relative_to(parent).as_posix() for p in out["plots"]]
    assert names[0] == "seeds_curve.png" and "seed_0/learning_curve.png" in names and "seed_1/q_table.png" in names


# ------------------------------------------------------------------------------------------------ recipes
def test_recipe_batched_runs_32_envs_per_agent_and_records_it(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--recipe", "batched", "--seeds", "2", "--steps", "3200",
                  "--set", "eval_every=1600", "--out", str(tmp_path), "--json", "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    cfg = json.loads((Path(out["run_dirs"][0]) / "config.json").read_text())
    assert cfg["recipe"] == "batched" and cfg["n_envs"] == 32
    assert cfg["agent_config"]["train_freq"] == 32 and cfg["agent_config"]["target_update_interval"] == 5
    assert cfg["agent_config"]["lr"] == 0.003 and cfg["train"]["steps"] == 3200  # --steps wins over the recipe


def test_recipe_fast_trains_a_linear_q_network_that_reaches_070(tmp_path):
    """The fast recipe end to end: 256 envs, no hidden layer; the delivered agent is >= 0.70 exactly, and its
    Q-table (the network's single layer) is read, compared and evaluated like any DQN's."""
    proc = qlearn("train", "FrozenLake-v1", "--recipe", "fast", "--seed", "1", "--out", str(tmp_path), "--json",
                  "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    run = Path(json.loads(proc.stdout)["run_dir"])  # one agent: its seed's folder
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["recipe"] == "fast" and cfg["n_envs"] == 256 and cfg["agent_config"]["hidden"] == []
    out = json.loads(qlearn("evaluate", str(run), "--episodes", "20", "--json").stdout)
    assert out["exact_success_probability"] >= 0.70
    table = json.loads(qlearn("qtable", str(run), "--compare", "optimal", "--json").stdout)
    assert np.array(table["q_table"]).shape == (16, 4) and table["greedy_agree"] >= 9


def test_unknown_recipe_names_the_known_ones(tmp_path):
    assert_user_error(qlearn("train", "FrozenLake-v1", "--recipe", "batchd", "--out", str(tmp_path)),
                      "batchd", "did you mean batched")
    assert_user_error(qlearn("train", "MountainCar-v0", "--recipe", "batched", "--out", str(tmp_path)),
                      "recipes for MountainCar-v0: rainbow")
    assert_user_error(qlearn("train", "Pendulum-v1", "--recipe", "rainbow", "--out", str(tmp_path)), "no recipes")
    assert_user_error(qlearn("train", "FrozenLake-v1", "--agent", "tabular", "--recipe", "batched",
                             "--out", str(tmp_path)), "--agent dqn")
    assert not any(tmp_path.iterdir())  # nothing written for a mistake


def test_recipe_with_resume_or_config_is_refused(tmp_path, dqn_run):
    assert_user_error(qlearn("train", "--resume", str(dqn_run), "--recipe", "batched"), "--recipe")
    assert_user_error(qlearn("train", "--config", str(dqn_run / "config.json"), "--recipe", "batched",
                             "--out", str(tmp_path)), "--recipe")


def test_recipe_on_one_env_runs_the_single_path_and_records_it(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--recipe", "batched", "--envs", "1", "--steps", "1500", "--out",
                  str(tmp_path), "--json", "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "tuned for --envs 32" in proc.stderr
    cfg = json.loads((Path(json.loads(proc.stdout)["run_dir"]) / "config.json").read_text())
    assert cfg["recipe"] == "batched" and cfg["agent_config"]["train_freq"] == 32 and cfg["train"]["steps"] == 1500


def test_one_env_asked_of_a_many_env_preset_gets_its_one_env_recipe(tmp_path):
    proc = qlearn("train", "FrozenLake-v1", "--envs", "1", "--steps", "300", "--out", str(tmp_path), "--json",
                  "--no-progress", "--no-plots")
    assert proc.returncode == 0 and "--recipe course" in proc.stderr, proc.stderr
    cfg = json.loads((Path(json.loads(proc.stdout)["run_dir"]) / "config.json").read_text())
    assert cfg["recipe"] == "course" and cfg["agent_config"]["train_freq"] == 4 and "lockstep_seeds" not in cfg


def test_config_reruns_with_the_recorded_pretraining_and_device(tmp_path):
    first = qlearn("train", "FrozenLake-v1", "--pretrain", "optimal", "--steps", "300", "--out", str(tmp_path / "a"),
                   "--no-progress", "--no-plots", "--json")
    assert first.returncode == 0, first.stderr
    config = Path(json.loads(first.stdout)["run_dir"]) / "config.json"
    again = qlearn("train", "--config", str(config), "--out", str(tmp_path / "b"), "--no-progress", "--no-plots",
                   "--json")
    assert again.returncode == 0 and "pretrained on optimal" in again.stderr, again.stderr
    rerun = json.loads((Path(json.loads(again.stdout)["run_dir"]) / "config.json").read_text())
    assert rerun["pretrain"] == "optimal" and rerun["device"] == "cpu"
    assert json.loads(again.stdout)["score"] == pytest.approx(json.loads(first.stdout)["score"])
    if not torch.cuda.is_available():  # a GPU run's config on a machine without one: say so, or rerun on the CPU
        recorded = json.loads(config.read_text())
        gpu = tmp_path / "gpu.json"
        gpu.write_text(json.dumps({**recorded, "device": "cuda"}))
        assert_user_error(qlearn("train", "--config", str(gpu), "--out", str(tmp_path / "c")), "--device cpu")
        assert not (tmp_path / "c").exists()
        cpu = qlearn("train", "--config", str(gpu), "--device", "cpu", "--out", str(tmp_path / "c"), "--no-progress",
                     "--no-plots")
        assert cpu.returncode == 0, cpu.stderr
