"""Small helpers shared by the tests."""

from __future__ import annotations


def play(agent, env, steps: int, seed: int = 0) -> None:
    """The seed's per-step loop: get_action, step, update (resetting at episode ends)."""
    env.action_space.seed(seed)
    state, _ = env.reset(seed=seed)
    for _ in range(steps):
        action = agent.get_action(state)
        next_state, reward, terminated, truncated, _ = env.step(action)
        agent.update(state, action, reward, next_state, terminated, truncated)
        state = env.reset()[0] if terminated or truncated else next_state
