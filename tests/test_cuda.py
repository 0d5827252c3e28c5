"""The CUDA path: batched envs, lockstep DQN, checkpoints and the command line on a GPU.

Skipped where torch sees no CUDA device (CI has none); `bench/gpu_check.sh` runs these on a lent GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import kill_after_checkpoint
from qlearn.agents.base import read_checkpoint
from qlearn.agents.dqn import DQNAgent
from qlearn.envs import make_env
from qlearn.envs.batched import CartPoleBatched, MountainCarBatched, TabularBatchedEnv
from qlearn.envs.tabular import TabularMDP, success_probability
from qlearn.training.runner import run_many

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.mark.parametrize("cls,env_id", [(MountainCarBatched, "MountainCar-v0"), (CartPoleBatched, "CartPole-v1")])
def test_classic_dynamics_on_cuda_follow_the_cpu_ones(cls, env_id):
    cpu, gpu = cls(make_env(env_id), 2, 8, seed=1), cls(make_env(env_id), 2, 8, seed=1, device="cuda")
    cpu.reset()
    gpu.reset()
    gpu.state = cpu.state.to("cuda")  # same start states (the two generators draw different numbers)
    actions = np.random.default_rng(0).integers(0, 2 if env_id.startswith("Cart") else 3, (60, 2, 8))
    live = np.ones((2, 8), dtype=bool)
    for a in actions:
        _, rc, tc, uc, fc = cpu.step(torch.as_tensor(a))  # f: the state reached, before any autoreset
        _, rg, tg, ug, fg = gpu.step(torch.as_tensor(a))
        assert fg.device.type == "cuda"
        np.testing.assert_allclose(fg.cpu().numpy()[live], fc.numpy()[live], rtol=1e-9, atol=1e-9)
        assert np.array_equal(tg.cpu().numpy()[live], tc.numpy()[live])
        assert np.array_equal(ug.cpu().numpy()[live], uc.numpy()[live])
        np.testing.assert_array_equal(rg.cpu().numpy()[live], rc.numpy()[live])
        live &= ~(tc | uc).numpy()  # after an end each side draws its own reset state
    if env_id.startswith("Cart"):
        assert live.sum() < 16  # some poles fell on the way, so the checks after an end ran


def test_tabular_env_on_cuda_keeps_the_transition_model():
    env = make_env("FrozenLake-v1")
    gpu = TabularBatchedEnv(env, 4, 4096, seed=0, device="cuda")
    gpu.reset()
    _, reward, term, _, final = gpu.step(torch.full((4, 4096), 2, device="cuda"))  # right from the start
    landed = np.bincount(final.cpu().numpy().ravel().astype(int), minlength=16) / final.numel()
    mdp = TabularMDP.from_env(env)
    np.testing.assert_allclose(landed, mdp.cont[0, 2], atol=0.02)  # 1/3 each: stay, right, down
    assert not term.any() and float(reward.sum()) == 0.0


def test_lockstep_dqn_on_cuda_learns_and_its_seeds_load_on_the_cpu(tmp_path):
    res = run_many("FrozenLake-v1", seeds=range(4), n_envs=32, recipe="batched", out=str(tmp_path),
                   progress=False, device="cuda")
    assert res.agent.device.type == "cuda" and res.agent._numpy_step is None  # autograd on the GPU
    scores = np.asarray(res.delivered_scores)
    assert (scores >= 0.70).all(), scores
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    for d, score in zip(res.run_dirs, scores):
        agent = DQNAgent.load(d / "agent.pt", env)  # a GPU run's seed, read on the CPU
        assert agent.device.type == "cpu"
        assert success_probability(mdp, agent.q_table()) == pytest.approx(score, abs=1e-6)
        assert json.loads((d / "config.json").read_text())["device"] == "cuda"


def qlearn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qlearn", *args], env=ENV, capture_output=True, text=True,
                          timeout=600, check=False)


def test_cli_trains_on_cuda_resumes_after_a_kill_and_evaluates_on_the_cpu(tmp_path):

    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "qlearn", "train", "CartPole-v1", "--device", "cuda", "--steps", "6000", "--out",
           str(out), "--no-progress", "--no-plots", "--set", "checkpoint_every=1000", "--set", "learning_starts=500"]
    found = kill_after_checkpoint(cmd, out, 2000, ENV)
    run = found.parent
    resumed = qlearn("train", "--resume", str(run), "--no-progress", "--no-plots")
    assert resumed.returncode == 0, resumed.stderr
    assert read_checkpoint(run / "last.pt")["state"]["steps"] == 6000
    assert json.loads((run / "config.json").read_text())["device"] == "cuda"
    ev = qlearn("evaluate", str(run), "--episodes", "5", "--json")
    assert ev.returncode == 0, ev.stderr
    assert 5 <= json.loads(ev.stdout)["mean_return"] <= 500
    many = qlearn("train", "FrozenLake-v1", "--device", "cuda", "--seeds", "3", "--steps", "2000", "--out", str(out),
                  "--no-progress", "--json")
    assert many.returncode == 0, many.stderr
    dirs = json.loads(many.stdout)["run_dirs"]
    assert len(dirs) == 3
    table = qlearn("qtable", dirs[1], "--json")
    assert table.returncode == 0, table.stderr
    assert np.asarray(json.loads(table.stdout)["q_table"]).shape == (16, 4)


def test_lockstep_on_cuda_resumes_from_its_checkpoint(tmp_path):
    """The GPU path (acting and storing on the device) checkpoints and continues exactly: the resumed
    agents end with the uninterrupted run's weights (the step's kernels are deterministic for these shapes)."""
    from qlearn.config import DQNConfig
    from qlearn.envs.vector import make_batched
    from qlearn.training import checkpoint as ckpt
    from qlearn.training import train_many

    def parts():
        agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(learning_starts=256, train_freq=8),
                                 seeds=range(8), device="cuda")
        return agent, make_batched("FrozenLake-v1", 8, 8, seed=0, device="cuda")

    agent, venv = parts()
    full = train_many(agent, venv, 4000, env_id="FrozenLake-v1", eval_every=1000, progress=False,
                      aggregate_dir=tmp_path, checkpoint_every=2000)
    payload = ckpt.load(tmp_path / ckpt.FILENAME)
    assert payload["loop"]["step"] == 2000
    agent2, venv2 = parts()
    again = train_many(agent2, venv2, 4000, env_id="FrozenLake-v1", eval_every=1000, progress=False, resume=payload)
    assert again.agent.device.type == "cuda" and again.eval_steps == full.eval_steps
    np.testing.assert_array_equal(np.array(again.eval_scores), np.array(full.eval_scores))
    for a, b in zip(full.agent.weights(), again.agent.weights()):
        assert torch.equal(a, b)


def test_minatar_cnn_trains_on_cuda_with_its_frame_memory_there():
    pytest.importorskip("minatar")
    from qlearn.config import DQNConfig
    from qlearn.training.trainer import train

    env = make_env("MinAtar/Breakout-v1")
    cfg = DQNConfig(network="minatar", hidden=(32,), batch_size=8, buffer_size=1_000, learning_starts=100,
                    train_freq=1, prioritized=True, n_step=3)
    agent = DQNAgent.for_env(env, cfg, seeds=(0,), device="cuda")
    train(agent, env, 400, eval_every=200, eval_episodes=2, progress=False)
    frames = agent.buffer.storage.frames
    assert frames.is_cuda and frames.dtype == torch.uint8
    assert agent.updates == 301 and np.isfinite(agent.metrics()["loss"])
