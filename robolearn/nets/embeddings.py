"""Embeddings for continuous time / noise level, shared by every iterative head.

All heads hand their networks a time ``t`` in [0, 1] (diffusion: timestep / num_train_timesteps;
flow and MIP: the interpolation time). The sinusoid is evaluated at ``t * scale`` with
scale 1000 so that [0, 1] covers the same frequencies as integer DDPM timesteps do.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sin/cos features of a scalar per batch element: (B,) -> (B, dim)."""

    def __init__(self, dim: int, scale: float = 1000.0, max_period: float = 10000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"SinusoidalEmbedding dim must be even and >= 2, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = scale

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = (t.float() * self.scale)[:, None] * self.freqs[None]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class TimeEmbedding(nn.Module):
    """Sinusoid followed by a 2-layer MLP (the Diffusion Policy / DiT recipe): (B,) -> (B, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(SinusoidalEmbedding(dim), nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(t)
