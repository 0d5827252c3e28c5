"""What qlearn knows about an environment beyond its spaces, kept in one table.

Scoring, printing and drawing need a few facts that Gymnasium does not expose: what counts as a
successful episode, what the actions are called, and how to read a grid world's map (``desc``) so a
policy can be drawn on it. :data:`ENV_INFO` holds them per environment family, keyed by the id without
its namespace and version (``FrozenLake`` for ``FrozenLake-v1``, ``CartPole`` for
``phys2d/CartPole-v1``); an exact id (``MyEnv-v2``) may have its own entry and wins over its family.
Every other env gets :data:`DEFAULT_INFO`: a success is a positive return at a true termination, the
actions have no names, and a ``desc`` map with one tile per state is read as FrozenLake's (tiles
``SFHG``; actions left, down, right, up). Adding an env is one entry (or :func:`register_env_info`).
Look-ups go through :func:`env_info`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qlearn.errors import QlearnError

SUCCESS_KINDS = {
    "positive_return": "the return is positive (a goal reward was collected)",
    "terminated": "the episode terminated (the goal state ends it, e.g. the car reached the flag)",
    "survived": "the time limit truncated the episode and it never terminated (the pole stayed up)",
    "positive_termination": "the episode terminated with a positive return",
}
"""The named success criteria an :class:`EnvInfo` can use, with what each means."""

_STEP_NAMES = {(0, -1): "left", (1, 0): "down", (0, 1): "right", (-1, 0): "up"}
_STEP_ARROWS = {(0, -1): "←", (1, 0): "↓", (0, 1): "→", (-1, 0): "↑"}


@dataclass(frozen=True)
class GridInfo:
    """How to read a grid world's map: one tile per state, row-major (state = row * columns + column).

    ``moves[a]`` is the (row, column) step action ``a`` tries; ``tiles`` are the letters a map may use,
    with ``start`` and ``goal`` among them; ``ends`` are the tiles an episode ends on (drawn as they are,
    never with an arrow); ``example`` is a valid map for error messages.
    """

    moves: tuple[tuple[int, int], ...]
    tiles: str = "SFHG"
    start: str = "S"
    goal: str = "G"
    ends: str = "HG"
    example: str = "SFFF,FHFH,FFFH,HFFG"

    @property
    def move_names(self) -> tuple[str, ...]:
        """Each action named by its step: left, down, right, up."""
        return tuple(_STEP_NAMES.get(m, f"a{i}") for i, m in enumerate(self.moves))

    @property
    def arrows(self) -> tuple[str, ...]:
        """Each action drawn as an arrow (``?`` for a step that is not one of the four directions)."""
        return tuple(_STEP_ARROWS.get(m, "?") for m in self.moves)

    def action_of_step(self, step: tuple[int, int]) -> int | None:
        """The action that tries ``step`` (e.g. ``(0, -1)``, left), or None if no action does."""
        return self.moves.index(step) if step in self.moves else None

    def target(self, desc: np.ndarray, state: int, action: int) -> int:
        """The state ``action`` leads to from ``state`` when it moves as meant (clipped at the edges)."""
        rows, cols = np.asarray(desc).shape
        r, c = divmod(state, cols)
        dr, dc = self.moves[action]
        return min(max(r + dr, 0), rows - 1) * cols + min(max(c + dc, 0), cols - 1)

    def draw(self, desc: np.ndarray, policy: np.ndarray | None = None, player: int | None = None) -> list[str]:
        """The map as text rows: a policy's arrows on tiles that do not end the episode, ``P`` at ``player``."""
        desc = np.asarray(desc).astype(str)
        rows, cols = desc.shape
        arrows = self.arrows
        lines = []
        for r in range(rows):
            cells = []
            for c in range(cols):
                s, tile = r * cols + c, desc[r, c]
                if s == player:
                    cells.append("P")
                elif policy is not None and tile not in self.ends:
                    cells.append(arrows[int(policy[s])])
                else:
                    cells.append(tile)
            lines.append(" ".join(cells))
        return lines

    def parse_map(self, text: str) -> list[str]:
        """Rows of a map typed as ``SFFF,FHFH,...`` (``;`` separates too), checked; one-line error if bad."""
        rows = [r.strip() for r in text.replace(";", ",").split(",") if r.strip()]
        if len({len(r) for r in rows}) != 1 or any(set(r) - set(self.tiles) for r in rows):
            raise QlearnError(
                f"bad --map {text!r}: rows of equal length using {', '.join(self.tiles)}, e.g. {self.example}"
            )
        if sum(r.count(self.start) for r in rows) != 1 or sum(r.count(self.goal) for r in rows) < 1:
            raise QlearnError(
                f"bad --map {text!r}: it needs exactly one {self.start} (start) and at least one {self.goal} (goal)"
            )
        return rows


FROZEN_LAKE_GRID = GridInfo(moves=((0, -1), (1, 0), (0, 1), (-1, 0)))
"""FrozenLake's map: tiles S(tart), F(rozen), H(ole), G(oal); actions left, down, right, up."""


@dataclass(frozen=True)
class EnvInfo:
    """The facts about an environment family that qlearn's scoring, printing and drawing use.

    ``success``: one of :data:`SUCCESS_KINDS`. ``action_names``: what the actions are called, in order
    (None: unknown). ``grid``: how to read the env's ``desc`` as a map, or None where it never is one
    (Taxi's ASCII art). ``return_is_success``: an episode's return is 1 on success and 0 otherwise, so
    the exact expected return of a policy is its success probability. ``option_hint``: what a bad
    ``gym.make`` keyword value error adds.
    """

    success: str = "positive_termination"
    action_names: tuple[str, ...] | None = None
    grid: GridInfo | None = field(default=FROZEN_LAKE_GRID)
    return_is_success: bool = False
    option_hint: str = ""

    def __post_init__(self) -> None:
        if self.success not in SUCCESS_KINDS:
            raise QlearnError(f"unknown success kind {self.success!r}; known: {', '.join(SUCCESS_KINDS)}")

    def succeeded(self, returns: Any, terminated: Any, truncated: Any) -> np.ndarray:
        """Whether each episode (arrays of the same shape) is a success by this env's criterion."""
        returns = np.asarray(returns)
        terminated, truncated = np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool)
        if self.success == "positive_return":
            return returns > 0
        if self.success == "terminated":
            return terminated
        if self.success == "survived":
            return truncated & ~terminated
        return terminated & (returns > 0)

    def names_for(self, n_actions: int) -> tuple[str, ...] | None:
        """Names of ``n_actions`` actions for a table's columns: the known names, else the grid moves' names
        (left, down, right, up for the default), else None."""
        if self.action_names is not None and len(self.action_names) == n_actions:
            return self.action_names
        if self.grid is not None and len(self.grid.moves) == n_actions:
            return self.grid.move_names
        return None


_FROZEN_LAKE = EnvInfo(
    success="positive_return",
    action_names=("left", "down", "right", "up"),
    return_is_success=True,
    option_hint="FrozenLake maps: 4x4, 8x8, or a custom desc",
)
_CLIFF_WALKING = EnvInfo(success="positive_return", action_names=("up", "right", "down", "left"), grid=None)

ENV_INFO: dict[str, EnvInfo] = {
    "FrozenLake": _FROZEN_LAKE,
    "FrozenLake8x8": _FROZEN_LAKE,
    "CliffWalking": _CLIFF_WALKING,  # no desc map; every return is negative, so no episode is a success
    "CliffWalkingSlippery": _CLIFF_WALKING,
    "Taxi": EnvInfo(
        success="positive_return", action_names=("south", "north", "east", "west", "pickup", "drop"), grid=None
    ),  # its desc is ASCII art, not one tile per state
    "MountainCar": EnvInfo(success="terminated", action_names=("push left", "no push", "push right"), grid=None),
    "MountainCarContinuous": EnvInfo(success="terminated", grid=None),
    "Acrobot": EnvInfo(success="terminated", action_names=("torque -1", "torque 0", "torque +1"), grid=None),
    "CartPole": EnvInfo(success="survived", action_names=("push left", "push right"), grid=None),
    "LunarLander": EnvInfo(action_names=("nothing", "left engine", "main engine", "right engine"), grid=None),
}
"""Known environment families (id without namespace and version) or exact ids, and their facts."""

DEFAULT_INFO = EnvInfo()
"""For an env the table does not know: success is a positive return at a true termination; a ``desc`` map
with one tile per state is read as FrozenLake's."""

_VERSION = re.compile(r"-v\d+$")


def base_name(env_id: str) -> str:
    """The family of an id: ``FrozenLake`` of ``FrozenLake-v1``, ``Pong`` of ``ALE/Pong-v5``, ``Corridor`` of
    ``my_pkg.envs:Corridor-v0``."""
    return _VERSION.sub("", env_id.rpartition(":")[2].rpartition("/")[2])


def env_info(env_id_or_env: Any) -> EnvInfo:
    """The :class:`EnvInfo` of an env id or a Gymnasium env: its exact id's entry, else its family's,
    else :data:`DEFAULT_INFO`."""
    if isinstance(env_id_or_env, str):
        env_id = env_id_or_env
    else:
        spec = getattr(env_id_or_env, "spec", None) or getattr(getattr(env_id_or_env, "unwrapped", None), "spec", None)
        if spec is None:
            return DEFAULT_INFO
        env_id = spec.id
    exact = env_id.rpartition(":")[2]
    return (
        ENV_INFO.get(exact) or ENV_INFO.get(exact.rpartition("/")[2]) or ENV_INFO.get(base_name(env_id)) or DEFAULT_INFO
    )


def register_env_info(name: str, info: EnvInfo) -> None:
    """Add or replace the entry of a family (``MyGrid``) or an exact id (``MyGrid-v1``)."""
    if not isinstance(info, EnvInfo):
        raise QlearnError(f"register_env_info needs an EnvInfo, got {type(info).__name__}")
    ENV_INFO[name] = info


def grid_map(env: Any) -> np.ndarray | None:
    """The env's map as a ``[rows, columns]`` array of tile letters, or None where it has none to draw.

    A map is the env's ``desc`` with one tile per state, on an env whose info reads grids with one move
    per action (FrozenLake; a user's grid world with a ``desc`` is read like FrozenLake's by default).
    """
    info = env_info(env)
    desc = getattr(getattr(env, "unwrapped", env), "desc", None)
    n_states = getattr(env.observation_space, "n", None)
    if info.grid is None or desc is None or n_states is None:
        return None
    desc = np.asarray(desc)
    if desc.ndim != 2 or desc.size != int(n_states) or len(info.grid.moves) != int(env.action_space.n):
        return None
    return desc.astype(str)
