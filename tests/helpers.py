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


def kill_after_checkpoint(cmd: list[str], out, step: int, env: dict, timeout: float = 300):
    """Start ``qlearn train`` (``cmd``) writing under ``out``, SIGKILL it once a checkpoint at ``step`` or later
    is on disk, and return that checkpoint's path (the run must still be going then)."""
    import signal
    import subprocess
    import time
    from pathlib import Path

    from qlearn.training import checkpoint as ckpt

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, found = time.time() + timeout, None
    while time.time() < deadline and proc.poll() is None and found is None:
        ck = list(Path(out).glob(f"*/{ckpt.FILENAME}"))
        found = ck[0] if ck and ckpt.load(ck[0])["loop"]["step"] >= step else None
        time.sleep(0.05)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert found is not None and alive, f"the run should still be going after its checkpoint at step {step}"
    return found
