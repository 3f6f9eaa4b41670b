"""Imitation as a game on tabular MDPs with known answers: the duality gap of the moment-matching
game goes to zero and its mixed policy earns the expert's return; MaxEnt IRL matches the
expert's moments; AIRL's potential shaping leaves the optimal policy unchanged."""

import numpy as np
import pytest

from robolearn.errors import ConfigError
from robolearn.game.tabular import (
    TabularMDP,
    features,
    greedy,
    maxent_irl,
    q_values,
    random_mdp,
    shaped_reward,
    solve_game,
    value,
)


def two_state_mdp(gamma: float = 0.9) -> TabularMDP:
    """States {0, 1}, actions {stay, switch}, deterministic; start in 0. Features: being in each
    state (whatever the action). The expert moves to state 1 and stays: its moments are
    ((1 - gamma), gamma) in normalised occupancy."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    phi = np.zeros((2, 2, 2))
    phi[0, :, 0] = phi[1, :, 1] = 1.0
    return TabularMDP(P, np.array([1.0, 0.0]), gamma, phi)


def test_the_two_state_game_has_the_known_equilibrium():
    """Known answer: only "switch, then stay" reaches mu_E = (0.1, 0.9); the game value is 0 and
    the equilibrium policy is the expert's. The gap falls to below 0.01 and the returned
    mixture is that policy (up to the weight of early rounds)."""
    mdp = two_state_mdp()
    expert = np.array([[0.0, 1.0], [1.0, 0.0]])  # switch in 0, stay in 1
    mu_e = features(mdp, expert)
    np.testing.assert_allclose(mu_e, [0.1, 0.9])
    res = solve_game(mdp, mu_e, iterations=400)
    assert res.gap[-1] < 0.01 and res.gap[-1] < 0.2 * res.gap[0]
    assert all(g >= -1e-9 for g in res.gap)  # a duality gap is never negative
    np.testing.assert_allclose(features(mdp, res.policy), mu_e, atol=0.01)
    assert res.policy[0, 1] > 0.95 and res.policy[1, 0] > 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_game_on_random_mdps_recovers_the_experts_value_for_every_reward_in_the_span(seed):
    """A random MDP, a random expert (the optimal policy of a hidden reward in the features'
    span), one-hot features: the duality gap decreases toward 0, and the learner's mixed policy
    earns the expert's return under the hidden reward within the final moment gap (times the
    reward's l1 norm), the bound the game guarantees."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(5, 3, 0.9, rng)
    w_true = rng.normal(size=mdp.phi.shape[-1])
    r_true = mdp.phi @ w_true
    expert = greedy(q_values(mdp, r_true))
    mu_e = features(mdp, expert)
    res = solve_game(mdp, mu_e, iterations=1500)
    assert res.gap[-1] < 0.5 * res.gap[9] and res.gap[-1] < 0.05
    regret = value(mdp, expert, r_true) - float((res.policy_occupancy * r_true).sum())
    assert abs(regret) <= res.moment_gap[-1] * np.abs(w_true).sum() + 1e-9
    assert abs(regret) < 0.05 * np.abs(r_true).max()


def test_maxent_irl_matches_the_experts_moments():
    rng = np.random.default_rng(4)
    mdp = random_mdp(4, 2, 0.8, rng, n_features=3)
    expert = greedy(q_values(mdp, mdp.phi @ rng.normal(size=3)))
    mu_e = features(mdp, expert)
    res = maxent_irl(mdp, mu_e, iterations=400, lr=2.0)
    assert res.moment_gap[-1] < 0.1 * res.moment_gap[0] and res.moment_gap[-1] < 0.02
    np.testing.assert_allclose(features(mdp, res.policy), mu_e, atol=0.02)


@pytest.mark.parametrize("seed", [0, 1])
def test_airl_shaping_leaves_the_optimal_policy_unchanged(seed):
    """g + gamma h(s') - h(s) has Q' = Q - h(s): the same greedy policy for any potential h.
    A shaping that forgets the discount (h(s') - h(s)) changes Q' by more than h (caught)."""
    rng = np.random.default_rng(seed)
    mdp = random_mdp(6, 3, 0.95, rng)
    g, h = rng.normal(size=(6, 3)), 10 * rng.normal(size=6)
    q, q_shaped = q_values(mdp, g), q_values(mdp, shaped_reward(mdp, g, h))
    np.testing.assert_allclose(q_shaped, q - h[:, None], atol=1e-6)
    assert np.array_equal(greedy(q_shaped), greedy(q))
    undiscounted = g + mdp.P @ h - h[:, None]  # the plausible slip: h(s') without gamma
    assert np.abs(q_values(mdp, undiscounted) - (q - h[:, None])).max() > 1.0


def test_bad_settings_are_one_line():
    mdp = two_state_mdp()
    with pytest.raises(ConfigError, match="mu_expert"):
        solve_game(mdp, np.zeros(3))
    with pytest.raises(ConfigError, match="iterations"):
        solve_game(mdp, np.zeros(2), iterations=0)
    with pytest.raises(ConfigError, match="gamma"):
        TabularMDP(mdp.P, mdp.mu0, 1.0, mdp.phi)
