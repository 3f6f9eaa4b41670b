"""Compose per-key encoders into one conditioning vector (or a token sequence).

This first version handles low-dim keys only; image keys are added by encoders/image.py.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from envs.base import ObsSpec
from robolearn.encoders.base import ObsEncoder
from robolearn.encoders.lowdim import LowDimEncoder
from robolearn.errors import ConfigError


class MultiKeyEncoder(ObsEncoder):
    def __init__(self, obs_spec: dict[str, ObsSpec], obs_horizon: int, lowdim_hidden=(), lowdim_out: int | None = None):
        super().__init__()
        self.keys = sorted(obs_spec)
        self.obs_horizon = obs_horizon
        self.enc = nn.ModuleDict()
        for k in self.keys:
            spec = obs_spec[k]
            if spec.kind != "lowdim":
                raise ConfigError(f"observation key {k!r}: kind {spec.kind!r} has no encoder yet")
            self.enc[k] = LowDimEncoder(int(spec.shape[-1]), list(lowdim_hidden), lowdim_out)
        per_step = sum(self.enc[k].out_dim for k in self.keys)
        self.token_dim = per_step
        self.out_dim = per_step * obs_horizon

    def tokens(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [self.enc[k](obs[k]) for k in self.keys]  # (B, To, d_k)
        return torch.cat(feats, dim=-1)  # one token per time step

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.tokens(obs).flatten(1)


def build_encoder(cfg: dict[str, Any], obs_spec: dict[str, ObsSpec], obs_horizon: int) -> ObsEncoder:
    cfg = dict(cfg or {})
    low = dict(cfg.get("lowdim", {}) or {})
    return MultiKeyEncoder(obs_spec, obs_horizon, lowdim_hidden=low.get("hidden", ()), lowdim_out=low.get("out_dim"))
