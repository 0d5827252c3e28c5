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
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from qlearn.agents.base import SingleStepAPI, linear_schedule, read_checkpoint, write_checkpoint
from qlearn.agents.numpy_step import NumpyStep, fused_adam_available
from qlearn.agents.targets import td_target
from qlearn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from qlearn.config import DQNConfig, from_dict, to_dict
from qlearn.envs.encoding import Encoder, make_encoder
from qlearn.errors import DivergenceError, QlearnError
from qlearn.nets import StackedMLP, clip_grad_norm_per_agent


class DQNAgent(SingleStepAPI):
    """DQN with replay memory and a target network; ``seeds`` gives one independent agent per seed."""

    kind = "dqn"

    def __init__(self, encoder: Encoder, n_actions: int, config: DQNConfig | None = None, *,
                 seeds: Sequence[int] = (0,), device: str | torch.device = "cpu", env_id: str | None = None) -> None:
        self.config = config or DQNConfig()
        self.encoder, self.n_actions = encoder, int(n_actions)
        self.seeds = tuple(int(s) for s in seeds)
        self.k = len(self.seeds)
        self.device = torch.device(device)
        self.env_id = env_id
        cfg = self.config
        self.net = StackedMLP(encoder.dim, self.n_actions, cfg.hidden, seeds=self.seeds,
                              dueling=cfg.dueling).to(self.device)
        self.target = copy.deepcopy(self.net)
        self.target.requires_grad_(False)
        params = self._params = list(self.net.parameters())
        self._target_params = list(self.target.parameters())
        try:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, fused=True)
        except (RuntimeError, TypeError):  # fused Adam unavailable on this device/build
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.buffer = self._make_buffer(n_envs=1)
        self.gen = torch.Generator(device=self.device).manual_seed(self._mix(1))
        self.np_gen = np.random.default_rng(self._mix(4))  # minibatch draws of the numpy step
        self._numpy_step = self._pick_engine()
        self.rng = np.random.default_rng([*self.seeds, 2])
        self.steps = 0  # environment steps per agent
        self.updates = 0  # gradient steps
        self._since_train = 0
        self._last_loss: torch.Tensor | None = None
        self.greedy = False

    def _pick_engine(self) -> NumpyStep | None:
        """The numpy gradient step where it applies (CPU, uniform replay, fused Adam), else None (autograd)."""
        cfg = self.config
        fused = bool(self.optimizer.defaults.get("fused")) and fused_adam_available()
        fits = self.device.type == "cpu" and not cfg.prioritized and fused
        if cfg.engine == "numpy" and not fits:
            why = (f"this agent is on {self.device}" if self.device.type != "cpu" else
                   "prioritized replay is on" if cfg.prioritized else f"torch {torch.__version__} has no fused CPU Adam")
            raise QlearnError(f"engine=numpy needs the CPU, uniform replay and torch's fused Adam (torch >= 2.4), but "
                              f"{why}: use engine=auto or torch")
        return NumpyStep(self) if fits and cfg.engine != "torch" else None

    def _make_buffer(self, n_envs: int) -> ReplayBuffer | PrioritizedReplayBuffer:
        cfg = self.config
        common = dict(k=self.k, n_envs=n_envs, n_step=cfg.n_step, gamma=cfg.gamma, device=self.device)
        if cfg.prioritized:
            return PrioritizedReplayBuffer(cfg.buffer_size, self._stored_dim, alpha=cfg.per_alpha,
                                           seed=self._mix(3), **common)
        return ReplayBuffer(cfg.buffer_size, self._stored_dim, **common)

    # Discrete observations with a feature table (one-hot) are stored as their state number and turned
    # into features when a minibatch is drawn: 32 agents x 100k one-hot FrozenLake transitions took
    # 410 MB of observations as 16 floats, twice, and take 26 MB as one number.
    @property
    def _compact(self) -> bool:
        return self.encoder._np_table is not None and self.encoder.dim > 1

    @property
    def _stored_dim(self) -> int:
        return 1 if self._compact else self.encoder.dim

    def _stored(self, obs: np.ndarray) -> np.ndarray:
        """What the replay memory keeps of raw observations ``[K, N, ...]``."""
        if isinstance(obs, torch.Tensor):
            k, n = obs.shape[:2]
            return obs.reshape(k, n, 1) if self._compact else self.encoder.tensor(obs).reshape(k, n, self.encoder.dim)
        if self._compact:
            return np.asarray(obs, dtype=np.float32).reshape(*np.shape(obs)[:2], 1)
        return self._np_features(obs)

    def _decode(self, batch):
        """Features of a sampled minibatch's stored observations (numpy or torch, as the batch is)."""
        if not self._compact:
            return batch
        features = self.encoder.np if isinstance(batch.obs, np.ndarray) else self.encoder.tensor
        return batch._replace(obs=features(batch.obs[..., 0]), next_obs=features(batch.next_obs[..., 0]))

    def _mix(self, salt: int) -> int:
        return int(np.random.SeedSequence([*self.seeds, salt]).generate_state(1)[0])

    @classmethod
    def for_env(cls, env: gym.Env, config: DQNConfig | None = None, *, seed: int | None = None,
                seeds: Sequence[int] | None = None, device: str = "cpu") -> "DQNAgent":
        """An agent shaped for ``env``'s observation and action spaces."""
        config = config or DQNConfig()
        encoder = make_encoder(env.observation_space, config.encoding, config.scale_obs)
        return cls(encoder, int(env.action_space.n), config, seeds=seeds or (seed or 0,), device=device,
                   env_id=env.spec.id if env.spec else None)

    # ----------------------------------------------------------------- acting
    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, self.steps)

    def _features(self, obs: np.ndarray) -> torch.Tensor:
        """Raw observations ``[K, N, ...]`` to features ``[K, N, dim]`` on the agent's device."""
        x = torch.from_numpy(np.ascontiguousarray(self._np_features(obs)))
        return x if self.device.type == "cpu" else x.to(self.device)

    def _np_features(self, obs: np.ndarray) -> np.ndarray:
        x = self.encoder.np(obs)
        return x.reshape(x.shape[0], x.shape[1], self.encoder.dim)

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
        eps = 0.0 if greedy else self.epsilon
        if eps > 0.0:  # greedy acting draws nothing: evaluating must not shift the exploration stream
            explore = self.rng.random(shape) < eps
            random_a = self.rng.integers(0, self.n_actions, shape)
            if explore.all():
                return random_a
        if self.device.type == "cpu":
            best = self.net.forward_numpy(self._np_features(obs)).argmax(-1)
        else:
            with torch.no_grad():
                best = self.net(self._features(obs)).argmax(-1).cpu().numpy()
        return np.where(explore, random_a, best) if eps > 0.0 else best

    @torch.no_grad()
    def _act_on_device(self, obs: torch.Tensor, greedy: bool) -> torch.Tensor:
        eps = 0.0 if greedy else self.epsilon
        shape = obs.shape[:2]
        best = self.net(self.encoder.tensor(obs.to(self.device)).reshape(*shape, self.encoder.dim)).argmax(-1)
        if eps <= 0.0:
            return best
        explore = torch.rand(shape, generator=self.gen, device=self.device) < eps
        return torch.where(explore, torch.randint(0, self.n_actions, shape, generator=self.gen, device=self.device),
                           best)

    # --------------------------------------------------------------- learning
    def observe(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
                terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Store ``[K, N]`` transitions (numpy, or tensors on the agent's device) and train when due."""
        if not isinstance(actions, torch.Tensor):
            actions = np.asarray(actions)
        n = actions.shape[1]
        if n != self.buffer.n_envs:
            if len(self.buffer):
                raise QlearnError(f"this agent's replay memory holds transitions of {self.buffer.n_envs} envs "
                                  f"per step, not {n}")
            self.buffer = None  # free the empty memory first: two at once would double the peak
            self.buffer = self._make_buffer(n_envs=n)
        self.buffer.store(self._stored(obs), actions, rewards, self._stored(next_obs), terminated, truncated)
        self.steps += n
        if self.steps < self.config.learning_starts:
            return
        self._since_train += n
        while self._since_train >= self.config.train_freq:
            self._since_train -= self.config.train_freq
            for _ in range(self.config.gradient_steps):
                self.train_step()

    def train_step(self) -> torch.Tensor:
        """One gradient step on a sampled minibatch per agent; returns the per-agent loss ``[K]``."""
        cfg = self.config
        if self._numpy_step is not None:
            return self._train_step_numpy()
        if cfg.prioritized:
            self.buffer.beta = linear_schedule(cfg.per_beta, 1.0, cfg.per_beta_steps, self.steps)
        return self._train_step_torch(self._decode(self.buffer.sample(cfg.batch_size, self.gen)))

    def _train_step_torch(self, batch) -> torch.Tensor:
        """The gradient step by autograd on a given minibatch (any device, every variant)."""
        cfg = self.config
        q = self.net(batch.obs).gather(2, batch.actions.unsqueeze(2)).squeeze(2)
        with torch.no_grad():
            next_online = self.net(batch.next_obs) if cfg.double else None
            gamma = cfg.gamma if cfg.n_step == 1 else batch.discounts
            y = td_target(batch.rewards, batch.terminated, self.target(batch.next_obs), gamma, next_online)
        if cfg.loss == "huber":
            per_sample = F.smooth_l1_loss(q, y, reduction="none")
        else:
            per_sample = F.mse_loss(q, y, reduction="none")
        if cfg.prioritized:
            loss_k = (per_sample * batch.weights).mean(dim=1)
            self.buffer.update_priorities(batch.indices, q.detach() - y)
        else:
            loss_k = per_sample.mean(dim=1)
        if not bool(torch.isfinite(loss_k).all()):
            raise self._diverged(float(loss_k.detach().max()))
        if cfg.lr_end is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self._lr_now()
        self.optimizer.zero_grad(set_to_none=True)
        loss_k.sum().backward()
        if cfg.max_grad_norm > 0:
            clip_grad_norm_per_agent(self._params, cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self._update_target()
        self._last_loss = loss_k.detach()
        return self._last_loss

    def _diverged(self, loss: float) -> DivergenceError:
        """The error both gradient-step engines raise when the TD loss stops being finite."""
        return DivergenceError(f"the TD loss became {loss} at environment step {self.steps} "
                               f"(gradient step {self.updates + 1}); try a lower lr or max_grad_norm", self.steps)

    def _lr_now(self) -> float:
        cfg = self.config
        return cfg.lr if cfg.lr_end is None else linear_schedule(cfg.lr, cfg.lr_end, cfg.lr_decay_steps, self.steps)

    def _train_step_numpy(self, batch=None) -> torch.Tensor:
        """:meth:`train_step` by :class:`~qlearn.agents.numpy_step.NumpyStep` (same maths, no autograd) on
        ``batch`` as the replay memory gives it (sampled here if None)."""
        if batch is None:
            batch = self.buffer.sample_numpy(self.config.batch_size, self.np_gen)
        if self._compact and self.encoder.n_states <= batch.actions.shape[1]:
            loss_k = self._numpy_step(batch, self._lr_now(), table=self.encoder._np_table)
        else:
            loss_k = self._numpy_step(self._decode(batch), self._lr_now())
        if not np.isfinite(loss_k).all():
            raise self._diverged(float(loss_k[~np.isfinite(loss_k)][0]))  # inf or nan
        self.updates += 1
        self._update_target()
        self._last_loss = torch.from_numpy(loss_k)
        return self._last_loss

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
            torch._foreach_copy_(list(self.target.parameters()), list(self.net.parameters()))

    def metrics(self) -> dict[str, float]:
        out = {"epsilon": self.epsilon}
        if self._last_loss is not None:
            out["loss"] = float(self._last_loss.mean())
        return out

    # ------------------------------------------------------------ inspection
    @torch.no_grad()
    def q_table(self, agent: int | None = 0) -> np.ndarray:
        """The network evaluated on every discrete state: ``[S, A]`` (or ``[K, S, A]`` with agent=None)."""
        states = self.encoder.all_states().to(self.device)
        q = self.net(states.unsqueeze(0).expand(self.k, *states.shape).contiguous()).cpu().numpy()
        return q if agent is None else q[agent]

    # ----------------------------------------------------------- many agents
    def _row(self, val: Any, index: int) -> Any:
        """Agent ``index``'s part of a stacked optimiser-state value (a copy; shared scalars copied whole)."""
        if torch.is_tensor(val):
            return val[index: index + 1].clone() if val.dim() > 0 and val.shape[0] == self.k else val.clone()
        return copy.deepcopy(val)

    def weights(self) -> list[torch.Tensor]:
        """The live stacked parameters (first dim K): what "keep the best agent" copies per agent."""
        return list(self.net.parameters())

    def select(self, index: int) -> "DQNAgent":
        """Agent ``index`` alone (K=1): weights, target, optimiser state and counters copied out."""
        one = DQNAgent(self.encoder, self.n_actions, self.config, seeds=(self.seeds[index],), device=self.device,
                       env_id=self.env_id)
        with torch.no_grad():
            for dst, src in zip(one.net.parameters(), self.net.parameters()):
                dst.copy_(src[index: index + 1])
            for dst, src in zip(one.target.parameters(), self.target.parameters()):
                dst.copy_(src[index: index + 1])
        opt = self.optimizer.state_dict()  # shares the live moment tensors: copy agent ``index``'s rows only
        one.optimizer.load_state_dict({"param_groups": copy.deepcopy(opt["param_groups"]), "state": {
            pid: {key: self._row(val, index) for key, val in st.items()} for pid, st in opt["state"].items()}})
        if one._numpy_step is not None:
            one._numpy_step.invalidate()
        one.steps, one.updates, one._since_train = self.steps, self.updates, self._since_train
        return one

    # ------------------------------------------------------------ persistence
    def state_dict(self, *, include_buffer: bool = False) -> dict[str, Any]:
        state = {"net": self.net.state_dict(), "target": self.target.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "steps": self.steps, "updates": self.updates,
                 "since_train": self._since_train, "last_loss": self._last_loss}
        if include_buffer:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("net", "target"):
            mine = getattr(self, name).state_dict()
            for key, val in state[name].items():
                if key not in mine or mine[key].shape != val.shape:
                    raise QlearnError(f"checkpoint network does not fit this agent: {name}.{key} has shape "
                                      f"{tuple(val.shape)}, expected {tuple(mine[key].shape) if key in mine else 'none'}")
        self.net.load_state_dict(state["net"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self._numpy_step is not None:
            self._numpy_step.invalidate()  # the optimiser's moment tensors were replaced
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self._since_train = int(state.get("since_train", 0))
        self._last_loss = state.get("last_loss")
        if "buffer" in state:
            n_envs = int(state["buffer"].get("n_envs", 1))
            if n_envs != self.buffer.n_envs:
                self.buffer = None  # free the old memory first, as observe() does
                self.buffer = self._make_buffer(n_envs=n_envs)
            self.buffer.load_state_dict(self._legacy_buffer(state["buffer"]))

    def _legacy_buffer(self, state: dict[str, Any]) -> dict[str, Any]:
        """A replay memory saved with one-hot features (before compact storage): back to state numbers."""
        obs = state.get("obs")
        if self._compact and torch.is_tensor(obs) and obs.dim() == 3 and obs.shape[-1] == self.encoder.dim:
            return {**state, "obs": obs.argmax(-1, keepdim=True).float(),
                    "next_obs": state["next_obs"].argmax(-1, keepdim=True).float()}
        return state

    def rng_state(self) -> dict[str, Any]:
        """Every random generator the agent draws from (exploration, minibatches, priorities)."""
        state = {"rng": self.rng.bit_generator.state, "gen": self.gen.get_state(),
                 "np_gen": self.np_gen.bit_generator.state}
        if self.config.prioritized:
            state["per_rng"] = self.buffer.rng.bit_generator.state
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])
        if "np_gen" in state:
            self.np_gen.bit_generator.state = state["np_gen"]
        if "per_rng" in state:
            self.buffer.rng.bit_generator.state = state["per_rng"]

    def meta(self) -> dict[str, Any]:
        e = self.encoder
        return {"config": to_dict(self.config), "encoder": e.to_dict(),
                "n_actions": self.n_actions, "seeds": list(self.seeds), "env_id": self.env_id}

    def save(self, path: str | os.PathLike, *, include_buffer: bool = False) -> Path:
        """Weights, target weights, optimiser, counters and config in one file (atomic write)."""
        return write_checkpoint(path, self.kind, self.meta(), self.state_dict(include_buffer=include_buffer))

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None, device: str = "cpu") -> "DQNAgent":
        """Rebuild an agent from :meth:`save`; with ``env`` given, check the checkpoint fits it."""
        payload = read_checkpoint(path)
        if payload["kind"] != cls.kind:
            raise QlearnError(f"{path} holds a {payload['kind']} agent, not {cls.kind}")
        meta = payload["meta"]
        encoder = Encoder.from_dict(meta["encoder"])
        if env is not None:
            check_fits(meta, env, path)
        agent = cls(encoder, meta["n_actions"], from_dict(DQNConfig, meta["config"]), seeds=meta["seeds"],
                    device=device, env_id=meta.get("env_id"))
        agent.load_state_dict(payload["state"])
        return agent


def check_fits(meta: dict[str, Any], env: gym.Env, path: Any) -> None:
    """Refuse a checkpoint whose state or action counts differ from ``env``'s."""
    space = env.observation_space
    n_states = getattr(space, "n", None)
    saved_states = meta.get("encoder", {}).get("n_states", meta.get("n_states"))
    env_name = env.spec.id if env.spec else "this env"
    saved_dim, dim = meta.get("encoder", {}).get("dim"), int(np.prod(space.shape)) if space.shape else None
    if saved_states is None and n_states is None and saved_dim is not None and dim is not None and saved_dim != dim:
        raise QlearnError(f"checkpoint {path} was trained on {meta.get('env_id')} with {saved_dim} observation "
                          f"features; {env_name} has {dim}")
    if int(env.action_space.n) != meta["n_actions"] or (saved_states is not None and saved_states != n_states):
        raise QlearnError(f"checkpoint {path} was trained on {meta.get('env_id')} ({saved_states} states, "
                          f"{meta['n_actions']} actions); {env_name} has {n_states} states and "
                          f"{env.action_space.n} actions")
