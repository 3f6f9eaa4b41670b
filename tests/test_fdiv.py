"""f-divergence variational bounds on two known Gaussians: with the optimal critic the bound is
the divergence (numerical integration), a trained critic gets near it, and any critic stays below."""

import math

import numpy as np
import pytest
import torch

from robolearn.errors import ConfigError
from robolearn.game.fdiv import DIVERGENCES, check_divergence, optimal_critic, variational_bound

MP, SP, MQ, SQ = 0.0, 1.0, 1.0, 1.3  # P = expert, Q = learner


def logpdf(x, m, s):
    return -0.5 * ((x - m) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))


def truth(name: str) -> float:
    """D_f(P || Q) = E_Q[f(p / q)] by quadrature on a fine grid."""
    x = np.linspace(-12, 14, 400_001)
    p, q = np.exp(logpdf(x, MP, SP)), np.exp(logpdf(x, MQ, SQ))
    u = p / q
    f = {
        "forward_kl": u * np.log(u),
        "reverse_kl": -np.log(u),
        "js": u * np.log(u) - (u + 1) * np.log((u + 1) / 2),
        "chi2": (u - 1) ** 2,
    }[name]
    integrate = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it
    return float(integrate(q * f, x))


def test_forward_kl_quadrature_equals_the_gaussian_closed_form():
    kl = math.log(SQ / SP) + (SP**2 + (MP - MQ) ** 2) / (2 * SQ**2) - 0.5
    assert truth("forward_kl") == pytest.approx(kl, rel=1e-6)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_bound_at_the_optimal_critic_is_the_divergence(name):
    """The critic V with g(V) = T* = f'(p/q) (g inverted by evaluating the bound on T directly)."""
    g = torch.Generator().manual_seed(0)
    n = 400_000
    xp = MP + SP * torch.randn(n, generator=g, dtype=torch.float64)
    xq = MQ + SQ * torch.randn(n, generator=g, dtype=torch.float64)
    ratio = lambda x: torch.exp(logpdf(x, MP, SP) - logpdf(x, MQ, SQ))  # noqa: E731
    _, conj, _ = DIVERGENCES[name]
    t_p, t_q = optimal_critic(ratio(xp), name), optimal_critic(ratio(xq), name)
    est = float(t_p.mean() - conj(t_q).mean())
    assert est == pytest.approx(truth(name), rel=0.03, abs=2e-3)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_a_trained_critic_approaches_the_divergence_from_below(name):
    """A small MLP critic trained to maximise the bound gets within 15% of the divergence; the
    bound of any critic (the untrained one, a constant) is below it."""
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                 torch.nn.Tanh(), torch.nn.Linear(64, 1))  # fmt: skip
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(1500):
        xp = MP + SP * torch.randn(512, 1, generator=g)
        xq = MQ + SQ * torch.randn(512, 1, generator=g)
        loss = -variational_bound(critic(xp), critic(xq), name)
        opt.zero_grad()
        loss.backward()
        opt.step()
    xp = MP + SP * torch.randn(200_000, 1, generator=g)
    xq = MQ + SQ * torch.randn(200_000, 1, generator=g)
    with torch.no_grad():
        est = float(variational_bound(critic(xp), critic(xq), name))
        const = float(variational_bound(torch.zeros(10, 1), torch.zeros(10, 1), name))
    d = truth(name)
    assert est == pytest.approx(d, rel=0.15), (est, d)
    assert const <= d + 1e-9 and est <= d * 1.02  # a lower bound (up to Monte Carlo noise)


def test_unknown_divergence_is_one_line():
    with pytest.raises(ConfigError, match=r"divergence: expected one of .*'chi2'.*found 'wasserstein'"):
        check_divergence("wasserstein")
