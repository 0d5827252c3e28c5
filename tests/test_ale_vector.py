"""ale-py's vector env behind the batched-env interface (qlearn.envs.ale_vector, ``--env-arg vector=ale``):
the Gymnasium pipeline's observations and frame stacks, same-step resets with the true final observation,
per-agent seeds, learning signals from raw rewards and lives, no checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qlearn.envs.ale_vector import AleVectorBatched
from qlearn.envs.make import make_env
from qlearn.envs.vector import make_batched
from qlearn.errors import QlearnError
from qlearn.spec import RunSpec

GAME = "ALE/Breakout-v5"


def random_actions(rng: np.random.Generator, k: int, n: int) -> torch.Tensor:
    return torch.as_tensor(rng.integers(0, 4, (k, n)))


def test_make_batched_picks_it_for_vector_ale_with_the_agent_s_spaces():
    venv = make_batched(GAME, 2, 3, seeds=[0, 1], vector="ale")
    single = make_env(GAME)
    assert isinstance(venv, AleVectorBatched) and venv.protocol["vector"] == "ale"
    assert venv.observation_space == single.observation_space and venv.action_space == single.action_space
    obs = venv.reset()
    assert obs.shape == (2, 3, 4, 84, 84) and obs.dtype == torch.uint8
    assert venv.horizon == 27_001  # the frame cap over the skip, as for the Gymnasium pipeline
    venv.close()


def test_without_randomness_it_sees_what_the_gymnasium_pipeline_sees():
    kw = {"noop_max": 0, "sticky": 0.0}  # no no-op starts, no sticky actions: both games are deterministic
    venv, env = AleVectorBatched(GAME, 1, 1, vector="ale", **kw), make_env(GAME, **kw)
    mine, (theirs, _) = venv.reset()[0, 0].numpy(), env.reset(seed=0)
    for t in range(40):
        # (the two resize frames by slightly different code: a few pixels differ by one grey level)
        assert (mine == np.asarray(theirs)).mean() > 0.99, t
        a = t % 4
        mine, theirs = venv.step(torch.tensor([[a]]))[0][0, 0].numpy(), env.step(a)[0]
    venv.close()


def test_stacks_pad_a_new_game_with_its_first_frame_and_final_obs_is_the_true_last_one():
    venv = AleVectorBatched(GAME, 1, 2, vector="ale", max_frames=120)  # 30 agent steps per game, then cut
    obs = venv.reset().numpy()
    assert all((obs[0, j, i] == obs[0, j, -1]).all() for j in range(2) for i in range(3))  # like FrameStackObservation
    rng = np.random.default_rng(0)
    cut = 0
    for _ in range(70):
        prev = obs
        nxt, reward, term, trunc, final = (x.numpy() for x in venv.step(random_actions(rng, 1, 2)))
        assert (final[:, :, :3] == prev[:, :, 1:]).all()  # one frame in, the oldest out
        done = term | trunc
        assert (nxt[~done] == final[~done]).all()
        for j in np.flatnonzero(done[0]):
            cut += 1
            assert not (nxt[0, j] == final[0, j]).all()  # the next game's start, not the transition's end
            assert all((nxt[0, j, i] == nxt[0, j, -1]).all() for i in range(3))
        obs = nxt
    assert cut >= 2
    venv.close()


def test_a_seed_plays_the_same_games_alone_and_in_a_group():
    group = AleVectorBatched(GAME, 2, 2, seeds=[3, 7], vector="ale")
    alone = AleVectorBatched(GAME, 1, 2, seeds=[7], vector="ale")
    g, a = group.reset().numpy(), alone.reset().numpy()
    rng = np.random.default_rng(1)
    for _ in range(30):
        assert (g[1] == a[0]).all()
        acts = random_actions(rng, 2, 2)
        g, a = group.step(acts)[0].numpy(), alone.step(acts[1:])[0].numpy()
    assert not (g[0] == g[1]).all()
    group.close()
    alone.close()


def test_learning_signals_clip_raw_rewards_and_mark_lives_lost_while_the_game_goes_on():
    venv = AleVectorBatched(GAME, 1, 4, vector="ale")
    venv.reset()
    rng = np.random.default_rng(2)
    lost_any = scored = 0
    for _ in range(600):
        lives = venv.lives.copy()
        _, reward, term, trunc, _ = venv.step(random_actions(rng, 1, 4))
        train, lost = venv.learning_signals()
        raw = reward.numpy()
        assert (train == np.sign(raw)).all() and raw.dtype == np.float32
        done = (term | trunc).numpy()[0]
        assert not (lost[0] & done).any()
        assert (lost[0] == ((venv.lives < lives) & ~done)).all()
        lost_any += int(lost.sum())
        scored += int((raw > 0).sum())
    assert lost_any >= 4 and scored >= 1  # random Breakout loses lives and sometimes hits a brick
    with pytest.raises(QlearnError, match="vector=gymnasium"):
        venv.state_dict()
    venv.close()


def test_run_spec_for_vector_ale_is_a_batch_without_checkpoints():
    spec = RunSpec.build(GAME, "dqn", env_kwargs={"vector": "ale"})
    assert spec.lockstep and spec.train.checkpoint_every == 0
    with pytest.raises(QlearnError, match=r"cannot be checkpointed.*checkpoint_every=0"):
        RunSpec.build(GAME, "dqn", env_kwargs={"vector": "ale"}, sets=["checkpoint_every=1000"])
    with pytest.raises(QlearnError, match="use gymnasium or ale"):
        make_env(GAME, vector="envpool")


@pytest.mark.parametrize("agent,steps,sets", [
    ("dqn", 600, ["learning_starts=200", "eval_every=300"]),
    ("pqn", 2048, []),  # two rollouts of 128 steps of 8 envs
])
def test_cli_trains_on_ale_s_vector_env(tmp_path, agent, steps, sets):
    proc = subprocess.run(
        [sys.executable, "-m", "qlearn", "train", "ALE/Pong-v5", "--agent", agent, "--env-arg", "vector=ale",
         "--env-arg", "max_frames=400", "--envs", "8" if agent == "pqn" else "2", "--steps", str(steps),
         *(x for kv in [*sets, "eval_episodes=2"] for x in ("--set", kv)), "--out", str(tmp_path),
         "--no-progress", "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "writes no checkpoints" in proc.stderr
    seed = Path(json.loads(proc.stdout)["run_dir"])  # one agent: its seed's folder
    assert seed.name == "seed_0" and (seed.parent / "aggregate.json").is_file()
    config = json.loads((seed / "config.json").read_text())
    assert config["protocol"]["vector"] == "ale" and config["batched_env"] == "AleVectorBatched"
    assert config["train"]["checkpoint_every"] == 0 and (seed / "agent.pt").is_file()
    assert json.loads((seed / "summary.json").read_text())["steps"] == steps
