"""The course's Task 3-1 and 3-2: the replay buffer and the update step, by hand and through the agent.

Run: python examples/replay_and_update.py
"""

import numpy as np
import torch

from qlearn import DQNAgent, DQNConfig, make_env
from qlearn.agents import td_target
from qlearn.buffers import ReplayBuffer

# 3-1. A replay buffer: store experiences, sample a minibatch. Bounded: the oldest are overwritten.
buffer = ReplayBuffer(capacity=4, obs_dim=1)
for t in range(6):  # 6 experiences into 4 slots: t=0 and t=1 are gone
    buffer.store(obs=np.array([[[t]]]), actions=np.array([[t % 4]]), rewards=np.array([[float(t)]]),
                 next_obs=np.array([[[t + 1]]]), terminated=np.array([[t == 5]]))
print("stored:", len(buffer), "of capacity", buffer.capacity, "-> rewards kept:", sorted(buffer.rewards[0].tolist()))
batch = buffer.sample(3, torch.Generator().manual_seed(0))
print("a sampled minibatch (NamedTuple):", {k: v[0].tolist() for k, v in batch._asdict().items() if k in
                                            ("rewards", "terminated")})

# 3-2. The target of the update: tt = rr if terminal, else rr + gamma * max_a' Q(ss', a')
rewards = torch.tensor([[0.0, 1.0]])
terminated = torch.tensor([[0.0, 1.0]])
next_q = torch.tensor([[[0.2, 0.5, 0.1, 0.0], [9.0, 9.0, 9.0, 9.0]]])
targets = td_target(rewards, terminated, next_q, gamma=0.99)
print("targets:", targets.tolist(), "(by hand: 0 + 0.99 * 0.5 = 0.495, and 1 for the terminal one)")
assert torch.allclose(targets, torch.tensor([[0.495, 1.0]]))

# The agent does both in update(): store the experience, then train on a minibatch once warmed up.
env = make_env("FrozenLake-v1")
agent = DQNAgent.for_env(env, DQNConfig(learning_starts=256, batch_size=64, train_freq=1), seed=0)
state, _ = env.reset(seed=0)
losses = []
for step in range(600):
    action = agent.get_action(state)
    next_state, reward, terminated, truncated, _ = env.step(action)
    loss = agent.update(state, action, reward, next_state, terminated, truncated)
    if loss is not None:
        losses.append(loss)
    state = next_state if not (terminated or truncated) else env.reset()[0]
print(f"{len(agent.buffer)} experiences stored; {len(losses)} training steps after the warm-up of 256; "
      f"last loss {losses[-1]:.2e}")
assert len(losses) == 600 - 256 + 1
