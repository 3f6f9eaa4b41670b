"""Minimal Iterative Policy (Pan et al. 2025, "Much Ado About Noising").

One network f(x, t, cond) is trained on two supervised passes, both targeting the clean chunk a:

- pass 1 (t = 0): f(0, 0, c) -> a, i.e. plain regression from a zero input;
- pass 2 (t = t*): f(x_in, t*, c) -> a, with x_in = a + refine_noise * (1 - t*) * z, z ~ N(0, I)
  (the reference repo's default; ``scale_input: true`` uses the paper's t* a + (1 - t*) z).

Per-pass losses are squared errors weighted 1/t*^2 and 1/(1 - t*)^2 as in the reference
implementation (simchowitzlabpublic/much-ado-about-noising, ``mip_loss``), here divided by the
sum of the two weights so the loss has the scale of a plain MSE (Adam is unaffected; gradient
clipping thresholds stay comparable across heads). With t* = 0.9 the refinement pass dominates.

Inference: x = f(0, 0, c), then ``num_steps - 1`` refinement passes x = f(s * x, t*, c)
(s = t* with ``scale_input``, else 1); the reference uses exactly 2 evaluations. MIP is
deterministic: the generator is accepted for the contract and unused.

Ablation flags (Pan et al.): ``num_steps: 1`` is regression with this network;
``refine_from: prediction`` trains pass 2 on the (detached) pass-1 output instead of the
noised target — with ``refine_noise: 0`` that is the noise-free "residual regression" variant.

Inpainting: the prefix is blended into the estimate, x <- W prefix + (1 - W) x, before every
refinement pass and once more at the end, so W = 1 steps return the prefix exactly and the
refinement pass sees a chunk that already agrees with it.
"""

from __future__ import annotations

import torch

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.denoiser import build_denoiser, masked_mse


@register_head("mip")
class MIPHead(ActionHead):
    nfe_option = "num_steps"

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        denoiser: str = "unet",
        num_steps: int = 2,
        t_star: float = 0.9,
        refine_noise: float = 1.0,
        refine_from: str = "target",
        scale_input: bool = False,
        **net_options,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if int(num_steps) < 1:
            raise ConfigError(f"head.num_steps: expected >= 1 network evaluations, got {num_steps}")
        if not 0.0 < float(t_star) < 1.0:
            raise ConfigError(f"head.t_star: expected a value strictly between 0 and 1, got {t_star}")
        if float(refine_noise) < 0:
            raise ConfigError(f"head.refine_noise: expected >= 0 (a noise scale), got {refine_noise}")
        if refine_from not in ("target", "prediction"):
            raise ConfigError(f"head.refine_from: expected 'target' or 'prediction', got {refine_from!r}")
        self.num_steps = int(num_steps)
        self.t_star = float(t_star)
        self.refine_noise = float(refine_noise)
        self.refine_from = refine_from
        self.in_scale = self.t_star if scale_input else 1.0
        self.net = build_denoiser(denoiser, action_dim, horizon, cond_dim, **net_options)

    def _pass(self, x: torch.Tensor, t: float, cond: torch.Tensor) -> torch.Tensor:
        return self.net(x, cond.new_full((x.shape[0],), t), cond)

    def loss(self, cond, actions, mask=None):
        p0 = self._pass(torch.zeros_like(actions), 0.0, cond)
        base = actions if self.refine_from == "target" else p0.detach()
        x_in = self.in_scale * base + self.refine_noise * (1 - self.t_star) * torch.randn_like(actions)
        p1 = self._pass(x_in, self.t_star, cond)
        l0, l1 = masked_mse(p0, actions, mask), masked_mse(p1, actions, mask)
        w0, w1 = 1 / self.t_star**2, 1 / (1 - self.t_star) ** 2
        return {"loss": (w0 * l0 + w1 * l1) / (w0 + w1), "loss_pass1": l0.detach(), "loss_pass2": l1.detach()}

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        blend = (lambda x: x) if prefix is None else (lambda x: w[..., None] * prefix + (1 - w[..., None]) * x)
        x = self._pass(cond.new_zeros(cond.shape[0], self.horizon, self.action_dim), 0.0, cond)
        for _ in range(self.num_steps - 1):
            x = self._pass(self.in_scale * blend(x), self.t_star, cond)
        return blend(x)
