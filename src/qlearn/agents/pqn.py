"""PQN (Gallici et al. 2024): Q-learning on short rollouts of many envs, without replay memory or a target network.

Each of K agents acts in its N envs for ``rollout_steps`` (T) steps; the T x N transitions are kept in a
rollout memory ``[K, T, N, ...]`` (preallocated once, overwritten every rollout). Then the Q(lambda)
returns of the rollout are computed with the current network (:func:`lambda_returns`), and the network
is trained for ``epochs`` passes over ``minibatches`` minibatches of it, each agent shuffling with its
own stream. LayerNorm in every hidden layer keeps this stable where DQN needs a target network; the
many envs decorrelate the data where DQN needs replay memory.

The agent shares DQN's acting (epsilon-greedy, the numpy forward on the CPU), inspection (``q_table``),
selection and files, so it fits the same trainer, scorer, keep-best and checkpoints: it is a
:class:`~qlearn.agents.dqn.DQNAgent` whose ``observe`` collects rollouts instead of filling a replay
memory, with RAdam in place of Adam and its network as its own bootstrap (``target`` is ``net``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qlearn.agents.base import linear_schedule
from qlearn.agents.dqn import DQNAgent
from qlearn.agents.guard import DivergenceGuard
from qlearn.agents.numpy_step import init_adam_state
from qlearn.agents.update import Update
from qlearn.buffers.memory import check_memory
from qlearn.config import PQNConfig, TrainConfig
from qlearn.envs.encoding import Encoder
from qlearn.errors import QlearnError
from qlearn.nets import make_q_network
from qlearn.rng import Stream

ROLLOUT_KEYS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")


def lambda_returns(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Q(lambda) returns of a rollout ``[..., T, N]`` (time on dim -2), from its last step back.

    ``next_values[t]`` is ``max_a Q(s_{t+1}, a)`` of the observation after step t (the final one where an
    episode ended). A terminated step's return is its reward; a truncated step and the rollout's last step
    bootstrap on ``next_values`` alone; any other mixes ``lam`` of the next step's return with
    ``1 - lam`` of ``next_values``: ``G_t = r_t + gamma * (lam * G_{t+1} + (1 - lam) * next_values_t)``."""
    steps = rewards.shape[-2]
    out = torch.empty_like(rewards)
    alive = (~terminated).to(rewards.dtype)
    for t in reversed(range(steps)):
        mix = next_values[..., t, :]
        if t < steps - 1:
            goes_on = ~(terminated[..., t, :] | truncated[..., t, :])
            mix = torch.where(goes_on, lam * out[..., t + 1, :] + (1.0 - lam) * mix, mix)
        out[..., t, :] = rewards[..., t, :] + gamma * alive[..., t, :] * mix
    return out


class PQNAgent(DQNAgent):
    """K independent PQN agents in stacked tensors (``seeds``: one agent per seed), N envs each."""

    kind = "pqn"
    config_class: Any = PQNConfig
    config: Any

    def __init__(
        self,
        encoder: Encoder,
        n_actions: int,
        config: PQNConfig | None = None,
        *,
        seeds: Sequence[int] = (0,),
        device: str | torch.device = "cpu",
        env_id: str | None = None,
    ) -> None:
        self.config = cfg = config or PQNConfig()
        self.encoder, self.n_actions = encoder, int(n_actions)
        self.seeds = tuple(int(s) for s in seeds)
        self.k = len(self.seeds)
        self.device = torch.device(device)
        self.env_id = env_id
        try:
            net = make_q_network(
                encoder, self.n_actions, cfg.network, cfg.hidden, self.seeds, False, layer_norm=cfg.layer_norm
            )
        except ValueError as exc:
            raise QlearnError(f"invalid config value network={cfg.network!r}: {exc}") from None
        self.net = self.target = net.to(self.device)  # no target network: the network bootstraps itself
        self._params = self._listed(self.net)
        self._target_params: list[torch.Tensor] = []
        self.optimizer = torch.optim.RAdam(self._params, lr=cfg.lr)
        init_adam_state(self.optimizer)  # (RAdam keeps Adam's moments under the same names)
        self._update = Update(self._params, self.optimizer)
        self.explore_rng = Stream(self.seeds, salt=2, device=self.device)
        self.sample_rng = Stream(self.seeds, salt=1, device=self.device)
        self.guard = DivergenceGuard(self.k)
        self.steps = 0  # environment steps per agent
        self.updates = 0  # gradient steps
        self._since_train = 0
        self._last_loss: torch.Tensor | None = None
        self.greedy = False
        self._rollout: dict[str, torch.Tensor] | None = None  # allocated by the first observe, for its N envs
        self._t = 0  # steps of the current rollout stored so far
        self.plan(TrainConfig.steps)

    def plan(self, steps: int) -> None:
        """The run's length (env steps per agent), which empty ``epsilon_decay_steps`` (half of it) and
        ``lr_decay_steps`` (all of it) come from; the trainer calls this before the first step."""
        cfg = self.config
        self.epsilon_steps = cfg.epsilon_decay_steps or max(int(steps) // 2, 1)
        self.lr_steps = cfg.lr_decay_steps or max(int(steps), 1)

    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end, self.epsilon_steps, self.steps)

    # --------------------------------------------------------------- learning
    def _as_features(self, obs: Any) -> torch.Tensor:
        """Raw observations ``[K, N, ...]`` (numpy, or tensors on a device) as features on the agent's device."""
        if isinstance(obs, torch.Tensor):
            k, n = obs.shape[:2]
            return self.encoder.tensor(obs.to(self.device)).reshape(k, n, *self.encoder.feature_shape)
        return self._features(obs)

    def rollout_bytes(self, n_envs: int) -> int:
        """Bytes of the rollout memory of these K agents for ``n_envs`` envs each (before allocating)."""
        enc = self.encoder
        per_obs = int(np.prod(enc.feature_shape)) * (1 if enc.image else 4)
        return self.k * self.config.rollout_steps * n_envs * (2 * per_obs + 8 + 4 + 2)

    def _allocate(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        k, n = obs.shape[:2]
        cfg = self.config
        check_memory(self.rollout_bytes(n), self.device, "rollout_steps", cfg.rollout_steps, "the rollout memory")
        shape, dev = (k, cfg.rollout_steps, n), self.device
        return {
            "obs": torch.empty(*shape, *obs.shape[2:], dtype=obs.dtype, device=dev),
            "actions": torch.empty(shape, dtype=torch.int64, device=dev),
            "rewards": torch.empty(shape, dtype=torch.float32, device=dev),
            "next_obs": torch.empty(*shape, *obs.shape[2:], dtype=obs.dtype, device=dev),
            "terminated": torch.empty(shape, dtype=torch.bool, device=dev),
            "truncated": torch.empty(shape, dtype=torch.bool, device=dev),
        }

    def observe(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        episode_end: Any = None,
    ) -> None:
        """Store ``[K, N]`` transitions in the rollout; after ``rollout_steps`` of them, learn from it.

        ``terminated`` is what learning treats as terminal (an Atari life lost included); ``episode_end``
        is not needed: a rollout never bootstraps across a terminal or truncated step."""
        x = self._as_features(obs)
        n = x.shape[1]
        roll = self._rollout
        if roll is None or roll["obs"].shape[2] != n:
            if roll is not None and self._t:
                raise QlearnError(f"this agent's rollout holds transitions of {roll['obs'].shape[2]} envs, not {n}")
            self._rollout = roll = None  # free the old one first
            self._rollout = roll = self._allocate(x)
        t = self._t
        dev = self.device
        roll["obs"][:, t] = x
        roll["next_obs"][:, t] = self._as_features(next_obs)
        for key, val in (("actions", actions), ("rewards", rewards), ("terminated", terminated)):
            roll[key][:, t] = torch.as_tensor(val, device=dev).to(roll[key].dtype)
        roll["truncated"][:, t] = torch.as_tensor(truncated, device=dev).to(torch.bool)
        self._t += 1
        self.steps += n
        if self._t == self.config.rollout_steps:
            self._t = 0
            self.learn(roll, lr_at=self.steps - n * self.config.rollout_steps)

    def learn(self, roll: dict[str, torch.Tensor], lr_at: int | None = None) -> torch.Tensor:
        """Train on one rollout ``[K, T, N, ...]``: its Q(lambda) returns under the current network, then
        ``epochs`` passes of ``minibatches`` gradient steps; the last step's per-agent loss ``[K]``."""
        cfg = self.config
        k, steps, n = roll["actions"].shape
        size = steps * n
        obs = roll["obs"].reshape(k, size, *roll["obs"].shape[3:])
        with torch.no_grad():
            next_q = self.net(roll["next_obs"].reshape(obs.shape)).max(-1).values.reshape(k, steps, n)
            returns = lambda_returns(
                roll["rewards"], roll["terminated"], roll["truncated"], next_q, cfg.gamma, cfg.q_lambda
            ).reshape(k, size)
        actions = roll["actions"].reshape(k, size)
        rows = torch.arange(k, device=self.device).unsqueeze(1)
        lr = linear_schedule(cfg.lr, cfg.lr_end, self.lr_steps, self.steps if lr_at is None else lr_at)
        loss_k = torch.zeros(k, device=self.device)
        for _ in range(cfg.epochs):
            order = torch.argsort(self.sample_rng.uniform_torch(size), dim=1).to(self.device)
            for idx in order.tensor_split(min(cfg.minibatches, size), dim=1):
                q = self.net(obs[rows, idx]).gather(2, actions.gather(1, idx).unsqueeze(2)).squeeze(2)
                loss_k = (q - returns.gather(1, idx)).square().mean(dim=1)
                finite = torch.isfinite(loss_k)
                if not bool(finite.all()):
                    self._check_loss(loss_k.detach().cpu().numpy())  # freezes those agents (all: raises)
                    loss_k = torch.where(finite, loss_k, torch.zeros_like(loss_k))
                self.optimizer.zero_grad(set_to_none=False)
                loss_k.sum().backward()
                self._update(cfg.max_grad_norm, lr)
                self.updates += 1
                self.guard.restore()
        self._last_loss = loss_k.detach()
        return self._last_loss

    def train_step(self, batch: Any = None) -> torch.Tensor:
        raise QlearnError("PQN trains on whole rollouts (observe, learn), not on replayed minibatches")

    def sync_target(self) -> None:
        """Nothing to copy: PQN has no target network."""

    # ------------------------------------------------------------ selection and files
    def select(self, index: int) -> PQNAgent:
        """Agent ``index`` alone (K=1): its weights, optimiser state, streams and counters (not the
        unfinished rollout: a selected agent starts a new one)."""
        one = super().select(index)
        one.epsilon_steps, one.lr_steps = self.epsilon_steps, self.lr_steps
        return one

    def state_dict(self, *, include_buffer: bool = False) -> dict[str, Any]:
        """Weights, optimiser, counters, the schedules' lengths; with ``include_buffer`` (a training
        checkpoint) the rollout so far too, so a resumed run continues it bit for bit."""
        state: dict[str, Any] = {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "updates": self.updates,
            "last_loss": self._last_loss,
            "plan": [self.epsilon_steps, self.lr_steps],
        }
        if include_buffer:
            state["rollout_t"] = self._t
            if self._rollout is not None and self._t:
                state["rollout"] = {key: v[:, : self._t].cpu().clone() for key, v in self._rollout.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.net.state_dict()
        for key, val in state["net"].items():
            if key not in mine or mine[key].shape != val.shape:
                raise QlearnError(
                    f"checkpoint network does not fit this agent: net.{key} has shape {tuple(val.shape)}, "
                    f"expected {tuple(mine[key].shape) if key in mine else 'none'}"
                )
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if not self.optimizer.state:
            init_adam_state(self.optimizer)
        self.guard.rebind(self._guarded())  # the optimiser's moment tensors were replaced
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self._last_loss = state.get("last_loss")
        self.epsilon_steps, self.lr_steps = (int(x) for x in state["plan"])
        self._t = int(state.get("rollout_t", 0))
        saved = state.get("rollout")
        if saved is not None:
            part = {key: saved[key].to(self.device) for key in ROLLOUT_KEYS}
            self._rollout = self._allocate(part["obs"][:, 0])
            for key, val in part.items():
                self._rollout[key][:, : self._t] = val
