"""Thread counts of torch and of numpy's BLAS.

Small networks are overhead-bound: on a 2-core machine with anything else running, two torch threads
made small updates ~17x slower while one thread stayed fast. The same holds for numpy's OpenBLAS, which
the numpy gradient step uses (a 1x256 step went from 0.5 ms to 5.6 ms with its default threads while
another process ran). qlearn therefore uses one thread for both unless ``QLEARN_THREADS`` says otherwise.
"""

from __future__ import annotations

import os

import torch


def default_threads() -> int:
    """``$QLEARN_THREADS`` if it is a positive integer, else 1."""
    try:
        return max(1, int(os.environ.get("QLEARN_THREADS", "1")))
    except ValueError:
        return 1


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads and numpy's BLAS threads to ``n`` (default: ``$QLEARN_THREADS`` or 1);
    returns the value."""
    n = default_threads() if n is None else n
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    limit_blas_threads(n)
    return n


_blas_limit: int | None = None


def limit_blas_threads(n: int | None = None) -> None:
    """Limit numpy's BLAS to ``n`` threads, once per value. Without ``n``: the default of
    :func:`configure_threads`, unless a limit was already set (e.g. by ``configure_threads(4)``)."""
    global _blas_limit
    if n is None and _blas_limit is not None:
        return
    n = default_threads() if n is None else n
    if _blas_limit == n:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional at run time: without it BLAS keeps its own default
        return
    threadpool_limits(limits=n, user_api="blas")
    _blas_limit = n
