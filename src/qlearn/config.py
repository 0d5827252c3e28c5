"""Typed, validated configuration.

Each agent has a dataclass of hyperparameters, checked when it is constructed, saved with every run as
JSON, and overridable from the command line with ``--set key=value``. A misspelt key or a value of the
wrong type or range is a :class:`~qlearn.errors.QlearnError`, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from qlearn.errors import QlearnError, did_you_mean

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")


def _check(cond: bool, name: str, what: str, value: Any) -> None:
    if not cond:
        raise QlearnError(f"invalid config value {name}={value!r}: must be {what}")


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of the DQN agent (all variants are flags of this one agent)."""

    gamma: float = 0.99
    """Discount factor of the TD target ``r + gamma * max_a' Q_target(s', a')``."""
    lr: float = 3e-4
    """Adam learning rate. 1e-3 learns FrozenLake faster but ends unstable for a third of seeds."""
    lr_end: float | None = None
    """If set, the learning rate decays linearly to it over ``lr_decay_steps`` env steps (the final network settles)."""
    lr_decay_steps: int = 50_000
    adam_eps: float = 1e-8
    """Adam's epsilon (Rainbow's 1.5e-4 steadies the steps of rarely updated weights)."""
    batch_size: int = 256
    """Minibatch size (on small networks a step costs about the same at 64 or 256)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the MLP Q-network; empty (``--set hidden=``) for a linear Q-function, which on a
    one-hot state (FrozenLake) is a table of Q-values learned by gradient steps."""
    buffer_size: int = 50_000
    """Replay memory capacity (oldest transitions are overwritten)."""
    learning_starts: int = 1_000
    """Warm-up: environment steps stored before the first gradient step."""
    train_freq: int = 4
    """Environment steps between training rounds."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    target_update_interval: int = 250
    """Gradient steps between hard copies of the online network into the target network. SB3 and CleanRL
    count env steps here: theirs = ours * train_freq / gradient_steps (qlearn.spec documents the port)."""
    tau: float = 1.0
    """Soft-update rate: 1.0 is a hard copy every ``target_update_interval``; below 1 blends every step."""
    double: bool = True
    """Double DQN: the online network picks a', the target network values it (less overestimation)."""
    dueling: bool = False
    """Dueling head: Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) from the last hidden layer (the input if none)."""
    n_step: int = 1
    """n-step returns: bootstrap after up to n rewards (faster credit assignment on sparse rewards)."""
    prioritized: bool = False
    """Prioritized replay (proportional, sum tree): replay surprising transitions more often."""
    per_alpha: float = 0.6
    """How strongly priorities shape sampling (0 = uniform)."""
    per_beta: float = 0.4
    """Initial importance-sampling exponent, annealed linearly to 1 over ``per_beta_steps`` env steps."""
    per_beta_steps: int = 100_000
    loss: Literal["mse", "huber"] = "mse"
    """TD loss: the course's squared error, or Huber (robust to large errors)."""
    max_grad_norm: float = 10.0
    """Gradient clipping per agent (0 disables)."""
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 10_000
    """Linear epsilon-greedy schedule over environment steps."""
    scale_obs: bool = True
    """Scale Box observations with finite bounds to [-1, 1]."""
    encoding: Literal["onehot", "scalar"] = "onehot"
    """For discrete observations: one-hot vectors (learns well) or the course's single normalised number."""
    network: Literal["auto", "mlp", "nature", "minatar"] = "auto"
    """The Q-network: ``mlp`` (hidden layers ``hidden``); for images ``nature`` (Mnih et al. 2015: 32x8x8/4,
    64x4x4/2, 64x3x3/1, then ``hidden``) or ``minatar`` (Young and Tian 2019: 16x3x3/1, then ``hidden``);
    ``auto``: an MLP for vectors, ``nature`` for frames of 36 pixels or more, ``minatar`` for smaller ones."""
    distributional: Literal["none", "c51", "qr"] = "none"
    """Learn each action's return distribution: ``c51`` (Bellemare et al. 2017: ``atoms`` returns evenly
    spaced in [v_min, v_max]) or ``qr`` (Dabney et al. 2018: ``quantiles``); Q is its mean, ``loss`` unused."""
    atoms: int = 51
    v_min: float | None = None
    """C51's support, ``v_min`` to ``v_max``; empty: from the env's rewards and gamma (FrozenLake: 0 to 1)."""
    v_max: float | None = None
    quantiles: int = 50
    noisy: bool = False
    """Noisy networks (Fortunato et al. 2018): learned factorised Gaussian noise per agent in the head's
    layers explores in place of epsilon (then unused); greedy acting and evaluation use the mean weights."""
    sigma0: float = 0.5
    """Noisy networks: the initial noise scale (``sigma0 / sqrt(fan_in)`` per weight)."""
    engine: Literal["auto", "numpy", "torch"] = "auto"
    """How a gradient step is computed. ``numpy``: a hand-written backward pass in numpy on views of the
    same torch tensors, several times faster for small networks on a CPU (CPU only, uniform replay);
    ``torch``: autograd (any device, every variant); ``auto``: numpy where it applies, torch otherwise."""

    def __post_init__(self) -> None:
        _validate_common(self)
        _check(self.engine in ("auto", "numpy", "torch"), "engine", "'auto', 'numpy' or 'torch'", self.engine)
        lacks = [
            what
            for what, on in (
                ("prioritized=true (the numpy step replays uniformly)", self.prioritized),
                ("a distributional head", self.distributional != "none"),
                ("noisy=true", self.noisy),
            )
            if on
        ]
        _check(
            self.engine != "numpy" or not lacks, "engine", f"'auto' or 'torch' with {(lacks or [''])[0]}", self.engine
        )
        _check(self.lr > 0, "lr", "> 0", self.lr)
        _check(self.adam_eps > 0 and math.isfinite(self.adam_eps), "adam_eps", "a finite number > 0", self.adam_eps)
        _check(
            self.lr_end is None or 0 <= self.lr_end <= self.lr, "lr_end", f"empty or in [0, lr={self.lr}]", self.lr_end
        )
        _check(self.lr_decay_steps >= 1, "lr_decay_steps", ">= 1", self.lr_decay_steps)
        _check(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)
        _check(
            all(h >= 1 for h in self.hidden),
            "hidden",
            "positive layer widths, e.g. 64,64 (empty for a linear Q-function)",
            self.hidden,
        )
        _check(
            self.buffer_size >= self.batch_size, "buffer_size", f">= batch_size ({self.batch_size})", self.buffer_size
        )
        _check(self.learning_starts >= 0, "learning_starts", ">= 0", self.learning_starts)
        _check(self.train_freq >= 1, "train_freq", ">= 1", self.train_freq)
        _check(self.gradient_steps >= 1, "gradient_steps", ">= 1", self.gradient_steps)
        _check(self.target_update_interval >= 1, "target_update_interval", ">= 1", self.target_update_interval)
        _check(0 < self.tau <= 1, "tau", "in (0, 1]", self.tau)
        _check(self.n_step >= 1, "n_step", ">= 1", self.n_step)
        _check(0 <= self.per_alpha <= 1, "per_alpha", "in [0, 1]", self.per_alpha)
        _check(0 <= self.per_beta <= 1, "per_beta", "in [0, 1]", self.per_beta)
        _check(self.per_beta_steps >= 1, "per_beta_steps", ">= 1", self.per_beta_steps)
        _check(self.loss in ("mse", "huber"), "loss", "'mse' or 'huber'", self.loss)
        _check(self.max_grad_norm >= 0, "max_grad_norm", ">= 0 (0 disables clipping)", self.max_grad_norm)
        _check(self.encoding in ("onehot", "scalar"), "encoding", "'onehot' or 'scalar'", self.encoding)
        networks = ("auto", "mlp", "nature", "minatar")
        _check(self.network in networks, "network", "one of " + ", ".join(networks), self.network)
        _check(self.sigma0 > 0 and math.isfinite(self.sigma0), "sigma0", "a finite number > 0", self.sigma0)
        kinds = ("none", "c51", "qr")
        _check(self.distributional in kinds, "distributional", "'none', 'c51' or 'qr'", self.distributional)
        _check(self.atoms >= 2, "atoms", ">= 2", self.atoms)
        _check(self.quantiles >= 1, "quantiles", ">= 1", self.quantiles)
        lo, hi = self.v_min, self.v_max
        _check(lo is None or math.isfinite(lo), "v_min", "a finite number or empty (from the env)", lo)
        _check(hi is None or math.isfinite(hi), "v_max", "a finite number or empty (from the env)", hi)
        _check(lo is None or hi is None or lo < hi, "v_max", f"> v_min ({lo})", hi)


@dataclass(frozen=True)
class TabularConfig:
    """Hyperparameters of the tabular Q-learning agent (the course's "last week" agent)."""

    gamma: float = 0.99
    """Discount factor."""
    alpha: float = 0.1
    """Learning rate of ``Q[s,a] += alpha * (target - Q[s,a])``."""
    alpha_end: float = 0.01
    """Learning rate decays linearly to this over ``alpha_decay_steps`` (a constant rate keeps the
    table noisy on a slippery lake; a decaying one lets it settle)."""
    alpha_decay_steps: int = 100_000
    bins: tuple[int, ...] = ()
    """Continuous observations: uniform bins per dimension (one count for all, or one per dimension)."""
    bin_low: tuple[float, ...] = ()
    bin_high: tuple[float, ...] = ()
    """Range binned per dimension (default: the observation space's bounds, where finite)."""
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 50_000
    """Linear epsilon-greedy schedule over environment steps."""

    def __post_init__(self) -> None:
        _validate_common(self)
        _check(0 < self.alpha <= 1, "alpha", "in (0, 1]", self.alpha)
        _check(0 <= self.alpha_end <= self.alpha, "alpha_end", f"in [0, alpha={self.alpha}]", self.alpha_end)
        _check(self.alpha_decay_steps >= 1, "alpha_decay_steps", ">= 1", self.alpha_decay_steps)
        _check(all(b >= 1 for b in self.bins), "bins", "positive counts, e.g. 20,20", self.bins)
        _check(
            len(self.bin_low) == len(self.bin_high),
            "bin_low/bin_high",
            "the same length",
            (self.bin_low, self.bin_high),
        )
        _check(
            all(lo < hi for lo, hi in zip(self.bin_low, self.bin_high)),
            "bin_low/bin_high",
            "finite with bin_low < bin_high in every dimension",
            (self.bin_low, self.bin_high),
        )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        return isinstance(value, tuple) and all(_matches(v, typing.get_args(hint)[0]) for v in value)
    if origin in (types.UnionType, typing.Union):
        return any(value is None if a is type(None) else _matches(value, a) for a in typing.get_args(hint))
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if origin is tuple:
        elem = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "numbers", str: "texts"}.get(elem, str(elem))
    if origin in (types.UnionType, typing.Union):
        return " or ".join("empty" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint, str(hint))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A config class's field types (resolved once: resolving string annotations costs ~0.5 ms a config)."""
    return typing.get_type_hints(cls)


def _check_types(cfg: Any) -> None:
    """Each field must have its declared type (a string where a number belongs fails here, clearly)."""
    cls: type = type(cfg)
    hints = _hints(cls)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not _matches(value, hints[f.name]):
            raise QlearnError(f"invalid config value {f.name}={value!r}: must be {_describe(hints[f.name])}")


def _finite_floats(cfg: Any) -> None:
    """Every float setting must be a finite number (NaN or infinity would only surface mid-run)."""
    _check_types(cfg)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise QlearnError(f"invalid config value {f.name}={value!r}: must be a finite number")
        if isinstance(value, tuple) and any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise QlearnError(f"invalid config value {f.name}={value!r}: must be finite numbers")


def _validate_common(cfg: Any) -> None:
    _finite_floats(cfg)
    _check(0 <= cfg.gamma <= 1, "gamma", "in [0, 1]", cfg.gamma)
    _check(0 <= cfg.epsilon_start <= 1, "epsilon_start", "in [0, 1]", cfg.epsilon_start)
    _check(0 <= cfg.epsilon_end <= 1, "epsilon_end", "in [0, 1]", cfg.epsilon_end)
    _check(cfg.epsilon_decay_steps >= 1, "epsilon_decay_steps", ">= 1", cfg.epsilon_decay_steps)


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and how to judge and keep the agent."""

    steps: int = 50_000
    """Environment steps per agent."""
    eval_every: int = 2_000
    """Steps between evaluations (exact on tabular environments, sampled episodes otherwise)."""
    eval_episodes: int = 50
    """Episodes per sampled evaluation where no exact model exists."""
    keep_best: bool = True
    """End the run with the best evaluated agent rather than the last one (saved as ``agent.pt``)."""
    checkpoint_every: int = 10_000
    """Steps between resumable checkpoints (``qlearn train --resume RUN_DIR``); 0 turns them off."""
    seed: int = 0

    def __post_init__(self) -> None:
        _finite_floats(self)
        _check(self.steps >= 1, "steps", ">= 1", self.steps)
        _check(self.eval_every >= 1, "eval_every", ">= 1", self.eval_every)
        _check(self.eval_episodes >= 1, "eval_episodes", ">= 1", self.eval_episodes)
        _check(self.seed >= 0, "seed", ">= 0", self.seed)
        _check(self.checkpoint_every >= 0, "checkpoint_every", ">= 0 (0 disables)", self.checkpoint_every)


def _parse_value(name: str, raw: str, annotation: Any) -> Any:
    """Convert the text of ``--set name=raw`` to the field's declared type."""
    hint = annotation
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            val = float(raw)
            if not val.is_integer():
                raise ValueError
            return int(val)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if origin is Literal:
            options = typing.get_args(hint)
            if raw not in options:
                raise QlearnError(f"invalid value for {name}: {raw!r}; choose one of {', '.join(map(str, options))}")
            return raw
        if origin is tuple:
            elem = typing.get_args(hint)[0]
            parts = [p for p in raw.replace("x", ",").split(",") if p.strip()]
            return tuple(elem(float(p)) if elem is int and float(p).is_integer() else elem(p) for p in parts)
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in typing.get_args(hint) if a is not type(None)]
            if raw.strip().lower() in ("none", "null", ""):
                return None
            return _parse_value(name, raw, inner[0])
    except QlearnError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError):
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(hint, "e.g. 64,64")
        raise QlearnError(f"invalid value for {name}: {raw!r} is not {kind}") from None
    return raw


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def with_overrides(cfg: C, overrides: dict[str, Any] | None = None, **kwargs: Any) -> C:
    """Return a copy of ``cfg`` with fields replaced; unknown keys are a clear error."""
    changes = {**(overrides or {}), **kwargs}
    names = field_names(type(cfg))
    for key in changes:
        if key not in names:
            raise QlearnError(f"unknown setting {key!r} for {type(cfg).__name__}{did_you_mean(key, names)}")
    try:
        return dataclasses.replace(cfg, **changes)
    except TypeError as exc:  # pragma: no cover - defensive
        raise QlearnError(str(exc)) from None


def parse_sets(items: list[str], *classes: type) -> list[dict[str, Any]]:
    """Split ``["lr=1e-3", "steps=20000"]`` into one typed dict per dataclass in ``classes``.

    A key belongs to the first class that declares it; a key no class declares is an error that lists
    the closest known keys.
    """
    out: list[dict[str, Any]] = [{} for _ in classes]
    hints = [typing.get_type_hints(c) for c in classes]
    known = [n for c in classes for n in field_names(c)]
    for item in items:
        if "=" not in item:
            raise QlearnError(f"bad --set {item!r}: expected key=value, e.g. --set lr=0.001")
        key, raw = item.split("=", 1)
        key = key.strip()
        for i, cls in enumerate(classes):
            if key in hints[i] and key in field_names(cls):
                out[i][key] = _parse_value(key, raw.strip(), hints[i][key])
                break
        else:
            raise QlearnError(
                f"unknown setting {key!r} in --set{did_you_mean(key, known)}; known: {', '.join(sorted(set(known)))}"
            )
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config from :func:`to_dict` output, with the same validation."""
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise QlearnError(f"unknown setting {unknown[0]!r} in saved {cls.__name__}{did_you_mean(unknown[0], names)}")
    fixed = {k: tuple(v) if typing.get_origin(hints[k]) is tuple else v for k, v in data.items()}
    return cls(**fixed)


__all__ = ["DQNConfig", "TabularConfig", "TrainConfig", "with_overrides", "parse_sets", "to_dict", "from_dict"]
