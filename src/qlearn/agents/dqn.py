"""Deep Q-Network agent: K independent DQNs in stacked tensors, one code path for K=1 and K>1.

Per environment step: epsilon-greedy actions from the online network; the transition goes to replay
memory; after ``learning_starts`` steps, every ``train_freq`` steps, ``gradient_steps`` minibatches
are trained on with the TD target of :func:`~qlearn.agents.targets.td_target` (Double DQN by flag),
MSE or Huber loss, per-agent gradient clipping, and a target network copied every
``target_update_interval`` gradient steps (or blended with ``tau`` < 1 every step).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch

from qlearn.agents.base import SingleStepAPI, check_fits, linear_schedule, read_checkpoint
from qlearn.agents.distributional import head_of, with_support
from qlearn.agents.dqn_memory import DQNMemory
from qlearn.agents.dqn_state import DQNState
from qlearn.agents.engine import make_engine
from qlearn.agents.guard import DivergenceGuard
from qlearn.agents.numpy_step import init_adam_state
from qlearn.agents.update import Update
from qlearn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from qlearn.buffers.memory import check_memory
from qlearn.buffers.replay import Batch
from qlearn.config import DQNConfig, from_dict
from qlearn.envs.encoding import Encoder, make_encoder
from qlearn.envs.make import discrete_size
from qlearn.envs.pixels import frame_stack_of
from qlearn.errors import DivergenceError, QlearnError
from qlearn.nets import StackedMLP, make_q_network
from qlearn.rng import Stream


class DQNAgent(SingleStepAPI, DQNMemory, DQNState):
    """DQN with replay memory and a target network; ``seeds`` gives one independent agent per seed."""

    kind = "dqn"
    config_class: Any = DQNConfig

    def __init__(
        self,
        encoder: Encoder,
        n_actions: int,
        config: DQNConfig | None = None,
        *,
        seeds: Sequence[int] = (0,),
        device: str | torch.device = "cpu",
        env_id: str | None = None,
    ) -> None:
        self.config = config or DQNConfig()
        self.encoder, self.n_actions = encoder, int(n_actions)
        self.seeds = tuple(int(s) for s in seeds)
        self.k = len(self.seeds)
        self.device = torch.device(device)
        self.env_id = env_id
        cfg = self.config
        try:
            net = make_q_network(
                encoder,
                self.n_actions,
                cfg.network,
                cfg.hidden,
                self.seeds,
                cfg.dueling,
                head_of(cfg),
                cfg.sigma0 if cfg.noisy else None,
            )
        except ValueError as exc:
            raise QlearnError(f"invalid config value network={cfg.network!r}: {exc}") from None
        self.net = net.to(self.device)
        self.target = copy.deepcopy(self.net)
        self.target.requires_grad_(False)
        if self.target.noise is not None:
            self.target.noise.reseed(self.seeds, salt=1)  # the target network's noise apart from the online's
        params = self._params = self._listed(self.net)
        self._target_params = self._listed(self.target)
        try:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, fused=True)
        except (RuntimeError, TypeError):  # fused Adam unavailable on this device/build
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps)
        init_adam_state(self.optimizer)  # every engine and the divergence guard see Adam's moments from the start
        self._update = Update(params, self.optimizer)
        self._buffer = None  # allocated when first used (agents loaded to act or be evaluated never need one)
        self._buffer_envs = 1
        check_memory(self.replay_bytes(1), self.device, "buffer_size", cfg.buffer_size)  # refused before training
        # Each agent's draws from streams keyed by its own seed (qlearn.rng): a seed draws the same
        # exploration and minibatches alone as in a group, and both gradient engines draw the same indices.
        self.explore_rng = Stream(self.seeds, salt=2, device=self.device)
        self.sample_rng = Stream(self.seeds, salt=1, device=self.device)
        self.engine = make_engine(self, cfg.engine)
        self.guard = DivergenceGuard(self.k)
        self.steps = 0  # environment steps per agent
        self.updates = 0  # gradient steps
        self._since_train = 0
        self._last_loss: torch.Tensor | None = None
        self.greedy = False

    @staticmethod
    def _listed(net: torch.nn.Module) -> list[torch.Tensor]:
        return list(net.parameters())  # (as list[Tensor]: torch's _foreach_* stubs take no list[Parameter])

    @classmethod
    def for_env(
        cls,
        env: gym.Env,
        config: DQNConfig | None = None,
        *,
        seed: int | None = None,
        seeds: Sequence[int] | None = None,
        device: str = "cpu",
    ) -> DQNAgent:
        """An agent shaped for ``env``'s observation and action spaces."""
        config = with_support(config or DQNConfig(), env)  # C51's support from the env's returns
        encoder = make_encoder(env.observation_space, config.encoding, config.scale_obs, stack=frame_stack_of(env))
        return cls(
            encoder,
            discrete_size(env.action_space),
            config,
            seeds=seeds or (seed or 0,),
            device=device,
            env_id=env.spec.id if env.spec else None,
        )

    # ----------------------------------------------------------------- acting
    @property
    def epsilon(self) -> float:
        c = self.config
        if c.noisy:  # the noisy layers explore
            return 0.0
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, self.steps)

    def _features(self, obs: np.ndarray) -> torch.Tensor:
        """Raw observations ``[K, N, ...]`` to features ``[K, N, dim]`` on the agent's device."""
        x = torch.from_numpy(np.ascontiguousarray(self._np_features(obs)))
        return x if self.device.type == "cpu" else x.to(self.device)

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``[K, N, A]`` for raw observations ``[K, N, ...]``."""
        return self.net(self._features(obs)).cpu().numpy()

    def act(self, obs: np.ndarray | torch.Tensor, *, greedy: bool = False) -> np.ndarray | torch.Tensor:
        """Epsilon-greedy actions ``[K, N]`` (greedy: argmax, first action on ties).

        Observations in a tensor on the agent's GPU get actions in a tensor there, drawn with the agent's
        torch generator: a batched env on the GPU and the agent then never copy through the CPU."""
        if isinstance(obs, torch.Tensor) and obs.device.type != "cpu":
            return self._act_on_device(obs, greedy)
        obs = np.asarray(obs)
        shape = obs.shape[:2]
        if self.config.noisy and not greedy:  # explore with a fresh draw of the noisy layers
            with torch.no_grad():
                return self.net(self._features(obs), noisy=True).argmax(-1).cpu().numpy()
        eps = 0.0 if greedy else self.epsilon
        if eps > 0.0:  # greedy acting draws nothing: evaluating must not shift the exploration stream
            u = self.explore_rng.uniform(shape[1], 2)
            explore = u[..., 0] < eps
            random_a = (u[..., 1] * self.n_actions).astype(np.int64)  # u < 1, so u * n < n: no clamp needed
            if explore.all():
                return random_a
        if self.device.type == "cpu" and (isinstance(self.net, StackedMLP) or self.net.small):
            best = self.net.forward_numpy(self._np_features(obs)).argmax(-1)
        else:
            with torch.no_grad():
                best = self.net(self._features(obs)).argmax(-1).cpu().numpy()
        return np.where(explore, random_a, best) if eps > 0.0 else best

    @torch.no_grad()
    def _act_on_device(self, obs: torch.Tensor, greedy: bool) -> torch.Tensor:
        eps = 0.0 if greedy else self.epsilon
        shape = obs.shape[:2]
        x = self.encoder.tensor(obs.to(self.device)).reshape(*shape, *self.encoder.feature_shape)
        best = self.net(x, self.config.noisy and not greedy).argmax(-1)
        if eps <= 0.0:
            return best
        u = self.explore_rng.uniform_torch(shape[1], 2)
        random_a = (u[..., 1] * self.n_actions).to(torch.int64).clamp_(max=self.n_actions - 1)
        return torch.where(u[..., 0] < eps, random_a, best)

    # --------------------------------------------------------------- learning
    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        episode_end: np.ndarray | None = None,
    ) -> None:
        """Store ``[K, N]`` transitions (numpy, or tensors on the agent's device) and train when due.

        ``terminated`` is what learning treats as terminal (an Atari life lost included); ``episode_end``,
        where it differs, says which envs really reset (image memory rebuilds frame stacks by episode)."""
        if not isinstance(actions, torch.Tensor):
            actions = np.asarray(actions)
        n = actions.shape[1]
        if self._buffer is None:
            self._buffer_envs = n  # allocated below for this many envs at once
        elif n != self.buffer.n_envs:
            if len(self.buffer):
                raise QlearnError(
                    f"this agent's replay memory holds transitions of {self.buffer.n_envs} envs per step, not {n}"
                )
            del self.buffer  # free the empty memory first: two at once would double the peak
            self.buffer = self._make_buffer(n_envs=n)
        extra = {} if episode_end is None or not self.encoder.image else {"episode_end": episode_end}
        self.buffer.store(self._stored(obs), actions, rewards, self._stored(next_obs), terminated, truncated, **extra)
        self.steps += n
        if self.steps < self.config.learning_starts:
            return
        self._since_train += n
        while self._since_train >= self.config.train_freq:
            self._since_train -= self.config.train_freq
            for _ in range(self.config.gradient_steps):
                self.train_step()

    def parameters(self) -> list[torch.Tensor]:
        """The online network's stacked parameters (first dim K): what the engines write gradients for."""
        return self._params

    def train_step(self, batch: Batch | None = None) -> torch.Tensor:
        """One gradient step on a minibatch per agent (``batch``, numpy or torch, as the replay memory gives
        it; sampled when None); returns the per-agent loss ``[K]``.

        The minibatch comes from each agent's own stream, the gradients from the engine (autograd or a
        faster backend: the same draws either way), then the shared part: per-agent clipping, the
        optimiser step, the target update, and frozen agents put back as they were."""
        cfg = self.config
        if cfg.prioritized:  # the memory is a PrioritizedReplayBuffer (_make_buffer)
            per = cast(PrioritizedReplayBuffer, self.buffer)
            per.beta = linear_schedule(cfg.per_beta, 1.0, cfg.per_beta_steps, self.steps)
        if batch is not None:
            numpy_batch = isinstance(batch.actions, np.ndarray)
            if numpy_batch != self.engine.wants_numpy_batch:
                batch = Batch(*(np.asarray(x) if not numpy_batch else torch.as_tensor(np.asarray(x)) for x in batch))
        elif self.engine.wants_numpy_batch:  # on uniform replay only (make_engine)
            batch = cast(ReplayBuffer, self.buffer).sample_numpy(cfg.batch_size, self.sample_rng)
        else:
            batch = self.buffer.sample(cfg.batch_size, self.sample_rng)
        loss_k = self.engine(batch, self._check_loss)
        self._update(cfg.max_grad_norm, self._lr_now())
        self.updates += 1
        self._update_target()
        self.guard.restore()
        self._last_loss = loss_k
        return loss_k

    def _guarded(self) -> list[torch.Tensor]:
        """What freezing an agent holds still: weights, target weights and Adam's moments."""
        if not self.optimizer.state:
            init_adam_state(self.optimizer)
        moments = [self.optimizer.state[p][key] for p in self._params for key in ("exp_avg", "exp_avg_sq")]
        return [*self._params, *self._target_params, *moments]

    def _check_loss(self, loss_k: np.ndarray) -> None:
        """Freeze the agents whose loss stopped being finite (before this step changes them); all frozen:
        the run cannot go on, raise :class:`DivergenceError`."""
        bad = ~np.isfinite(loss_k)
        if self.guard.freeze(bad, self._guarded, self.steps):
            raise self._diverged(float(loss_k[bad][0]))

    def _diverged(self, loss: float) -> DivergenceError:
        """The error both gradient-step engines raise when the TD loss stops being finite."""
        return DivergenceError(
            f"the TD loss became {loss} at environment step {self.steps} "
            f"(gradient step {self.updates + 1}); try a lower lr or max_grad_norm",
            self.steps,
        )

    def _lr_now(self) -> float:
        cfg = self.config
        return cfg.lr if cfg.lr_end is None else linear_schedule(cfg.lr, cfg.lr_end, cfg.lr_decay_steps, self.steps)

    @torch.no_grad()
    def _update_target(self) -> None:
        cfg = self.config
        online, target = self._params, self._target_params
        if cfg.tau < 1.0:
            torch._foreach_lerp_(target, online, cfg.tau)
        elif self.updates % cfg.target_update_interval == 0:
            torch._foreach_copy_(target, online)

    def sync_target(self) -> None:
        """Copy the online weights into the target network now."""
        with torch.no_grad():
            torch._foreach_copy_(self._listed(self.target), self._listed(self.net))

    def metrics(self) -> dict[str, float]:
        """Epsilon and the mean TD loss of the last gradient step over the agents still training."""
        out = {"epsilon": self.epsilon}
        if self._last_loss is not None:
            active = ~self.guard.frozen
            if active.all():
                out["loss"] = float(self._last_loss.mean())
            elif active.any():
                out["loss"] = float(self._last_loss.cpu().numpy()[active].mean())
        return out

    # ------------------------------------------------------------ inspection
    @torch.no_grad()
    def q_table(self, agent: int | None = 0) -> np.ndarray:
        """The network evaluated on every discrete state: ``[S, A]`` (or ``[K, S, A]`` with agent=None)."""
        states = self.encoder.all_states().to(self.device)
        q = self.net(states.unsqueeze(0).expand(self.k, *states.shape).contiguous()).cpu().numpy()
        return q if agent is None else q[agent]

    @torch.no_grad()
    def distribution(self, obs: Any, agent: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Each action's learned return distribution at one observation, ``(returns[A, N], probs[A, N])``:
        C51's atoms with their probabilities, or QR-DQN's quantiles with 1/N each."""
        cfg = self.config
        if cfg.distributional == "none":
            raise QlearnError("this agent learns expected values only: train with --set distributional=c51 or qr")
        one = np.asarray(obs)
        x = self._features(np.broadcast_to(one, (self.k, 1, *one.shape)))
        dist = self.net.distribution(x)[agent, 0]  # [A, N]
        if cfg.distributional == "c51":
            probs = torch.softmax(dist, dim=-1)
            return self.net.support.expand_as(probs).cpu().numpy(), probs.cpu().numpy()
        return dist.cpu().numpy(), np.full(tuple(dist.shape), 1.0 / dist.shape[-1])

    # ----------------------------------------------------------- many agents
    def _row(self, val: Any, index: int) -> Any:
        """Agent ``index``'s part of a stacked optimiser-state value (a copy; shared scalars copied whole)."""
        if torch.is_tensor(val):
            return val[index : index + 1].clone() if val.dim() > 0 and val.shape[0] == self.k else val.clone()
        return copy.deepcopy(val)

    def weights(self) -> list[torch.Tensor]:
        """The live stacked parameters (first dim K): what "keep the best agent" copies per agent."""
        return list(self.net.parameters())

    def select(self, index: int) -> Any:
        """Agent ``index`` alone (K=1): weights, target, optimiser state and counters copied out."""
        one = type(self)(
            self.encoder,
            self.n_actions,
            self.config,
            seeds=(self.seeds[index],),
            device=self.device,
            env_id=self.env_id,
        )
        with torch.no_grad():
            for dst, src in zip(one.net.parameters(), self.net.parameters()):
                dst.copy_(src[index : index + 1])
            if self.target is not self.net:  # (PQN has none: its target is its network)
                for dst, src in zip(one.target.parameters(), self.target.parameters()):
                    dst.copy_(src[index : index + 1])
        opt = self.optimizer.state_dict()  # shares the live moment tensors: copy agent ``index``'s rows only
        one.optimizer.load_state_dict(
            {
                "param_groups": copy.deepcopy(opt["param_groups"]),
                "state": {
                    pid: {key: self._row(val, index) for key, val in st.items()} for pid, st in opt["state"].items()
                },
            }
        )
        if hasattr(one, "engine"):  # (PQN computes its gradients without an engine)
            one.engine.invalidate()
        one.guard = self.guard.select(index)
        one.explore_rng, one.sample_rng = self.explore_rng.select(index), self.sample_rng.select(index)
        one.steps, one.updates, one._since_train = self.steps, self.updates, self._since_train
        return one

    # ------------------------------------------------------------ persistence (the rest: DQNState)
    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None, device: str = "cpu") -> Any:
        """Rebuild an agent from :meth:`save`; with ``env`` given, check the checkpoint fits it."""
        payload = read_checkpoint(path)
        if payload["kind"] != cls.kind:
            raise QlearnError(f"{path} holds a {payload['kind']} agent, not {cls.kind}")
        meta = payload["meta"]
        encoder = Encoder.from_dict(meta["encoder"])
        if env is not None:
            check_fits(meta, env, path)
        agent = cls(
            encoder,
            meta["n_actions"],
            from_dict(cls.config_class, meta["config"]),
            seeds=meta["seeds"],
            device=device,
            env_id=meta.get("env_id"),
        )
        agent.load_state_dict(payload["state"])
        return agent
