"""The chain MDP lower bound: BC's cost grows like eps*H^2, DAgger's like eps*H."""

import numpy as np
import pytest

from robolearn.envs.toy import (
    OFF,
    RECOVER,
    ChainMDP,
    closed_form_costs,
    exact_cost,
    expert_state_error,
    loglog_slope,
    simulate,
    train_bc,
    train_dagger,
)

EPS = 1e-3
HORIZONS = np.array([10, 20, 50, 100, 200])


def _dagger(h: int, eps: float = EPS):
    # enough rollouts that the learner slips ~50 times per round, so OFF gets visited
    return train_dagger(ChainMDP(h), eps, n_demos=1, rounds=2, rollouts_per_round=int(np.ceil(50 / (eps * h))))


@pytest.mark.parametrize("eps", [1e-3, 0.05])
@pytest.mark.parametrize("h", [1, 7, 60])
def test_dp_matches_closed_form(h, eps):
    mdp = ChainMDP(h)
    closed = closed_form_costs(eps, h)
    assert exact_cost(mdp, train_bc(mdp, eps, n_demos=3)) == pytest.approx(closed["bc_never_recovers"], rel=1e-9)
    assert exact_cost(mdp, _dagger(h, eps)[0]) == pytest.approx(closed["dagger_recovers"], rel=1e-9)


def test_monte_carlo_matches_exact():
    eps, h = 0.01, 40
    mdp = ChainMDP(h)
    for learner in (train_bc(mdp, eps, 1), _dagger(h, eps)[0]):
        mean, se = simulate(mdp, learner, 40_000, seed=3)
        assert abs(mean - exact_cost(mdp, learner)) < 4 * se + 1e-12


def test_same_loss_on_expert_states_different_cost():
    """The two learners are indistinguishable on the expert's states; only their own states differ."""
    h = 100
    mdp = ChainMDP(h)
    bc, (dag, hist) = train_bc(mdp, EPS, n_demos=20), _dagger(h)
    assert expert_state_error(mdp, bc) == pytest.approx(EPS)
    assert expert_state_error(mdp, dag) == pytest.approx(EPS)
    assert OFF not in bc.table and dag.table[OFF] == RECOVER
    assert hist[1]["visited_off"]
    assert exact_cost(mdp, bc) > 10 * exact_cost(mdp, dag)
    # more expert demos do not help BC: they never show the off-chain state
    assert exact_cost(mdp, train_bc(mdp, EPS, n_demos=1)) == pytest.approx(exact_cost(mdp, bc))
    # a BC learner that happens to generalise to 'recover' has the same training data and loss
    lucky = train_bc(mdp, EPS, n_demos=20, unseen="recover")
    assert lucky.table == bc.table
    assert exact_cost(mdp, lucky) < 2 * EPS * h


def test_bc_quadratic_dagger_linear_in_horizon():
    bc = np.array([exact_cost(ChainMDP(h), train_bc(ChainMDP(h), EPS, 1)) for h in HORIZONS])
    dag = np.array([exact_cost(ChainMDP(h), _dagger(h)[0]) for h in HORIZONS])
    assert 1.85 < loglog_slope(HORIZONS, bc) < 2.1
    assert 0.95 < loglog_slope(HORIZONS, dag) < 1.05
    ratio_bc = bc / (EPS * HORIZONS**2)
    assert np.all((ratio_bc > 0.4) & (ratio_bc < 0.6)), ratio_bc
    ratio_dag = dag / (EPS * HORIZONS)
    assert np.all((ratio_dag > 0.9) & (ratio_dag < 1.1)), ratio_dag


def test_simulated_costs_show_the_same_slopes():
    """The Monte-Carlo estimates, not just the DP, separate H^2 from H."""
    hs = np.array([20, 60, 180])
    bc, dag = [], []
    for i, h in enumerate(hs):
        mdp = ChainMDP(int(h))
        bc.append(simulate(mdp, train_bc(mdp, 0.002, 1), 20_000, seed=i)[0])
        dag.append(simulate(mdp, _dagger(int(h), 0.002)[0], 20_000, seed=10 + i)[0])
    assert 1.7 < loglog_slope(hs, np.array(bc)) < 2.2
    assert 0.8 < loglog_slope(hs, np.array(dag)) < 1.2


def test_reward_moment_learner_recovers_and_its_cost_is_linear_in_horizon():
    """Matching the expert's reward moment (an adversarial reward over (observation, action), the
    learner best-responding in the MDP, no expert query) learns to recover where BC never does:
    its cost is eps*H like DAgger's, not eps*H^2/2 like BC's."""
    from robolearn.envs.toy import OFF, RECOVER, train_reward_moment

    costs = []
    for h in HORIZONS:
        learner, hist = train_reward_moment(ChainMDP(int(h)), EPS, iters=20)
        assert learner.table[OFF] == RECOVER
        assert hist[0]["exact_cost"] > 5 * hist[-1]["exact_cost"]  # the first reply (reward 0) stays off
        costs.append(exact_cost(ChainMDP(int(h)), learner))
    costs = np.array(costs)
    assert 0.95 < loglog_slope(HORIZONS, costs) < 1.05
    np.testing.assert_allclose(costs / (EPS * HORIZONS), 1.0, rtol=0.1)
