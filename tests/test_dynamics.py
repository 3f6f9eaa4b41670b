"""The learned dynamics model's local Lipschitz penalty (CCIL): it bounds the model's Jacobian where
the data would make it steep, at the price of fit."""

import numpy as np
import torch

from robolearn.dynamics import fit_dynamics


def _jacobian_norms(model, s, a):
    """Exact ||d f / d s_normalized|| (the change's, normalized) at each state, 1-D state."""
    si = torch.as_tensor(s, dtype=torch.float32).requires_grad_(True)
    out = model.delta_normalized(si, torch.as_tensor(a, dtype=torch.float32))
    (g,) = torch.autograd.grad(out.sum(), si)
    return (g * model.s_std).abs().squeeze(-1).numpy()  # one output dim: the sum is the Jacobian


def test_the_penalty_bounds_the_jacobian_where_the_data_is_steep():
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, (512, 1))
    a = rng.uniform(-1, 1, (512, 1))
    s_next = s + np.sin(6 * s) + 0.1 * a  # the change swings fast with s: a steep true Jacobian
    kw = dict(hidden=(64, 64), steps=600, batch=128, lr=3e-3, seed=0)
    free = fit_dynamics(s, a, s_next, penalty=0.0, **kw)
    bounded = fit_dynamics(s, a, s_next, penalty=10.0, lipschitz=0.5, **kw)
    j_free, j_bounded = _jacobian_norms(free, s, a), _jacobian_norms(bounded, s, a)
    assert np.quantile(j_free, 0.9) > 1.5  # unpenalized, the model follows the steep data
    assert np.quantile(j_bounded, 0.9) < 0.5 * np.quantile(j_free, 0.9)
    assert (j_bounded > 0.5 * 1.5).mean() < (j_free > 0.5 * 1.5).mean()
    err = lambda m: float(np.mean((m.predict(s, a) - s_next) ** 2))  # noqa: E731
    assert err(bounded) > err(free)  # smoothness is bought with fit, not free
