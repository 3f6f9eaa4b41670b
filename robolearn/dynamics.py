"""A learned dynamics model that is trusted only where it is smooth (CCIL, Ke et al. 2024).

``LearnedDynamics`` predicts the next state as s' = s + f(s, a), f an MLP over normalized
inputs. Training minimizes the squared error of the normalized change plus a local Lipschitz
penalty: at training pairs, the norm of a random projection of d f / d s (one vector-Jacobian
product, an unbiased probe of the Jacobian's size) above ``lipschitz`` is penalized. CCIL's
argument: where the dynamics are locally Lipschitz, a state near a demonstrated one and an action
near the demonstrated action land near the demonstrated next state, so a corrective label
generated with the model is only as wrong as the model is there.

``fit_dynamics`` trains one; ``cross_fit`` trains two on complementary halves of the episodes, so
that every transition has a prediction error from a model that never saw it (what decides which
generated labels are trusted).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robolearn.errors import ConfigError


class LearnedDynamics(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        dims = [state_dim + action_dim, *hidden, state_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.Mish())
        self.net = nn.Sequential(*layers)
        for name, d in (("s", state_dim), ("a", action_dim), ("ds", state_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(d))
            self.register_buffer(f"{name}_std", torch.ones(d))

    def set_scales(self, s: np.ndarray, a: np.ndarray, ds: np.ndarray) -> None:
        for name, x in (("s", s), ("a", a), ("ds", ds)):
            x = torch.as_tensor(x, dtype=torch.float32)
            getattr(self, f"{name}_mean").copy_(x.mean(0))
            getattr(self, f"{name}_std").copy_(x.std(0).clamp_min(1e-6))

    def delta_normalized(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        sn = (s - self.s_mean) / self.s_std
        an = (a - self.a_mean) / self.a_std
        return self.net(torch.cat([sn, an], dim=-1))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s + self.ds_mean + self.ds_std * self.delta_normalized(s, a)

    @torch.no_grad()
    def predict(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        out = self(torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32))
        return out.numpy().astype(np.float64)


def fit_dynamics(
    s: np.ndarray,
    a: np.ndarray,
    s_next: np.ndarray,
    *,
    hidden: tuple[int, ...] = (256, 256),
    steps: int = 3000,
    batch: int = 256,
    lr: float = 1e-3,
    lipschitz: float = 2.0,
    penalty: float = 1.0,
    seed: int = 0,
) -> LearnedDynamics:
    """Train on transitions (N, S), (N, A), (N, S); ``lipschitz`` bounds the probed Jacobian norm of
    the normalized change with respect to the normalized state, ``penalty`` weighs the hinge."""
    if len(s) < 2:
        raise ConfigError(f"dynamics: expected at least 2 transitions to fit, found {len(s)}")
    if lipschitz <= 0 or penalty < 0:
        raise ConfigError(f"dynamics: expected lipschitz > 0 and penalty >= 0, found {lipschitz}, {penalty}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LearnedDynamics(s.shape[1], a.shape[1], hidden)
    model.set_scales(s, a, s_next - s)
    S, A, T = (torch.as_tensor(x, dtype=torch.float32) for x in (s, a, s_next - s))
    T = (T - model.ds_mean) / model.ds_std
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        idx = torch.randint(0, len(S), (batch,), generator=g)
        si = S[idx].requires_grad_(True)
        pred = model.delta_normalized(si, A[idx])
        loss = (pred - T[idx]).pow(2).mean()
        if penalty > 0:
            v = torch.randn(pred.shape, generator=g)
            (grad,) = torch.autograd.grad((pred * v).sum(), si, create_graph=True)
            jac = (grad * model.s_std).norm(dim=-1)  # d f / d s_normalized, probed along v
            loss = loss + penalty * torch.relu(jac - lipschitz).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def cross_fit(
    s: np.ndarray, a: np.ndarray, s_next: np.ndarray, episode: np.ndarray, **fit_kw
) -> tuple[list[LearnedDynamics], np.ndarray]:
    """Two models on complementary halves of the episodes (``episode`` (N,) ids). Returns the
    models and, per transition, which one did not see it (0 or 1)."""
    ids = np.unique(episode)
    rng = np.random.default_rng(fit_kw.get("seed", 0))
    half = set(rng.permutation(ids)[: len(ids) // 2].tolist())
    fold = np.array([1 if e in half else 0 for e in episode])  # fold 1 = held out from model 0
    models = [fit_dynamics(s[fold == k], a[fold == k], s_next[fold == k], **fit_kw) for k in (1, 0)]
    # models[0] trained on fold 1, so it predicts fold 0's transitions unseen, and the other way round
    return models, fold
