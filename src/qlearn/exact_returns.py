"""Exact distributions of the discounted return under a policy, from a toy-text env's model ``P``.

Distributional agents (C51, QR-DQN) learn, for each state and action, the distribution of
``G = r_0 + gamma r_1 + gamma^2 r_2 + ...``; on an env with a model that distribution can be computed and
the learned one checked against it. The horizon is infinite, as DQN's bootstrapping through time-limit
truncation implies.

* Where every non-zero reward comes on the step that ends the episode (the FrozenLake family), a return is
  ``r * gamma^t`` for the reward ``r`` that ended the episode after ``t + 1`` steps (0 if it never ends):
  the distribution is exact, computed by pushing probability forward from each start state until less
  than ``tol`` is left in play (that remainder is the only error: at most ``tol * max|r|``).
* Otherwise returns are kept on a grid of ``atoms`` points spanning every reachable return, and the
  distributional Bellman equation is iterated to its fixed point with each update's mass split between
  the two grid points beside it. Each split moves mass by at most half a grid step and the operator is
  a ``gamma``-contraction in Wasserstein-1, so the result is within ``(step / 2) / (1 - gamma)`` of the
  true distribution in Wasserstein-1: the bound returned with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qlearn.envs.returns import transitions_return_range
from qlearn.envs.tabular import Transitions, greedy_policy


@dataclass(frozen=True)
class ReturnDistributions:
    """Per state ``s``: ``returns[s]`` (sorted) with ``probs[s]``; ``w1_bound``: how far (Wasserstein-1)
    each may be from the true distribution; ``exact``: the terminal-reward case."""

    returns: list[np.ndarray]
    probs: list[np.ndarray]
    w1_bound: float
    exact: bool

    def pairs(self, state: int) -> list[list[float]]:
        """``[return, probability]`` pairs of one state (what ``--json`` writes)."""
        return [[float(r), float(p)] for r, p in zip(self.returns[state], self.probs[state])]

    def mean(self, state: int) -> float:
        return float(np.dot(self.returns[state], self.probs[state]))


def _policy_outcomes(t: Transitions, policy: np.ndarray) -> tuple[np.ndarray, ...]:
    s = np.arange(t.prob.shape[0])
    return t.prob[s, policy], t.next_state[s, policy], t.reward[s, policy], t.terminated[s, policy]


def return_distributions(
    t: Transitions, policy: np.ndarray, gamma: float, *, tol: float = 1e-6, atoms: int = 2001
) -> ReturnDistributions:
    """The distribution of the discounted return from every state when ``policy[s]`` is taken in ``s``."""
    prob, nxt, rew, term = _policy_outcomes(t, np.asarray(policy, dtype=np.intp))
    live = prob > 0
    if not np.any(live & ~term & (rew != 0)):
        return _terminal_rewards(prob, nxt, rew, term, gamma, tol)
    return _on_grid(prob, nxt, rew, term, gamma, tol, atoms)


def _terminal_rewards(prob, nxt, rew, term, gamma, tol) -> ReturnDistributions:
    n = prob.shape[0]
    cont = np.zeros((n, n))
    np.add.at(cont, (np.repeat(np.arange(n), prob.shape[1]), nxt.ravel()), (prob * ~term).ravel())
    ending = {}  # reward -> [S] probability of ending with it from each state, this step
    for r in np.unique(rew[(prob > 0) & term]):
        ending[float(r)] = (prob * (term & (rew == r))).sum(axis=1)
    mass = np.eye(n)  # [start, current]
    found: dict[float, np.ndarray] = {}
    discount, steps = 1.0, 0
    while mass.sum(axis=1).max() >= tol and steps < 1_000_000:
        for r, e in ending.items():
            key = round(r * discount, 12)
            found[key] = found.get(key, 0.0) + mass @ e
        mass = mass @ cont
        discount *= gamma
        steps += 1
    found[0.0] = found.get(0.0, 0.0) + mass.sum(axis=1)  # still running: never ends in the limit, or < tol
    values = np.array(sorted(found))
    table = np.stack([np.broadcast_to(found[v], (n,)) for v in values], axis=1)
    returns, probs = [], []
    for s in range(n):
        keep = table[s] > 0
        returns.append(values[keep])
        probs.append(table[s, keep] / table[s, keep].sum())
    bound = tol * max((abs(r) for r in ending), default=0.0)
    return ReturnDistributions(returns, probs, bound, True)


def _on_grid(prob, nxt, rew, term, gamma, tol, atoms) -> ReturnDistributions:
    # the grid spans the returns this policy's paths can collect (any state, any outcome)
    lo, hi = transitions_return_range(Transitions(prob[:, None], nxt[:, None], rew[:, None], term[:, None]), gamma)
    if hi <= lo:
        hi = lo + 1.0
    z = np.linspace(lo, hi, atoms)
    step = z[1] - z[0]
    n, w = prob.shape
    dist = np.zeros((n, atoms))
    dist[:, _split(np.zeros(1), lo, step, atoms)[0][0]] = 1.0  # start: all at 0 (rounded onto the grid)
    # where each outcome's mass lands: terminal outcomes at r, the others at r + gamma * z
    targets = np.where(term[..., None], rew[..., None] + 0.0 * z, rew[..., None] + gamma * z)  # [S, W, G]
    low_i, up_i, w_up = _split(targets, lo, step, atoms)
    rows = np.arange(n)[:, None, None] * atoms
    delta = np.zeros(atoms)
    delta[0] = 1.0  # a terminal outcome: one unit of mass, all of it landing at r (targets above)
    for _ in range(100_000):
        src = np.where(term[..., None], delta, dist[nxt])  # [S, W, G]
        weight = prob[..., None] * src
        new = np.bincount((rows + low_i).ravel(), (weight * (1 - w_up)).ravel(), minlength=n * atoms)
        new += np.bincount((rows + up_i).ravel(), (weight * w_up).ravel(), minlength=n * atoms)
        new = new.reshape(n, atoms)
        change = np.abs(np.cumsum(new - dist, axis=1)).sum(axis=1).max() * step  # Wasserstein-1
        dist = new
        if change < tol * max(hi - lo, 1.0):
            break
    returns, probs = [], []
    for s in range(n):
        keep = dist[s] > 1e-15
        returns.append(z[keep])
        probs.append(dist[s, keep] / dist[s, keep].sum())
    return ReturnDistributions(returns, probs, (step / 2) / (1 - gamma), False)


def _split(x: np.ndarray, lo: float, step: float, atoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid neighbours of values ``x`` and the weight of the upper one (linear split, clipped to the grid)."""
    b = np.clip((x - lo) / step, 0, atoms - 1)
    low = np.floor(b).astype(np.intp)
    up = np.minimum(low + 1, atoms - 1)
    return low, up, b - low


def wasserstein1(x1: np.ndarray, p1: np.ndarray, x2: np.ndarray, p2: np.ndarray) -> float:
    """Wasserstein-1 distance between two distributions on the line: the area between their CDFs."""
    xs = np.concatenate([x1, x2])
    order = np.argsort(xs, kind="stable")
    xs = xs[order]
    mass = np.concatenate([np.asarray(p1, float), -np.asarray(p2, float)])[order]
    cdf_gap = np.cumsum(mass)[:-1]
    return float(np.sum(np.abs(cdf_gap) * np.diff(xs)))


def project_c51(returns: np.ndarray, probs: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Probabilities on C51's ``support`` of a distribution (each return's mass split between the two atoms
    beside it, clipped to the support's range): the best a C51 agent with those atoms can represent."""
    lo, step, n = float(support[0]), float(support[1] - support[0]), len(support)
    low, up, w_up = _split(np.asarray(returns, float), lo, step, n)
    out = np.bincount(low, probs * (1 - w_up), minlength=n) + np.bincount(up, probs * w_up, minlength=n)
    return out


def project_quantiles(returns: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    """The distribution's values at quantile levels ``(2i + 1) / 2n`` (each of mass 1/n): the
    Wasserstein-1-closest distribution of ``n`` equally likely points, what QR-DQN learns."""
    cdf = np.cumsum(probs)
    taus = (np.arange(n) * 2 + 1) / (2 * n)
    return np.asarray(returns)[np.minimum(np.searchsorted(cdf, taus - 1e-12), len(returns) - 1)]


def distances(
    learned: list[tuple[np.ndarray, np.ndarray]], exact: ReturnDistributions, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per state, the Wasserstein-1 distance of a learned distribution ``(returns, probs)`` from the exact
    one, and the floor: the distance of the exact one from its best representation by the agent (its
    projection onto C51's atoms, or its ``n`` quantiles for QR-DQN)."""
    w1, floor = np.zeros(len(learned)), np.zeros(len(learned))
    for s, (returns, probs) in enumerate(learned):
        xs, ps = exact.returns[s], exact.probs[s]
        w1[s] = wasserstein1(returns, probs, xs, ps)
        if kind == "c51":
            floor[s] = wasserstein1(returns, project_c51(xs, ps, returns), xs, ps)
        else:
            n = len(returns)
            floor[s] = wasserstein1(project_quantiles(xs, ps, n), np.full(n, 1.0 / n), xs, ps)
    return w1, floor


def compare_agent(agent: Any, env: Any) -> tuple[list, ReturnDistributions, np.ndarray, np.ndarray, np.ndarray]:
    """A distributional agent against the truth on ``env``'s model: ``(learned, exact, w1, floor, policy)``,
    per state the greedy action's learned ``(returns, probs)``, the exact distributions of the agent's own
    greedy policy, and :func:`distances`."""
    q = agent.q_table(0)
    policy = greedy_policy(q)
    exact = return_distributions(Transitions.from_env(env), policy, agent.config.gamma)
    learned = []
    for state, action in enumerate(policy):
        returns, probs = agent.distribution(state)
        learned.append((returns[action], probs[action]))
    w1, floor = distances(learned, exact, agent.config.distributional)
    return learned, exact, w1, floor, policy
