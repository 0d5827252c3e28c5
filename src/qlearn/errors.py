"""User-facing errors.

Everything a user can get wrong (an unknown environment, a bad ``--set`` value, a missing run folder)
raises :class:`QlearnError` with a one-line message that says what was wrong and what would be right.
The command line prints that line and exits non-zero without a traceback; library users can catch it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QlearnError(Exception):
    """A mistake in the user's input, reported as one clear line."""


class DivergenceError(QlearnError):
    """The loss or the Q-values stopped being finite numbers; ``step`` is the environment step."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean X, Y?)"`` for the closest choices, or an empty string."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)]
    if not close:
        close = [c for c in choices if name.lower() in c.lower()][:n]
    return f" (did you mean {', '.join(close)}?)" if close else ""
