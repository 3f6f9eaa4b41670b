"""Shortcut head: a flow that can jump, so one or two network passes give a whole chunk.

Frans, Hafner, Levine, Abbeel 2024 ("One Step Diffusion via Shortcut Models"). The velocity
network also sees the step size d it will be used with, v(x_t, t, d). Most of each batch
trains it as plain flow matching (d = 0: the instantaneous velocity); the rest trains a step of
size 2d to land where two steps of size d land (self-consistency, targets without gradient),
for d = 1/2, 1/4, ... down to 1 / ``max_steps``. Sampling takes ``num_steps`` Euler steps of
size 1 / ``num_steps`` (a power of two up to ``max_steps``); ``num_steps: 1`` is one pass.

The step size enters as one more conditioning input (appended to ``cond``), so any denoiser
of ``nets/`` serves. Inpainting (prefix / prefix_weights) replaces the weighted steps by the
prefix carried along the same noise path at every step, and frozen steps (weight >= 0.999)
end exactly at the prefix.
"""

from __future__ import annotations

import math

import torch

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.denoiser import build_denoiser, masked_mse

FROZEN = 0.999


@register_head("shortcut")
class ShortcutHead(ActionHead):
    nfe_option = "num_steps"

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        denoiser: str = "unet",
        num_steps: int = 1,
        max_steps: int = 128,
        consistency_fraction: float = 0.25,
        **net_options,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        for name, v in (("num_steps", num_steps), ("max_steps", max_steps)):
            if not isinstance(v, int) or v < 1 or v & (v - 1):
                raise ConfigError(f"head.{name}: expected a power of two >= 1, got {v!r}")
        if num_steps > max_steps:
            raise ConfigError(f"head.num_steps: expected <= max_steps={max_steps}, got {num_steps}")
        if not 0.0 <= float(consistency_fraction) < 1.0:
            raise ConfigError(f"head.consistency_fraction: expected a number in [0, 1), got {consistency_fraction}")
        self.num_steps, self.max_steps = int(num_steps), int(max_steps)
        self.consistency_fraction = float(consistency_fraction)
        self.net = build_denoiser(denoiser, action_dim, horizon, cond_dim + 1, **net_options)

    def _v(self, x, t, d, cond):
        # log2 of the step size, scaled to about [-1, 0] (d = 0 for plain flow sits just below)
        code = torch.where(d > 0, torch.log2(d.clamp_min(1e-9)), torch.full_like(d, -math.log2(self.max_steps) - 1))
        code = code / (math.log2(self.max_steps) + 1)
        return self.net(x, t, torch.cat([cond, code[:, None].to(cond.dtype)], dim=-1))

    def loss(self, cond, actions, mask=None):
        B = actions.shape[0]
        n_sc = int(round(B * self.consistency_fraction)) if self.max_steps > 1 else 0
        z = torch.randn_like(actions)
        # flow matching part: d = 0, t uniform
        t = torch.rand(B, device=actions.device, dtype=actions.dtype)
        d = torch.zeros_like(t)
        x_t = (1 - t[:, None, None]) * z + t[:, None, None] * actions
        target = actions - z
        if n_sc:
            # self-consistency part: one step of 2d = two steps of d, t on the 2d grid
            levels = int(math.log2(self.max_steps))
            k = torch.randint(1, levels + 1, (n_sc,), device=actions.device)
            d_sc = (2.0**-k).to(actions.dtype)  # d in {1/2, ..., 1/max_steps}; the trained jump is 2d
            n_grid = (1.0 / (2 * d_sc)).long()
            t_sc = (torch.rand(n_sc, device=actions.device) * n_grid).floor().to(actions.dtype) * 2 * d_sc
            xs = (1 - t_sc[:, None, None]) * z[:n_sc] + t_sc[:, None, None] * actions[:n_sc]
            with torch.no_grad():
                c = cond[:n_sc]
                v1 = self._v(xs, t_sc, d_sc, c)
                v2 = self._v(xs + d_sc[:, None, None] * v1, t_sc + d_sc, d_sc, c)
            t = torch.cat([t_sc, t[n_sc:]])
            d = torch.cat([2 * d_sc, d[n_sc:]])
            x_t = torch.cat([xs, x_t[n_sc:]])
            target = torch.cat([(v1 + v2) / 2, target[n_sc:]])
        return {"loss": masked_mse(self._v(x_t, t, d, cond), target, mask)}

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        B = cond.shape[0]
        z = torch.randn((B, self.horizon, self.action_dim), generator=generator, device=cond.device, dtype=cond.dtype)
        x, dt = z, 1.0 / self.num_steps
        d = cond.new_full((B,), dt)
        for i in range(self.num_steps):
            t = i * dt
            if prefix is not None:  # the prefix on the same noise path, weighted in
                x = w[..., None] * ((1 - t) * z + t * prefix) + (1 - w[..., None]) * x
            x = x + dt * self._v(x, cond.new_full((B,), t), d, cond)
        if prefix is not None:
            x = torch.where((w >= FROZEN)[..., None], prefix, x)
        return x
