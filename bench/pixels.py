"""Pixels on this CPU, qlearn beside SB3 DQN at matched settings, in one script run.

Matched: the same network, optimizer (Adam), loss (Huber), target interval, batch, replay size and
schedule on both sides, ``double=false`` for qlearn (SB3's DQN has no Double DQN), one torch thread, the
same observations (qlearn's pixel pipeline, ``qlearn.envs.pixels``, gives both libraries their frames).

Parts (each appends rows to ``bench/results/pixels.jsonl`` as it ends):

1. ``minatar``: env steps/s on a window of ``--window`` steps after ``--warmup`` steps (training already
   on: replay start 1,000 for both), MinAtar Breakout-v1 with the MinAtar network (Conv 16x3x3 -> 128):
   qlearn alone (K=1), SB3 alone, and qlearn ``--seeds 8`` in one process (against 8 SB3 runs one after
   another: 8 times SB3's time per run).
2. ``pong``: the same on ALE/Pong-v5 with the Nature network (SB3's ``CnnPolicy``), a gradient step every
   4 env steps, a ``--pong-window`` window after warm-up.
3. ``memory``: a child process fills a 100k-transition Atari replay memory (4x84x84 frames) and trains
   on it; its replay bytes and the process's peak resident memory (VmHWM), and the bytes a 1M-transition
   memory needs (computed, not allocated).
4. ``pong_capped`` (for a GPU: ``bash bench/gpu_pixels.sh``): the Atari preset on ALE/Pong-v5 for at most
   ``--cap-s`` seconds of training, scored by 3 whole games every 25k env steps; the best score and when.

Usage: ``python bench/pixels.py [--parts minatar,pong,memory] [--device cuda]``; nothing else should run
meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from record import append  # noqa: E402

from qlearn.agents.dqn import DQNAgent  # noqa: E402
from qlearn.buffers import FrameReplayBuffer  # noqa: E402
from qlearn.config import DQNConfig  # noqa: E402
from qlearn.envs.make import make_env  # noqa: E402
from qlearn.envs.pixels import protocol_of  # noqa: E402
from qlearn.envs.vector import make_batched  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402
from qlearn.training.trainer import train, train_many  # noqa: E402

MINATAR = dict(network="minatar", hidden=(128,), lr=2.5e-4, batch_size=32, buffer_size=100_000, learning_starts=1_000,
               gamma=0.99, train_freq=1, gradient_steps=1, target_update_interval=1_000, epsilon_start=1.0,
               epsilon_end=0.1, epsilon_decay_steps=100_000, loss="huber", double=False, max_grad_norm=10.0)
PONG = dict(network="nature", hidden=(512,), lr=1e-4, batch_size=32, buffer_size=100_000, learning_starts=1_000,
            gamma=0.99, train_freq=4, gradient_steps=1, target_update_interval=250, epsilon_start=1.0,
            epsilon_end=0.01, epsilon_decay_steps=1_000_000, loss="huber", double=False, max_grad_norm=10.0)


def sb3_settings(cfg: dict, total: int) -> dict:
    """SB3's DQN arguments for qlearn settings ``cfg`` (its target interval counts env steps)."""
    return dict(learning_rate=cfg["lr"], batch_size=cfg["batch_size"], buffer_size=cfg["buffer_size"],
                learning_starts=cfg["learning_starts"], gamma=cfg["gamma"], train_freq=cfg["train_freq"],
                gradient_steps=cfg["gradient_steps"],
                target_update_interval=cfg["target_update_interval"] * cfg["train_freq"] // cfg["gradient_steps"],
                exploration_initial_eps=cfg["epsilon_start"], exploration_final_eps=cfg["epsilon_end"],
                exploration_fraction=min(1.0, cfg["epsilon_decay_steps"] / total), max_grad_norm=cfg["max_grad_norm"])


def sb3_model(env_id: str, cfg: dict, total: int):
    from stable_baselines3 import DQN
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class MinAtarCNN(BaseFeaturesExtractor):
        """The MinAtar network's body as SB3 runs it (shared/MEASURED.md): Conv(C, 16, 3) -> ReLU -> 128."""

        def __init__(self, space, features_dim: int = 128):
            super().__init__(space, features_dim)
            c, h, w = space.shape
            self.net = nn.Sequential(nn.Conv2d(c, 16, 3), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(16 * (h - 2) * (w - 2), features_dim), nn.ReLU())

        def forward(self, x):
            return self.net(x)

    env = make_env(env_id)
    if cfg["network"] == "minatar":
        policy, kwargs = "MlpPolicy", dict(features_extractor_class=MinAtarCNN, net_arch=[])
    else:
        policy, kwargs = "CnnPolicy", dict(net_arch=[])  # NatureCNN (3136 -> 512) then Linear(512, actions)
    return DQN(policy, env, seed=0, device=DEVICE, verbose=0, policy_kwargs=kwargs, **sb3_settings(cfg, total))


DEVICE = "cpu"


def window_qlearn(env_id: str, cfg: dict, warmup: int, window: int, k: int = 1) -> float:
    """Env steps/s (all K agents together) over ``window`` steps after ``warmup``."""
    if k == 1:
        env = make_env(env_id)
        agent = DQNAgent.for_env(env, DQNConfig(**cfg), seed=0, device=DEVICE)
        train(agent, env, warmup, eval_every=0, keep_best=False, progress=False)
        t = time.perf_counter()
        train(agent, env, window, eval_every=0, keep_best=False, progress=False)
        return window / (time.perf_counter() - t)
    env = make_env(env_id)
    agent = DQNAgent.for_env(env, DQNConfig(**cfg), seeds=range(k), device=DEVICE)
    venv = make_batched(env_id, k, 1, seeds=list(range(k)))
    train_many(agent, venv, warmup, env_id=env_id, eval_every=0, keep_best=False, progress=False)
    t = time.perf_counter()
    train_many(agent, venv, window, env_id=env_id, eval_every=0, keep_best=False, progress=False)
    return k * window / (time.perf_counter() - t)


def window_sb3(env_id: str, cfg: dict, warmup: int, window: int) -> float:
    model = sb3_model(env_id, cfg, warmup + window)
    model.learn(warmup)
    t = time.perf_counter()
    model.learn(window, reset_num_timesteps=False)
    return window / (time.perf_counter() - t)


def part_minatar(args) -> list[dict]:
    """``--rounds`` rounds of (qlearn K=1, SB3, qlearn --seeds 8), each round's ratios from its own
    measurements: this machine's speed drifts by tens of percent over minutes, so ratios of neighbours are
    what is comparable; the row reports every round and the medians."""
    env_id = "MinAtar/Breakout-v1"
    rounds = []
    for _ in range(args.rounds):
        q1 = window_qlearn(env_id, MINATAR, args.warmup, args.window)
        s1 = window_sb3(env_id, MINATAR, args.warmup, args.window)
        q8 = window_qlearn(env_id, MINATAR, args.warmup, args.window // 4, k=8)
        rounds.append({"qlearn_sps": q1, "sb3_sps": s1, "qlearn_seeds8_total_sps": q8, "ratio": q1 / s1,
                       "seeds8_vs_8_sb3_runs_in_a_row": q8 / s1})
        print(json.dumps(rounds[-1]), flush=True)
    med = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
    row = {"part": "minatar", "device": DEVICE, "env": env_id, "warmup": args.warmup, "window": args.window, **med,
           "rounds": rounds, "settings": MINATAR, "protocol": protocol_of(make_env(env_id))}
    print(json.dumps(row), flush=True)
    return [row]


def part_pong(args) -> list[dict]:
    env_id = "ALE/Pong-v5"
    q = window_qlearn(env_id, PONG, args.warmup, args.pong_window)
    s = window_sb3(env_id, PONG, args.warmup, args.pong_window)
    row = {"part": "pong", "device": DEVICE, "env": env_id, "warmup": args.warmup, "window": args.pong_window, "qlearn_sps": q,
           "sb3_sps": s, "ratio": q / s, "settings": PONG, "protocol": protocol_of(make_env(env_id))}
    print(json.dumps(row), flush=True)
    return [row]


MEMORY_CHILD = r"""
import json, sys, numpy as np
from qlearn import DQNAgent, DQNConfig
from qlearn.envs.make import make_env
from qlearn.threads import configure_threads

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

configure_threads(1)
cap = int(sys.argv[1])
env = make_env("ALE/Pong-v5")
agent = DQNAgent.for_env(env, DQNConfig(network="nature", hidden=(512,), buffer_size=cap, batch_size=32,
                                        learning_starts=0, train_freq=10**9), seed=0)
rng = np.random.default_rng(0)
chunk = 100  # a run stores one transition a step: keep the filler's own arrays small
agent.buffer = None
agent.buffer = agent._make_buffer(n_envs=chunk)
for _ in range(cap // chunk):  # fill every slot (touch every page) with frames of 100 envs a call
    o = rng.integers(0, 256, (1, chunk, 4, 84, 84), dtype=np.uint8)
    agent.buffer.store(o, rng.integers(0, 6, (1, chunk)), np.zeros((1, chunk), np.float32), o,
                       np.zeros((1, chunk), np.float32), np.zeros((1, chunk), np.float32))
for _ in range(20):
    agent.train_step()
buf = agent.buffer
tensors = [buf.frames, buf.frame_of, buf.ep, buf.actions, buf.rewards, buf.terminated, buf.truncated]
nbytes = sum(t.numel() * t.element_size() for t in tensors)
print(json.dumps({"peak_rss_mb": peak_mb(), "replay_bytes": nbytes, "size": len(buf)}))
"""


def part_memory(args) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, "100000"], capture_output=True, text=True, check=True)
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"part": "memory", "env": "ALE/Pong-v5", "capacity": 100_000, **child,
           "replay_gb": child["replay_bytes"] / 1e9, "peak_rss_gb": child["peak_rss_mb"] * 2**20 / 1e9,
           "bytes_1m": FrameReplayBuffer.bytes_needed(1_000_000, (4, 84, 84), stack=4),
           "sb3_bytes_100k": 2 * 100_000 * 4 * 84 * 84, "sb3_optimized_bytes_100k": 100_000 * 4 * 84 * 84}
    row["gb_1m"] = row["bytes_1m"] / 1e9
    print(json.dumps(row), flush=True)
    return [row]


def part_pong_capped(args) -> list[dict]:
    """The Atari preset on Pong for at most ``args.cap_s`` seconds of training; the best whole-game score."""
    from qlearn.presets import preset

    over, _ = preset("ALE/Pong-v5", "dqn")
    env = make_env("ALE/Pong-v5")
    agent = DQNAgent.for_env(env, DQNConfig(**over), seed=0, device=DEVICE)
    seen: list[dict] = []

    class Cap:
        def on_eval(self, row):
            seen.append({"step": row["step"], "score": row["score"], "train_s": row["train_time"]})
            print(json.dumps(seen[-1]), flush=True)
            return row["train_time"] < args.cap_s

    t = time.perf_counter()
    res = train(agent, env, 10_000_000, eval_every=25_000, eval_episodes=3, callbacks=[Cap()], progress=False)
    best = max(seen, key=lambda r: r["score"]) if seen else None
    row = {"part": "pong_capped", "env": "ALE/Pong-v5", "device": DEVICE, "cap_s": args.cap_s, "steps": res.steps,
           "wall_s": time.perf_counter() - t, "sps": res.steps / max(res.wall_time, 1e-9), "evals": seen,
           "best_score": None if best is None else best["score"], "best_step": None if best is None else best["step"]}
    print(json.dumps(row), flush=True)
    return [row]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="minatar,pong,memory")
    p.add_argument("--warmup", type=int, default=2_000)
    p.add_argument("--window", type=int, default=8_000)
    p.add_argument("--pong-window", type=int, default=20_000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=3, help="minatar: interleaved rounds (medians reported)")
    p.add_argument("--cap-s", type=float, default=120.0, help="pong_capped: seconds of training")
    args = p.parse_args()
    global DEVICE
    DEVICE = args.device
    configure_threads(1)
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    parts = {"minatar": part_minatar, "pong": part_pong, "memory": part_memory, "pong_capped": part_pong_capped}
    for name in args.parts.split(","):
        append("pixels", parts[name](args))


if __name__ == "__main__":
    main()
