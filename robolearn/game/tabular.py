"""Imitation as a two-player game, solved exactly on tabular MDPs.

The reward moment (Swamy et al. 2021): an adversary picks the reward r_w = w . phi that makes
the learner look worst against the expert, f(pi, w) = J(pi_E, r_w) - J(pi, r_w) = w . (mu_E -
mu_pi), where mu_pi is pi's discounted feature expectation; the learner minimises the worst
case. With w in the simplex over the signed features (+phi_k, -phi_k), max_w f(pi, w) =
||mu_E - mu_pi||_inf: the game's value is 0 exactly when some (mixed) policy matches the
expert's moments, and its equilibrium policy then earns the expert's return under every reward
in the features' span.

``solve_game`` plays it as no-regret (multiplicative weights) reward player against an exact
best-response policy player (value iteration), the MWAL scheme of Syed & Schapire (2007). The
learner's answer is the uniform mixture of its best responses (their average occupancy); the
duality gap max_w f(pi_bar, w) - min_pi f(pi, w_bar) bounds how far both averages are from an
equilibrium and goes to 0 as O(sqrt(log K / T)). ``maxent_irl`` is Ziebart et al.'s (2008)
maximum-entropy IRL: soft value iteration, gradient mu_E - mu_theta. ``shaped_reward`` is AIRL's
g(s, a) + gamma h(s') - h(s) in expectation: potential-based shaping (Ng et al. 1999), which
leaves the optimal policy unchanged.

Everything here is exact linear algebra on (S, A) arrays: the ground truth against which the
continuous adversarial methods are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robolearn.errors import ConfigError


@dataclass(frozen=True)
class TabularMDP:
    """P[s, a, s'] transition probabilities, mu0[s] initial distribution, discount gamma < 1,
    features phi[s, a, k] (the reward class r_w = phi @ w)."""

    P: np.ndarray
    mu0: np.ndarray
    gamma: float
    phi: np.ndarray

    def __post_init__(self):
        S, A, S2 = self.P.shape
        if S != S2 or not np.allclose(self.P.sum(-1), 1.0) or (self.P < 0).any():
            raise ConfigError(f"P: expected (S, A, S) rows of probabilities, found shape {self.P.shape}")
        if self.mu0.shape != (S,) or not np.isclose(self.mu0.sum(), 1.0):
            raise ConfigError(f"mu0: expected a distribution over {S} states, found {self.mu0}")
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"gamma: expected a number in [0, 1), found {self.gamma}")
        if self.phi.ndim != 3 or self.phi.shape[:2] != (S, A):
            raise ConfigError(f"phi: expected features of shape ({S}, {A}, K), found {self.phi.shape}")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def q_values(mdp: TabularMDP, r: np.ndarray, tol: float = 1e-10, max_iter: int = 100_000) -> np.ndarray:
    """Optimal Q for reward r[s, a] by value iteration (a contraction: to ``tol`` in the max norm)."""
    q = np.zeros_like(r, dtype=np.float64)
    for _ in range(max_iter):
        new = r + mdp.gamma * mdp.P @ q.max(1)
        if np.abs(new - q).max() < tol:
            return new
        q = new
    return q


def greedy(q: np.ndarray) -> np.ndarray:
    """The deterministic policy pi[s, a] of a Q table (ties: the first action)."""
    pi = np.zeros_like(q)
    pi[np.arange(len(q)), q.argmax(1)] = 1.0
    return pi


def occupancy(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Normalised discounted state-action occupancy d[s, a] = (1 - gamma) sum_t gamma^t P(s_t, a_t)."""
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    d_s = (1 - mdp.gamma) * np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi.T, mdp.mu0)
    return d_s[:, None] * pi


def features(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """mu_pi[k] = E_{d_pi}[phi_k]: the moments the game compares."""
    return np.einsum("sa,sak->k", occupancy(mdp, pi), mdp.phi)


def value(mdp: TabularMDP, pi: np.ndarray, r: np.ndarray) -> float:
    """J(pi, r) = E_{d_pi}[r] (normalised: a reward of 1 everywhere is worth 1)."""
    return float((occupancy(mdp, pi) * r).sum())


@dataclass
class GameResult:
    policy_occupancy: np.ndarray  # the mixture of best responses, as its occupancy d[s, a]
    policy: np.ndarray  # the stationary policy with that occupancy
    w_bar: np.ndarray  # the reward player's average weights over the signed features (2K,)
    gap: list[float] = field(default_factory=list)  # duality gap after each iteration
    moment_gap: list[float] = field(default_factory=list)  # ||mu_E - mu_mix||_inf after each iteration


def policy_from_occupancy(d: np.ndarray) -> np.ndarray:
    """The stationary policy whose occupancy is d (uniform where a state is never visited)."""
    tot = d.sum(1, keepdims=True)
    return np.where(tot > 0, d / np.where(tot > 0, tot, 1.0), 1.0 / d.shape[1])


def solve_game(mdp: TabularMDP, mu_expert: np.ndarray, iterations: int = 500, eta: float | None = None) -> GameResult:
    """Moment matching as a zero-sum game: multiplicative weights over the 2K signed features
    against exact best responses. Returns the mixed policy and the duality gap per iteration."""
    if iterations < 1:
        raise ConfigError(f"iterations: expected >= 1, found {iterations}")
    K = mdp.phi.shape[-1]
    if mu_expert.shape != (K,):
        raise ConfigError(f"mu_expert: expected the expert's {K} feature expectations, found shape {mu_expert.shape}")
    signed = np.concatenate([mdp.phi, -mdp.phi], axis=-1)  # (S, A, 2K)
    scale = max(float(np.abs(mdp.phi).max()), 1e-12)
    eta = np.sqrt(8 * np.log(2 * K) / iterations) / (2 * scale) if eta is None else eta
    logw = np.zeros(2 * K)
    d_sum, w_sum = np.zeros(mdp.P.shape[:2]), np.zeros(2 * K)
    mu_e_signed = np.concatenate([mu_expert, -mu_expert])
    out = GameResult(np.zeros(0), np.zeros(0), np.zeros(0))
    for t in range(1, iterations + 1):
        w = np.exp(logw - logw.max())
        w /= w.sum()
        r = signed @ w  # the adversary's reward for this round
        pi = greedy(q_values(mdp, r))  # the learner's best response: maximise J(pi, r_w)
        d = occupancy(mdp, pi)
        mu_signed = np.einsum("sa,sak->k", d, signed)
        logw += eta * (mu_e_signed - mu_signed)  # the adversary gains where the expert beats the learner
        d_sum += d
        w_sum += w
        d_bar, w_bar = d_sum / t, w_sum / t
        mu_bar = np.einsum("sa,sak->k", d_bar, mdp.phi)
        worst_reward_gap = float(np.abs(mu_expert - mu_bar).max())  # max_w f(pi_bar, w)
        r_bar = signed @ w_bar
        best_response = float(w_bar @ mu_e_signed) - value(mdp, greedy(q_values(mdp, r_bar)), r_bar)
        out.gap.append(worst_reward_gap - best_response)  # >= 0; 0 at an equilibrium
        out.moment_gap.append(worst_reward_gap)
    out.policy_occupancy, out.w_bar = d_sum / iterations, w_sum / iterations
    out.policy = policy_from_occupancy(out.policy_occupancy)
    return out


def soft_policy(mdp: TabularMDP, r: np.ndarray, tol: float = 1e-10, max_iter: int = 100_000) -> np.ndarray:
    """The maximum-entropy optimal policy for reward r (soft value iteration)."""
    v = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        q = r + mdp.gamma * mdp.P @ v
        m = q.max(1)
        new = m + np.log(np.exp(q - m[:, None]).sum(1))
        if np.abs(new - v).max() < tol:
            v = new
            break
        v = new
    q = r + mdp.gamma * mdp.P @ v
    return np.exp(q - v[:, None])


@dataclass
class MaxEntResult:
    theta: np.ndarray
    policy: np.ndarray
    moment_gap: list[float] = field(default_factory=list)  # ||mu_E - mu_theta||_inf per iteration


def maxent_irl(mdp: TabularMDP, mu_expert: np.ndarray, iterations: int = 300, lr: float = 1.0) -> MaxEntResult:
    """Maximum-entropy IRL: ascend the likelihood, whose gradient is mu_E - mu_{pi_theta}."""
    if iterations < 1:
        raise ConfigError(f"iterations: expected >= 1, found {iterations}")
    theta = np.zeros(mdp.phi.shape[-1])
    out = MaxEntResult(theta, np.zeros(0))
    for _ in range(iterations):
        pi = soft_policy(mdp, mdp.phi @ theta)
        grad = mu_expert - features(mdp, pi)
        out.moment_gap.append(float(np.abs(grad).max()))
        theta = theta + lr * grad
    out.theta, out.policy = theta, soft_policy(mdp, mdp.phi @ theta)
    return out


def shaped_reward(mdp: TabularMDP, g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """AIRL's reward g(s, a) + gamma h(s') - h(s), in expectation over s' ~ P(s, a): g is the
    state-action reward part, h a potential. Potential shaping: same optimal policy, Q - h(s)."""
    if g.shape != mdp.P.shape[:2] or h.shape != (mdp.n_states,):
        raise ConfigError(
            f"shaped_reward: expected g {mdp.P.shape[:2]} and h ({mdp.n_states},), found {g.shape}, {h.shape}"
        )
    return g + mdp.gamma * mdp.P @ h - h[:, None]


def random_mdp(n_states: int, n_actions: int, gamma: float, rng: np.random.Generator, n_features: int | None = None):
    """A random tabular MDP (Dirichlet rows) with one-hot state-action features by default."""
    P = rng.dirichlet(np.ones(n_states) * 0.5, size=(n_states, n_actions))
    mu0 = rng.dirichlet(np.ones(n_states))
    if n_features is None:
        phi = np.eye(n_states * n_actions).reshape(n_states, n_actions, -1)
    else:
        phi = rng.normal(size=(n_states, n_actions, n_features))
    return TabularMDP(P, mu0, gamma, phi)
