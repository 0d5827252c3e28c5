"""Greedy episodes as animations: Gymnasium's ``rgb_array`` frames, annotated, written as a GIF.

Used by ``qlearn render RUN_DIR`` and by reports. FrozenLake and the classic-control envs render with
pygame (a dependency); ``human=True`` opens Gymnasium's own window where a display exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import QlearnError


def play_frames(
    agent: Any, env: Any, episodes: int = 1, *, seed: int = 0, max_frames: int = 600, stride: int = 1
) -> tuple[list[np.ndarray], list[dict[str, float]]]:
    """Frames of ``episodes`` greedy episodes (every ``stride``-th step) and each episode's summary."""
    frames: list[np.ndarray] = []
    summaries = []
    pixels = bool(getattr(getattr(agent, "encoder", None), "image", False))
    names = action_names(env, agent.n_actions) if pixels else []

    def frame(obs: Any, text: str) -> np.ndarray:
        """The env's picture, annotated; for pixel games the agent's Q-value of each action beside it."""
        picture = _annotate(_rgb(env.render()), text)
        if not pixels:
            return picture
        return _with_q_values(picture, agent.q_values(np.asarray(obs)[None, None])[0, 0], names)

    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, steps, done = 0.0, 0, False
        frames.append(frame(obs, f"episode {ep + 1}  step 0  return 0"))
        while not done:
            action = int(agent.act(np.asarray(obs)[None, None], greedy=True)[0, 0])
            obs, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            steps += 1
            done = term or trunc
            if (steps % stride == 0 or done) and len(frames) < max_frames:
                frames.append(frame(obs, f"episode {ep + 1}  step {steps}  return {total:g}"))
        summaries.append({"episode": ep + 1, "return": total, "steps": steps})
        frames.extend([frames[-1]] * 4)  # pause on the last frame of an episode
    return frames, summaries


def action_names(env: Any, n_actions: int) -> list[str]:
    """The emulator's action names (Atari: NOOP, FIRE, ...), else ``a0, a1, ...``."""
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    names = list(meanings()) if callable(meanings) else []
    action_set = getattr(env.unwrapped, "action_set", None)  # MinAtar: indices into its six actions
    if not names and action_set is not None:
        names = [("noop", "left", "up", "right", "down", "fire")[int(a)] for a in action_set]
    return names if len(names) == n_actions else [f"a{i}" for i in range(n_actions)]


def _rgb(frame: Any) -> np.ndarray:
    """An ``rgb_array`` frame as uint8, enlarged to at least 160 pixels high (MinAtar draws 10x10 floats)."""
    x = np.asarray(frame)
    if x.dtype != np.uint8:
        x = (np.clip(x, 0.0, 1.0) * 255).astype(np.uint8) if x.max() <= 1.0 else x.astype(np.uint8)
    if x.shape[0] < 160:
        scale = -(-160 // x.shape[0])
        x = np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
    return x


def _with_q_values(frame: np.ndarray, q: np.ndarray, names: list[str]) -> np.ndarray:
    """``frame`` with a panel beside it: one bar per action, its Q-value written, the greedy one marked."""
    from PIL import Image, ImageDraw

    h = frame.shape[0]
    panel = Image.new("RGB", (170, h), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    row = max(12, min(22, (h - 20) // max(len(q), 1)))
    lo, hi = float(min(q.min(), 0.0)), float(max(q.max(), 1e-9))
    best = int(np.argmax(q))
    draw.text((4, 2), "Q(s, a)", fill=(0, 0, 0))
    for i, (name, value) in enumerate(zip(names, q)):
        y = 18 + i * row
        width = int(60 * (float(value) - lo) / (hi - lo + 1e-12))
        colour = (200, 60, 40) if i == best else (90, 120, 200)
        draw.rectangle([100, y + 2, 100 + max(width, 1), y + row - 4], fill=colour)
        draw.text((4, y), f"{name[:8]:<8} {float(value):7.3f}", fill=(0, 0, 0))
    return np.concatenate([frame, np.asarray(panel)], axis=1)


def _annotate(frame: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.asarray(frame))
    draw = ImageDraw.Draw(img)
    w = img.size[0]
    draw.rectangle([0, 0, w, 16], fill=(255, 255, 255))
    draw.text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(img)


def write_animation(frames: list[np.ndarray], path: str | Path, fps: int = 8) -> Path:
    """Write frames as ``.gif`` (Pillow) or ``.mp4`` (H.264 through imageio-ffmpeg, which ships its own
    ffmpeg binary: ``pip install imageio imageio-ffmpeg``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return write_gif(frames, path, fps)
    if suffix != ".mp4":
        raise QlearnError(f"{path.name}: animations are written as .gif or .mp4 (e.g. --out episodes.gif)")
    if not frames:
        raise QlearnError("no frames to write")
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - the ffmpeg binary
    except ImportError:
        raise QlearnError(
            "MP4 needs imageio and imageio-ffmpeg (pip install imageio imageio-ffmpeg); or write a .gif"
        ) from None
    # H.264 wants even frame sizes; pad by one pixel where needed
    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1)
    with writer:  # (not ``as writer``: imageio's stubs type __enter__ as the base class, without append_data)
        for f in frames:
            writer.append_data(np.pad(f, pad) if h % 2 or w % 2 else f)
    return path


def write_gif(frames: list[np.ndarray], path: str | Path, fps: int = 8) -> Path:
    """Write frames as an animated GIF (Pillow), looping forever."""
    from PIL import Image

    if not frames:
        raise QlearnError("no frames to write")
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise QlearnError(f"{path.name}: animations are written as .gif (e.g. --out episodes.gif)")
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=True)
    return path


def can_show_window() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
