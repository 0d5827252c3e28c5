"""Atomic file writes: a run that stops (crash, SIGKILL, full disk) never leaves a half-written file.

Checkpoints, agents, configs and summaries are all written the same way: into a temporary file in the
same folder, flushed and fsync'ed, then renamed over the old file (a rename within a folder is atomic).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from qlearn.errors import QlearnError


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, what: str = "") -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error, it replaces ``path``.

    A failure (an ``OSError``: full disk, read-only folder) removes the temporary file, keeps the old
    ``path`` as it was, and becomes a one-line :class:`QlearnError` naming ``what`` and ``path``.
    """
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise QlearnError(f"cannot write {label}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        kept = f"; the previous {what or 'file'} is intact" if path.exists() else ""
        raise QlearnError(f"cannot write {label}: {exc.strerror or exc}{kept}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
