"""The memory guard: a replay memory that would not fit is refused before it is allocated.

A float replay memory of 100k raw Atari frames is about 40 GB; allocated, the operating system kills
the process with no message and nothing written. Every buffer states what it needs
(``bytes_needed``) and calls :func:`check_memory` first, which compares that with what the machine (or
its container's limit, or the GPU) has available and raises a one-line error naming the setting.
"""

from __future__ import annotations

from pathlib import Path

import torch

from qlearn.errors import QlearnError

HEADROOM = 0.9
"""The share of the available memory a replay memory may take (the rest is for the networks, envs and Python)."""


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_available() -> int | None:
    """What the container's memory limit leaves (cgroup v2, else v1); None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max" or int(raw) >= 1 << 60:
                return None
            return int(raw) - int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device`` (None where it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    found = [x for x in (_meminfo_available(), _cgroup_available()) if x is not None]
    return min(found) if found else None


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def check_memory(
    needed: int, device: torch.device | str, setting: str, value: int, what: str = "the replay memory"
) -> None:
    """Raise a one-line :class:`QlearnError` if ``needed`` bytes (of ``what``) would not fit on ``device``."""
    free = available_bytes(device)
    if free is None or needed <= HEADROOM * free:
        return
    fits = int(value * HEADROOM * free / max(needed, 1))
    raise QlearnError(
        f"{what} for {setting}={value} needs {gigabytes(needed)} but {device} has "
        f"{gigabytes(free)} available: lower {setting} (about {fits:,} would fit) or train fewer seeds at once"
    )
