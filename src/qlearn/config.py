"""Typed, validated configuration.

Each agent has a dataclass of hyperparameters, checked when it is constructed, saved with every run as
JSON, and overridable from the command line with ``--set key=value``. A misspelt key or a value of the
wrong type or range is a :class:`~qlearn.errors.QlearnError`, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from qlearn.errors import QlearnError
from qlearn.settings import check_types, field_names, from_dict, parse_sets, to_dict, with_overrides


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
    kappa: float = 1.0
    """QR's quantile Huber threshold: errors below it are squared, above it absolute (1: the QR-DQN paper's and
    sb3-contrib's; near 0 the loss is plain quantile regression)."""
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
        _check(self.kappa > 0, "kappa", "> 0", self.kappa)
        lo, hi = self.v_min, self.v_max
        _check(lo is None or math.isfinite(lo), "v_min", "a finite number or empty (from the env)", lo)
        _check(hi is None or math.isfinite(hi), "v_max", "a finite number or empty (from the env)", hi)
        _check(lo is None or hi is None or lo < hi, "v_max", f"> v_min ({lo})", hi)

    def unused(self) -> dict[str, str]:
        """Settings that other settings make unused (name -> why), said in ``config.json`` and when a run
        starts rather than ignored silently."""
        out = {}
        if self.noisy:
            why = "noisy=true: the noisy layers explore, epsilon is 0"
            out.update(dict.fromkeys(("epsilon_start", "epsilon_end", "epsilon_decay_steps"), why))
        if self.distributional != "none":
            out["loss"] = f"distributional={self.distributional} has its own loss"
        return out


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

    def unused(self) -> dict[str, str]:
        """Settings that other settings make unused: none for the tabular agent."""
        return {}

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


@dataclass(frozen=True)
class PQNConfig:
    """Hyperparameters of PQN (Gallici et al. 2024): Q(lambda) on short rollouts of N envs per agent, several
    epochs over minibatches of each rollout, LayerNorm in the Q-network, and neither replay memory nor a target
    network. Defaults are CleanRL's ``pqn.py``."""

    gamma: float = 0.99
    """Discount factor."""
    lr: float = 2.5e-4
    """RAdam learning rate, annealed linearly to ``lr_end`` over ``lr_decay_steps``."""
    lr_end: float = 0.0
    lr_decay_steps: int | None = None
    """Env steps per agent of the annealing; empty: the run's steps (CleanRL's ``anneal_lr``)."""
    rollout_steps: int = 128
    """T: steps of each env between updates; an update learns from the T x N transitions of one rollout."""
    epochs: int = 4
    """Passes over each rollout."""
    minibatches: int = 4
    """Minibatches per pass (each of T x N / minibatches transitions)."""
    q_lambda: float = 0.65
    """Q(lambda): a return mixes ``(1 - lambda)`` of the bootstrap ``max_a Q(s', a)`` with ``lambda`` of the next
    step's return, within the rollout and the episode (0: one-step Q-learning targets)."""
    max_grad_norm: float = 10.0
    """Gradient clipping per agent (0 disables)."""
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int | None = None
    """Linear epsilon-greedy schedule over env steps per agent; empty: half the run's steps."""
    hidden: tuple[int, ...] = (120, 84)
    """Hidden layer widths (CleanRL's), each followed by LayerNorm and ReLU."""
    layer_norm: bool = True
    """LayerNorm after every hidden layer: what keeps TD learning stable without a target network."""
    network: Literal["auto", "mlp", "nature", "minatar"] = "auto"
    """As DQN's ``network``."""
    encoding: Literal["onehot", "scalar"] = "onehot"
    scale_obs: bool = True

    # What the Q-network code shared with DQN asks of a config, fixed for PQN (not settings).
    dueling = False
    noisy = False
    distributional = "none"
    prioritized = False
    sigma0 = 0.5

    def __post_init__(self) -> None:
        _finite_floats(self)
        _check(0 <= self.gamma <= 1, "gamma", "in [0, 1]", self.gamma)
        _check(self.lr > 0, "lr", "> 0", self.lr)
        _check(0 <= self.lr_end <= self.lr, "lr_end", f"in [0, lr={self.lr}]", self.lr_end)
        for name in ("lr_decay_steps", "epsilon_decay_steps"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, ">= 1 or empty (from the run's steps)", value)
        _check(self.rollout_steps >= 1, "rollout_steps", ">= 1", self.rollout_steps)
        _check(self.epochs >= 1, "epochs", ">= 1", self.epochs)
        _check(self.minibatches >= 1, "minibatches", ">= 1", self.minibatches)
        _check(0 <= self.q_lambda <= 1, "q_lambda", "in [0, 1]", self.q_lambda)
        _check(self.max_grad_norm >= 0, "max_grad_norm", ">= 0 (0 disables clipping)", self.max_grad_norm)
        _check(0 <= self.epsilon_start <= 1, "epsilon_start", "in [0, 1]", self.epsilon_start)
        _check(0 <= self.epsilon_end <= 1, "epsilon_end", "in [0, 1]", self.epsilon_end)
        _check(
            all(h >= 1 for h in self.hidden),
            "hidden",
            "positive layer widths, e.g. 120,84 (empty for a linear Q-function)",
            self.hidden,
        )
        _check(self.encoding in ("onehot", "scalar"), "encoding", "'onehot' or 'scalar'", self.encoding)
        networks = ("auto", "mlp", "nature", "minatar")
        _check(self.network in networks, "network", "one of " + ", ".join(networks), self.network)

    def unused(self) -> dict[str, str]:
        """Settings that other settings make unused: none for PQN."""
        return {}


def _finite_floats(cfg: Any) -> None:
    """Every float setting must be a finite number (NaN or infinity would only surface mid-run)."""
    check_types(cfg)
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
    select_by: Literal["episodes", "model"] = "episodes"
    """What scores the agent for keep-best and the stop rules: ``episodes``, greedy evaluation episodes (the
    env's model, where it has one, only reports exact scores beside them); ``model``, the exact score from the
    env's model (no sampling noise, but the truth then chooses what the run delivers: labelled as such)."""
    until: float | None = None
    """Stop once every agent's evaluation reaches this score: its exact score, or the lower end of the 95%
    confidence interval of its evaluation episodes' mean return. Empty: no such stop."""
    patience: int = 0
    """Stop once no agent's best score has risen for this many evaluations in a row (0: never)."""
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
        _check(self.patience >= 0, "patience", ">= 0 evaluations (0 disables)", self.patience)
        _check(self.select_by in ("episodes", "model"), "select_by", "'episodes' or 'model'", self.select_by)


__all__ = [
    "DQNConfig",
    "PQNConfig",
    "TabularConfig",
    "TrainConfig",
    "field_names",
    "with_overrides",
    "parse_sets",
    "to_dict",
    "from_dict",
]
