"""Batched environments against Gymnasium itself: same transition model, same dynamics, same-step autoreset.

The native classes claim to reproduce Gymnasium exactly; these tests hold them to it by comparing with
Gymnasium's own transition tables (FrozenLake: distributions over ~20k batched samples) and with
Gymnasium's envs stepped one by one from the same start state with the same actions (MountainCar,
CartPole). ``GymBatched`` is checked for the one thing it must get right: the step that ends an episode
returns the true last observation as ``final_obs`` and the reset observation as ``obs``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from qlearn.envs import make_env
from qlearn.envs.batched import CartPoleBatched, MountainCarBatched, TabularBatchedEnv
from qlearn.envs.vector import GymBatched, make_batched


# --------------------------------------------------------------------------------------------- helpers
def model_of(env: gym.Env) -> dict[tuple[int, int], dict[int, tuple[float, float, bool]]]:
    """Gymnasium's table ``P`` as ``(s, a) -> {s2: (total probability, reward, terminated)}``."""
    out = {}
    for s, row in env.unwrapped.P.items():
        for a, entries in row.items():
            d: dict[int, list] = {}
            for p, s2, r, term in entries:
                if s2 in d:
                    assert d[s2][1:] == [r, term]  # FrozenLake: reward and end depend on the landing tile only
                    d[s2][0] += p
                else:
                    d[s2] = [p, r, term]
            out[(s, a)] = {s2: (p, r, t) for s2, (p, r, t) in d.items()}
    return out


def sample_from(env: gym.Env, s: int, a: int, *, k: int = 100, n: int = 200, seed: int = 0):
    """``k * n`` batched transitions from state ``s`` with action ``a`` (state forced)."""
    b = TabularBatchedEnv(env, k, n, seed=seed)
    b.reset()
    b.state = torch.full((k, n), s, dtype=torch.long)
    return b.step(torch.full((k, n), a, dtype=torch.long))


def assert_matches_model(env: gym.Env, s: int, a: int, seed: int = 0) -> None:
    model = model_of(env)[(s, a)]
    obs, reward, term, trunc, final = sample_from(env, s, a, seed=seed)
    final, reward, term, obs = final.numpy().ravel(), reward.numpy().ravel(), term.numpy().ravel(), obs.numpy().ravel()
    total = len(final)
    assert set(np.unique(final)) <= set(model), (s, a, np.unique(final), model)
    for s2, (p, r, t) in model.items():
        freq = np.mean(final == s2)
        se = math.sqrt(p * (1 - p) / total)
        assert abs(freq - p) <= 4 * se + 1e-12, (s, a, s2, freq, p)
        hit = final == s2
        assert np.all(reward[hit] == r) and np.all(term[hit] == t), (s, a, s2)
    assert not trunc.any()
    # same-step autoreset: a finished episode hands back a fresh start; otherwise obs is the next state
    starts = np.flatnonzero(env.unwrapped.initial_state_distrib > 0)
    assert np.isin(obs[term], starts).all()
    assert np.array_equal(obs[~term], final[~term])


class FixedUniform:
    """Stands in for ``np_random`` so that Gymnasium's ``categorical_sample`` sees a chosen ``u``."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


HOLES_4x4 = {5, 7, 11, 12}
GOAL_4x4 = 15


# ------------------------------------------------------------------------------------ FrozenLake, native
@pytest.mark.parametrize("s,a", [(0, 0), (0, 1), (6, 2), (14, 2), (9, 3), (5, 1), (15, 0)])
def test_frozenlake_slippery_transitions_follow_gymnasiums_model(s, a):
    env = make_env("FrozenLake-v1")
    assert_matches_model(env, s, a, seed=s * 4 + a)


def test_frozenlake_outcome_choice_is_gymnasiums_for_the_same_uniform():
    """Given the same uniform draw u, the batched env picks the same entry of P as Gymnasium does,
    boundaries included (first index whose cumulative probability exceeds u)."""
    from gymnasium.envs.toy_text.utils import categorical_sample

    env = make_env("FrozenLake-v1", success_rate=0.6)  # unequal probabilities: 0.2, 0.6, 0.2
    raw = env.unwrapped
    cuts = [0.2, 0.8, 1 / 3, 2 / 3, 0.0]
    us = sorted({*np.linspace(0, 1, 101)[:-1], *cuts, *[np.nextafter(c, 1) for c in cuts],
                 *[np.nextafter(c, 0) for c in cuts if c > 0], *np.cumsum([0.2, 0.6, 0.2])[:-1]})
    us = torch.tensor(us, dtype=torch.float64)
    for s, a in [(0, 1), (6, 0), (14, 2)]:
        b = TabularBatchedEnv(env, 1, len(us))
        b.reset()
        b.state = torch.full((1, len(us)), s, dtype=torch.long)
        b._uniform = lambda: us.view(1, -1).numpy()  # the step's dynamics draws
        *_, final = b.step(torch.full((1, len(us)), a))
        probs = [t[0] for t in raw.P[s][a]]
        expected = [raw.P[s][a][int(categorical_sample(probs, FixedUniform(float(u))))][1] for u in us]
        assert final.view(-1).tolist() == expected, (s, a)


def test_frozenlake_tables_reproduce_P_everywhere():
    for kwargs in ({}, {"map_name": "8x8"}, {"desc": ["SFFH", "FHFG", "FFSF"]}, {"is_slippery": False}):
        env = make_env("FrozenLake-v1", **kwargs)
        b = TabularBatchedEnv(env, 1, 1)
        for (s, a) in model_of(env):
            entries = env.unwrapped.P[s][a]
            probs = np.diff(np.concatenate([[0.0], b.cum[s, a].numpy()]))
            for i, (p, s2, r, term) in enumerate(entries):
                assert probs[i] == pytest.approx(p, abs=1e-12)
                assert int(b.next_state[s, a, i]) == s2 and float(b.reward[s, a, i]) == r
                assert bool(b.term[s, a, i]) == term
            assert np.allclose(probs[len(entries):], 0.0)


@pytest.mark.parametrize("env_id, kwargs", [("FrozenLake-v1", {}), ("FrozenLake-v1", {"desc": ["SFS", "FHF", "FFG"]}),
                                             ("FrozenLake8x8-v1", {}), ("CliffWalking-v1", {}), ("Taxi-v4", {})])
def test_cpu_step_in_numpy_is_the_torch_step_draw_for_draw(env_id, kwargs):
    """The CPU step does its arithmetic in numpy on the same generator draws: identical trajectories."""
    fast, ref = (TabularBatchedEnv(make_env(env_id, **kwargs), 3, 64, seed=5) for _ in range(2))
    assert torch.equal(fast.reset(), ref.reset())
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(500):
        act = torch.as_tensor(rng.integers(0, fast.action_space.n, (3, 64)))
        got, want = fast.step(act), ref._step_torch(act)
        for x, y in zip(got, want, strict=True):
            assert x.dtype == y.dtype and torch.equal(x, y)
        ended += int((got[2] | got[3]).sum())
    assert ended > 0 and torch.equal(fast.t, ref.t)


def test_frozenlake_initial_states_follow_initial_state_distrib():
    env = make_env("FrozenLake-v1")
    b = TabularBatchedEnv(env, 50, 40, seed=1)
    assert (b.reset() == 0).all()
    # a map with two starts: each is drawn half the time, at reset and at every autoreset
    env2 = make_env("FrozenLake-v1", desc=["SFS", "FHF", "FFG"])
    isd = env2.unwrapped.initial_state_distrib
    assert isd[0] == isd[2] == 0.5
    b2 = TabularBatchedEnv(env2, 100, 200, seed=2)
    obs = b2.reset().numpy()
    assert set(np.unique(obs)) == {0, 2}
    se = math.sqrt(0.25 / obs.size)
    assert abs(np.mean(obs == 0) - 0.5) <= 4 * se
    b2.state = torch.full((100, 200), 4, dtype=torch.long)  # the hole: every episode ends here
    obs, reward, term, trunc, final = b2.step(torch.zeros(100, 200, dtype=torch.long))
    assert term.all() and (final == 4).all() and (reward == 0).all()
    obs = obs.numpy()
    assert set(np.unique(obs)) == {0, 2}
    assert abs(np.mean(obs == 0) - 0.5) <= 4 * se


def test_frozenlake_custom_map_and_8x8_transitions():
    custom = make_env("FrozenLake-v1", desc=["SFFH", "FHFG", "FFSF"])
    for s, a in [(0, 1), (2, 2), (6, 2), (10, 3)]:
        assert_matches_model(custom, s, a, seed=10 + s)
    for env in (make_env("FrozenLake-v1", map_name="8x8"), make_env("FrozenLake8x8-v1")):
        for s, a in [(0, 2), (18, 1), (62, 2), (45, 3)]:
            assert_matches_model(env, s, a, seed=20 + s)
    assert make_batched("FrozenLake8x8-v1", 1, 1).horizon == 200
    assert make_batched("FrozenLake-v1", 1, 1, map_name="8x8").horizon == 100


def test_frozenlake_time_limit_truncates_at_100_steps_without_terminating():
    env = make_env("FrozenLake-v1", is_slippery=False)
    b = TabularBatchedEnv(env, 1, 2, seed=0)
    assert b.horizon == 100
    b.reset()
    # env 0 walks down into the hole at 12 (three steps) and starts again; env 1 bumps into the left wall
    for t in range(1, 101):
        act = torch.tensor([[1 if t <= 3 else 0, 0]])
        obs, reward, term, trunc, final = b.step(act)
        if t == 3:
            assert term.tolist() == [[True, False]] and final.tolist() == [[12, 0]] and obs.tolist() == [[0, 0]]
        elif t < 100:
            assert not term.any() and not trunc.any(), t
        else:  # env 1's 100th step: truncated, not terminated; env 0 is only 97 steps into its second episode
            assert trunc.tolist() == [[False, True]] and not term.any()
            assert final.tolist() == [[0, 0]] and obs.tolist() == [[0, 0]]
    assert b.t.tolist() == [[97, 0]]


def test_frozenlake_goal_final_obs_and_fresh_start():
    env = make_env("FrozenLake-v1", is_slippery=False)
    b = TabularBatchedEnv(env, 1, 1)
    b.reset()
    path = [2, 2, 1, 1, 1, 2]  # right, right, down, down, down, right: 1, 2, 6, 10, 14, 15
    seen = []
    for i, a in enumerate(path):
        obs, reward, term, trunc, final = b.step(torch.tensor([[a]]))
        seen.append(int(final))
        last = i == len(path) - 1
        assert bool(term) == last and float(reward) == float(last) and not trunc.any()
    assert seen == [1, 2, 6, 10, 14, 15]
    assert int(obs) == 0 and int(b.t) == 0


def test_tabular_batched_never_returns_a_reset_as_a_transition():
    env = make_env("FrozenLake-v1")
    model = model_of(env)
    b = TabularBatchedEnv(env, 2, 4, seed=5)
    obs = b.reset()
    rng = np.random.default_rng(0)
    ends = set()
    for _ in range(300):
        a = rng.integers(0, 4, (2, 4))
        nxt, reward, term, trunc, final = b.step(torch.as_tensor(a))
        for (k, n), s in np.ndenumerate(obs.numpy()):
            s2 = int(final[k, n])
            assert s2 in model[(s, int(a[k, n]))], (s, a[k, n], s2)  # a real transition of the model
        ends |= set(final[term].tolist())
        obs = nxt
    assert ends and ends <= HOLES_4x4 | {GOAL_4x4}


# ----------------------------------------------------------------------------- MountainCar and CartPole
def energy(state, rng):  # MountainCar: push along the velocity (reaches the flag in ~100-160 steps)
    return 2 if state[1] >= 0 else 0


def uniform_actions(n_actions):
    return lambda state, rng: int(rng.integers(n_actions))


def balance(state, rng):  # CartPole: lean-correcting controller that lasts the 500 steps
    return int(state[2] + 0.5 * state[3] > 0)


def run_side_by_side(env_id, cls, policy, seed):
    """One Gymnasium env and a K=N=1 batched env from the same start state, same actions, one episode."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    b = cls(env, 1, 1, seed=seed)
    b.reset()
    b.state[0, 0] = torch.as_tensor(np.asarray(env.unwrapped.state, dtype=np.float64))
    rng = np.random.default_rng(seed)
    t = 0
    while True:
        a = policy(env.unwrapped.state, rng)
        o, r, te, tr, _ = env.step(a)
        bo, br, bte, btr, bf = b.step(torch.tensor([[a]]))
        t += 1
        assert bf.dtype == torch.float32 and bf.shape == (1, 1, len(o))
        np.testing.assert_array_equal(bf[0, 0].numpy(), o, err_msg=f"{env_id} seed {seed} step {t}")
        assert (bool(bte), bool(btr), float(br)) == (te, tr, r), (env_id, seed, t)
        if te or tr:
            return t, te, tr, bo[0, 0].numpy()
        np.testing.assert_array_equal(bo[0, 0].numpy(), o)  # no reset: obs is the next state


@pytest.mark.parametrize("seed", range(4))
def test_mountaincar_trajectories_identical_to_gymnasium(seed):
    t, te, tr, start = run_side_by_side("MountainCar-v0", MountainCarBatched, uniform_actions(3), seed)
    assert (t, te, tr) == (200, False, True)  # random actions never reach the flag: the time limit ends it
    assert -0.6 <= start[0] <= -0.4 and start[1] == 0.0  # a fresh start after truncation
    t, te, tr, start = run_side_by_side("MountainCar-v0", MountainCarBatched, energy, seed)
    assert te and not tr and t < 200
    assert -0.6 <= start[0] <= -0.4 and start[1] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_cartpole_trajectories_identical_to_gymnasium(seed):
    t, te, tr, start = run_side_by_side("CartPole-v1", CartPoleBatched, uniform_actions(2), seed)
    assert te and not tr
    assert np.all(np.abs(start) <= 0.05)
    if seed < 2:
        t, te, tr, start = run_side_by_side("CartPole-v1", CartPoleBatched, balance, seed)
        assert (t, te, tr) == (500, False, True)


def test_mountaincar_time_limit_200():
    env = make_env("MountainCar-v0")
    b = MountainCarBatched(env, 2, 3, seed=4)
    assert b.horizon == 200
    b.reset()
    for t in range(1, 201):
        obs, reward, term, trunc, final = b.step(torch.ones(2, 3, dtype=torch.long))  # no push: never arrives
        assert not term.any() and (reward == -1).all()
        assert trunc.all() if t == 200 else not trunc.any(), t
    assert (b.t == 0).all()
    assert ((obs[..., 0] >= -0.6) & (obs[..., 0] <= -0.4)).all() and (obs[..., 1] == 0).all()
    assert not torch.equal(obs, final)


@pytest.mark.parametrize("env_id,cls,n_actions,steps", [("MountainCar-v0", MountainCarBatched, 3, 220),
                                                         ("CartPole-v1", CartPoleBatched, 2, 120)])
def test_batched_envs_evolve_independently(env_id, cls, n_actions, steps):
    """K=3 x N=4 in one batch: each of the 12 envs follows exactly its own Gymnasium twin."""
    k, n = 3, 4
    twins = [gym.make(env_id) for _ in range(k * n)]
    for i, e in enumerate(twins):
        e.reset(seed=100 + i)
    b = cls(twins[0], k, n, seed=0)
    b.reset()
    b.state = torch.as_tensor(np.stack([np.asarray(e.unwrapped.state, dtype=np.float64) for e in twins])
                              ).view(k, n, -1).clone()
    rng = np.random.default_rng(1)
    live = np.ones(k * n, dtype=bool)  # compared up to and including each env's first episode end
    for t in range(steps):
        acts = rng.integers(0, n_actions, (k, n))
        obs, reward, term, trunc, final = b.step(torch.as_tensor(acts))
        for i in np.flatnonzero(live):
            o, r, te, tr, _ = twins[i].step(int(acts.flat[i]))
            np.testing.assert_array_equal(final.view(k * n, -1)[i].numpy(), o, err_msg=f"env {i} step {t}")
            assert (bool(term.view(-1)[i]), bool(trunc.view(-1)[i])) == (te, tr), (i, t)
            if te or tr:
                live[i] = False
        if not live.any():
            break
    assert not live.any(), "every env should have finished an episode"


def test_mountaincar_float64_step_is_gymnasiums():
    """One step from many states, in float64 (where torch's cos agrees with math.cos bit for bit)."""
    rng = np.random.default_rng(0)
    m = 400
    pos = rng.uniform(-1.2, 0.45, m)
    vel = rng.uniform(-0.07, 0.07, m)
    acts = rng.integers(0, 3, m)
    env = gym.make("MountainCar-v0")
    env.reset(seed=0)
    b = MountainCarBatched(env, 1, m)
    b.reset()
    b.state = torch.as_tensor(np.stack([pos, vel], -1)).view(1, m, 2).clone()
    b.step(torch.as_tensor(acts).view(1, m))
    same_cos = torch.cos(3 * torch.as_tensor(pos)).numpy() == np.array([math.cos(3 * p) for p in pos])
    compared = 0
    for i in range(m):
        if not same_cos[i]:
            continue
        env.unwrapped.state = np.array([pos[i], vel[i]])
        _, _, te, _, _ = env.step(int(acts[i]))
        if te:
            continue
        compared += 1
        assert np.array_equal(np.asarray(env.unwrapped.state, dtype=np.float64), b.state[0, i].numpy()), i
    assert compared > 100


# ---------------------------------------------------------------------------------------- GymBatched
def test_gym_batched_shapes_and_final_obs_match_gymnasium():
    k, n, seed, limit = 2, 3, 1, 25
    venv = make_batched("Acrobot-v1", k, n, seed=seed, max_episode_steps=limit)
    assert isinstance(venv, GymBatched)
    obs = venv.reset()
    assert obs.shape == (k, n, 6) and obs.dtype == torch.float32
    twins = [make_env("Acrobot-v1", max_episode_steps=limit) for _ in range(k * n)]
    # agent k's envs are seeded from its own seed (seed + k): (seed + k) * 100_003 + j for its env j
    expected = np.stack([e.reset(seed=(seed + i // n) * 100_003 + i % n)[0] for i, e in enumerate(twins)])
    np.testing.assert_array_equal(obs.view(k * n, -1).numpy(), expected)
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(2 * limit + 5):
        acts = rng.integers(0, 3, (k, n))
        obs, reward, term, trunc, final = venv.step(torch.as_tensor(acts))
        assert obs.shape == final.shape == (k, n, 6)
        assert reward.shape == term.shape == trunc.shape == (k, n)
        assert reward.dtype == torch.float32 and term.dtype == trunc.dtype == torch.bool
        for i, e in enumerate(twins):
            o, r, te, tr, _ = e.step(int(acts.flat[i]))
            np.testing.assert_array_equal(final.view(k * n, -1)[i].numpy(), o)  # the true last observation
            assert (bool(term.view(-1)[i]), bool(trunc.view(-1)[i]), float(reward.view(-1)[i])) == (te, tr, r)
            if te or tr:
                ended += 1
                o, _ = e.reset()
                assert not np.array_equal(o, final.view(k * n, -1)[i].numpy())
            np.testing.assert_array_equal(obs.view(k * n, -1)[i].numpy(), o)  # the reset obs after an end
    assert ended >= k * n * 2
    venv.close()


def test_gym_batched_frozenlake_never_returns_a_reset_as_a_transition():
    env = make_env("FrozenLake-v1")
    model = model_of(env)
    venv = make_batched("FrozenLake-v1", 2, 4, seed=3, native=False)
    assert isinstance(venv, GymBatched)
    obs = venv.reset()
    assert obs.shape == (2, 4) and (obs == 0).all()
    rng = np.random.default_rng(2)
    ends = []
    for _ in range(400):
        a = rng.integers(0, 4, (2, 4))
        nxt, reward, term, trunc, final = venv.step(torch.as_tensor(a))
        for (k, n), s in np.ndenumerate(obs.numpy()):
            s2 = int(final[k, n])
            assert s2 in model[(s, int(a[k, n]))], (s, a[k, n], s2)  # a real move, never "hole -> start"
            assert float(reward[k, n]) == model[(s, int(a[k, n]))][s2][1]
            if term[k, n]:
                assert s2 in HOLES_4x4 | {GOAL_4x4}
                assert int(nxt[k, n]) == 0  # the next episode starts at S
                ends.append(s2)
            elif not trunc[k, n]:
                assert int(nxt[k, n]) == s2
        obs = nxt
    assert len(ends) > 20 and GOAL_4x4 in ends
    venv.close()


def test_make_batched_picks_native_classes():
    assert isinstance(make_batched("FrozenLake-v1", 2, 3), TabularBatchedEnv)
    assert isinstance(make_batched("FrozenLake-v1", 1, 1, map_name="8x8", is_slippery=False), TabularBatchedEnv)
    assert isinstance(make_batched("FrozenLake8x8-v1", 1, 1), TabularBatchedEnv)
    assert isinstance(make_batched("MountainCar-v0", 2, 3), MountainCarBatched)
    assert isinstance(make_batched("CartPole-v1", 2, 3), CartPoleBatched)
    acro = make_batched("Acrobot-v1", 2, 3)
    assert isinstance(acro, GymBatched)
    acro.close()
    for env_id in ("FrozenLake-v1", "MountainCar-v0", "CartPole-v1"):
        g = make_batched(env_id, 1, 2, native=False)
        assert isinstance(g, GymBatched)
        g.close()
    # a changed time limit or changed dynamics: the native copy would be wrong, so Gymnasium's envs are used
    g = make_batched("MountainCar-v0", 1, 1, max_episode_steps=50)
    assert isinstance(g, GymBatched)
    g.close()
    g = make_batched("CartPole-v1", 1, 1, sutton_barto_reward=True)
    assert isinstance(g, GymBatched)
    g.close()
    # the native envs report shapes [K, N, ...] too
    assert make_batched("FrozenLake-v1", 2, 3).reset().shape == (2, 3)
    assert make_batched("MountainCar-v0", 2, 3).reset().shape == (2, 3, 2)
    assert make_batched("CartPole-v1", 2, 3).reset().shape == (2, 3, 4)
