"""Regression head: the baseline. One deterministic chunk per observation.

With multimodal demonstrations it averages the modes (the failure generative heads fix);
it is also the cheapest head to train and run, so every comparison starts here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.mlp import mlp


def masked_mean(per_step: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of a (B, H, ...) per-element loss over real steps only (mask (B, H) True = real)."""
    per_step = per_step.reshape(per_step.shape[0], per_step.shape[1], -1).mean(-1)
    if mask is None:
        return per_step.mean()
    m = mask.to(per_step.dtype)
    return (per_step * m).sum() / m.sum().clamp_min(1.0)


@register_head("regression")
class RegressionHead(ActionHead):
    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        loss: str = "l1",
        hidden: list[int] | tuple[int, ...] = (512, 512),
        dropout: float = 0.0,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if loss not in ("l1", "mse"):
            raise ConfigError(f"head.loss: expected 'l1' or 'mse', got {loss!r}")
        self.loss_type = loss
        self.net = mlp(cond_dim, list(hidden), horizon * action_dim, dropout=dropout)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond).view(-1, self.horizon, self.action_dim)

    def loss(self, cond, actions, mask=None):
        pred = self(cond)
        err = (
            F.l1_loss(pred, actions, reduction="none")
            if self.loss_type == "l1"
            else F.mse_loss(pred, actions, reduction="none")
        )
        return {"loss": masked_mean(err, mask)}

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        pred = self(cond)
        prefix, w = check_prefix(self, prefix, prefix_weights)
        if prefix is not None:  # a deterministic head can only blend toward the prefix
            pred = w[..., None] * prefix + (1 - w[..., None]) * pred
        return pred
