"""f-divergences through their variational bound: the adversary's objective in f-GAIL / f-IRL.

D_f(P || Q) = E_Q[f(p / q)] >= sup_T E_P[T] - E_Q[f*(T)] (Nguyen, Wainwright & Jordan 2010;
f-GAN, Nowozin et al. 2016), with equality at T* = f'(p / q). A critic outputs an unconstrained
V(x); the divergence's output activation maps it into the domain of the conjugate f*. Which
divergence is one option (``name``): forward KL (maximum likelihood's, mode covering), reverse
KL (AIRL's, mode seeking), Jensen-Shannon (GAIL's) or Pearson chi-squared.

P is the expert's distribution and Q the learner's: the critic is trained to maximise the bound,
and the learner is rewarded by the critic (``reward``), so that raising its reward lowers the
divergence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robolearn.errors import ConfigError

# name -> (output activation g: V -> dom f*, conjugate f*(t), optimal T as a function of the ratio p/q)
DIVERGENCES = {
    "forward_kl": (lambda v: v, lambda t: torch.exp(t - 1.0), lambda u: 1.0 + torch.log(u)),
    "reverse_kl": (lambda v: -torch.exp(-v), lambda t: -1.0 - torch.log(-t), lambda u: -1.0 / u),
    "js": (
        lambda v: math.log(2.0) - F.softplus(-v),
        lambda t: -torch.log(2.0 - torch.exp(t)),
        lambda u: torch.log(2.0 * u / (1.0 + u)),
    ),
    "chi2": (lambda v: v, lambda t: 0.25 * t * t + t, lambda u: 2.0 * (u - 1.0)),
}


def check_divergence(name: str) -> str:
    if name not in DIVERGENCES:
        raise ConfigError(f"divergence: expected one of {sorted(DIVERGENCES)}, found {name!r}")
    return name


def variational_bound(v_expert: torch.Tensor, v_learner: torch.Tensor, name: str) -> torch.Tensor:
    """E_P[g(V)] - E_Q[f*(g(V))]: a lower bound on D_f(P || Q), tight at the optimal critic.
    ``v_expert``: critic outputs on expert samples (P), ``v_learner`` on the learner's (Q)."""
    g, conj, _ = DIVERGENCES[check_divergence(name)]
    return g(v_expert).mean() - conj(g(v_learner)).mean()


def optimal_critic(ratio: torch.Tensor, name: str) -> torch.Tensor:
    """T*(x) = f'(p(x) / q(x)): the critic value at which the bound is tight (for known densities)."""
    return DIVERGENCES[check_divergence(name)][2](ratio)


def reward(v_learner: torch.Tensor, name: str) -> torch.Tensor:
    """The learner's reward on its own samples: the critic's T = g(V), which is larger where the
    expert's density is larger relative to the learner's (T* is increasing in p/q)."""
    return DIVERGENCES[check_divergence(name)][0](v_learner)
