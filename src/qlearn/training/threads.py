"""Torch thread count.

Small networks are overhead-bound: on a 2-core machine with anything else running, two torch threads
made small updates ~17x slower while one thread stayed fast. qlearn therefore uses one thread unless
``QLEARN_THREADS`` says otherwise.
"""

from __future__ import annotations

import os

import torch


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n`` (default: ``$QLEARN_THREADS`` or 1); returns the value."""
    if n is None:
        raw = os.environ.get("QLEARN_THREADS", "1")
        try:
            n = max(1, int(raw))
        except ValueError:
            n = 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
