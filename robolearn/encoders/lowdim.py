"""Low-dimensional observation encoders: identity (flatten history) or a small MLP per key."""

from __future__ import annotations

import torch
from torch import nn

from robolearn.nets.mlp import mlp


class LowDimEncoder(nn.Module):
    """Encodes one low-dim key, one time step at a time: (B, To, d) -> (B, To, out_dim)."""

    def __init__(self, dim: int, hidden: list[int] | tuple[int, ...] = (), out_dim: int | None = None):
        super().__init__()
        if not hidden and out_dim is None:
            self.net = nn.Identity()
            self.out_dim = dim
        else:
            out_dim = out_dim or hidden[-1]
            self.net = mlp(dim, list(hidden), out_dim, final_act=True)
            self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
