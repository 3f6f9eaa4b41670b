"""Mixture-density head: K diagonal Gaussians over the whole flattened chunk.

The cheapest multimodal head: one forward pass, exact likelihood, and each component is a
whole coherent chunk, so modes never mix within a chunk (a per-step mixture would). The
price is that K bounds the number of modes and diagonal covariances cannot correlate steps
inside a component.

``eval_mode``: ``sample`` draws a component then a chunk; ``mode`` returns the mean of the
most probable component (deterministic; the usual choice for execution). ``min_std`` floors
every standard deviation so the likelihood cannot collapse onto single training points.

Inpainting (prefix / prefix_weights W): the mixture is conditioned on the prefix by
re-weighting components with the prefix's likelihood under each, tempered per step by W:
log pi_k + sum_{h,a} W_h log N(prefix_{h,a}; mu_k, sigma_k). With W in {0, 1} this is exact
Bayesian conditioning; soft weights interpolate. Given a component the dimensions are
independent, so the free steps are drawn from the chosen component as usual; finally the
output is blended W prefix + (1 - W) sample, so W = 1 steps equal the prefix exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.mlp import mlp

LOG_2PI = math.log(2 * math.pi)


@register_head("mdn")
class MDNHead(ActionHead):
    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        num_components: int = 5,
        hidden: list[int] | tuple[int, ...] = (512, 512),
        min_std: float = 1e-2,
        eval_mode: str = "sample",
        dropout: float = 0.0,
        **unknown,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if unknown:
            raise ConfigError(f"head: unknown option(s) {', '.join(sorted(unknown))} for the mdn head")
        if int(num_components) < 1:
            raise ConfigError(f"head.num_components: expected >= 1, got {num_components}")
        if not float(min_std) >= 0:
            raise ConfigError(f"head.min_std: expected >= 0, got {min_std}")
        if eval_mode not in ("sample", "mode"):
            raise ConfigError(f"head.eval_mode: expected 'sample' or 'mode', got {eval_mode!r}")
        self.K = int(num_components)
        self.D = horizon * action_dim
        self.min_std = float(min_std)
        self.eval_mode = eval_mode
        self.net = mlp(cond_dim, list(hidden), self.K * (1 + 2 * self.D), dropout=dropout)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> log mixture weights (B, K), means (B, K, D), stds (B, K, D)."""
        out = self.net(cond).float()  # likelihoods in fp32 even under bf16 autocast
        logits, mu, raw = out.split([self.K, self.K * self.D, self.K * self.D], dim=-1)
        std = F.softplus(raw) + self.min_std
        B = cond.shape[0]
        return logits.log_softmax(-1), mu.view(B, self.K, self.D), std.view(B, self.K, self.D)

    @staticmethod
    def _log_normal(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Per-dimension log density; x (B, D) broadcast against (B, K, D)."""
        return -0.5 * (((x[:, None] - mu) / std) ** 2 + LOG_2PI) - std.log()

    def loss(self, cond, actions, mask=None):
        log_pi, mu, std = self(cond)
        B = actions.shape[0]
        # padded steps are marginalised out: with diagonal covariances that is dropping their dims
        dim_w = actions.new_ones(B, self.horizon) if mask is None else mask.to(actions.dtype)
        dim_w = dim_w[..., None].expand(B, self.horizon, self.action_dim).reshape(B, self.D)
        ll = (self._log_normal(actions.reshape(B, self.D), mu, std) * dim_w[:, None]).sum(-1)
        nll = -torch.logsumexp(log_pi + ll, dim=-1)
        return {"loss": nll.sum() / dim_w.sum().clamp_min(1.0), "nll_per_chunk": nll.mean().detach()}

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        log_pi, mu, std = self(cond)
        B = cond.shape[0]
        if prefix is not None:
            dim_w = w[..., None].expand(B, self.horizon, self.action_dim).reshape(B, self.D)
            log_pi = log_pi + (self._log_normal(prefix.reshape(B, self.D), mu, std) * dim_w[:, None]).sum(-1)
        if self.eval_mode == "mode":
            k = log_pi.argmax(-1)
        else:
            k = torch.multinomial(log_pi.softmax(-1), 1, generator=generator).squeeze(-1)
        idx = k[:, None, None].expand(B, 1, self.D)
        m, s = mu.gather(1, idx).squeeze(1), std.gather(1, idx).squeeze(1)
        x = (
            m
            if self.eval_mode == "mode"
            else m + s * torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        )
        x = x.view(B, self.horizon, self.action_dim)
        if prefix is not None:
            x = w[..., None] * prefix + (1 - w[..., None]) * x
        return x
