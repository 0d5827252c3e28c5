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
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, steps, done = 0.0, 0, False
        frames.append(_annotate(env.render(), f"episode {ep + 1}  step 0  return 0"))
        while not done:
            action = int(agent.act(np.asarray(obs)[None, None], greedy=True)[0, 0])
            obs, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            steps += 1
            done = term or trunc
            if (steps % stride == 0 or done) and len(frames) < max_frames:
                frames.append(_annotate(env.render(), f"episode {ep + 1}  step {steps}  return {total:g}"))
        summaries.append({"episode": ep + 1, "return": total, "steps": steps})
        frames.extend([frames[-1]] * 4)  # pause on the last frame of an episode
    return frames, summaries


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
