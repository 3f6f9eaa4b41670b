"""Diffusion head (Diffusion Policy): DDPM training, DDIM or DPM-Solver++ sampling.

Training noises a chunk to a random DDPM timestep (the forward process of diffusers'
DDPMScheduler: its alphas_cumprod, applied here so it stays on the model's device) and
regresses either the noise (``prediction_type: epsilon``) or the clean chunk (``sample``). Sampling runs a deterministic
solver with ``num_inference_steps`` network calls (10 instead of DDPM's 100 is what makes
diffusion usable in a control loop); both solvers come from diffusers.

Every step goes through the clean estimate x0: we compute it from the network output,
optionally clip it to [-1, 1] (``clip_sample``, right for min-max normalized actions), apply
inpainting to it, and hand it to the solver as a ``sample`` prediction. That keeps the two
prediction types and the two solvers behind one loop.

Inpainting (prefix / prefix_weights), ``inpaint``:

- ``guided`` (default): real-time-chunking guidance on x0. A variance-preserving x_t is a
  rescaled point of the linear path used by flow matching, x_t / (a + s) with linear time
  tau = a / (a + s) (a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar)), and a deterministic DDIM
  step is exactly an Euler step there. Mapping the RTC update v += w_tau J^T e back gives
  x0 <- x0 + s * w_tau * (d x0 / d x_t)^T ((prefix - x0) * W), w_tau = min(beta, (1-tau)/(tau r^2)).
  With DDIM this is exactly RTC; with DPM-Solver++ the same corrected x0 feeds a multistep solver.
  Steps with W >= 0.999 are overwritten with the prefix at the end (guidance is soft).
  With ``prediction_type: epsilon`` x0 is ill-conditioned at high noise (x0 ~ x_t / a); clipping
  bounds it, but ``sample`` prediction guides more smoothly.
- ``replace``: after every solver step, frozen steps (W >= 0.5) are overwritten with the prefix noised
  to the next step's level (Diffusion Policy's inpainting); the last step leaves them exact.
  Soft weights below 0.5 are ignored.
- ``prefix_conditioning: N`` (training-time): in training a uniform number of leading steps in
  0..N is given clean, with a mask channel, their loss masked out; at inference the frozen steps
  (W >= 0.999) are given with ``inpaint: given``, nothing guided: a chunk with a prefix costs a
  plain chunk (``guided`` and ``replace`` still work on the same weights).
"""

from __future__ import annotations

import torch

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.denoiser import (
    build_denoiser,
    check_inpaint,
    check_prefix_conditioning,
    frozen_steps,
    given_prefix,
    masked_mse,
    random_prefix,
    rtc_guidance,
    rtc_weight,
)

FROZEN_GUIDED = 0.999
FROZEN_REPLACE = 0.5


@register_head("diffusion")
class DiffusionHead(ActionHead):
    nfe_option = "num_inference_steps"

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        denoiser: str = "unet",
        num_train_timesteps: int = 100,
        num_inference_steps: int = 10,
        beta_schedule: str = "squaredcos_cap_v2",
        prediction_type: str = "epsilon",
        scheduler: str = "ddim",
        clip_sample: bool = True,
        inpaint: str = "guided",
        guidance_beta: float = 5.0,
        prefix_conditioning: int = 0,
        **net_options,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if int(num_train_timesteps) < 2:
            raise ConfigError(f"head.num_train_timesteps: expected >= 2, got {num_train_timesteps}")
        if not 1 <= int(num_inference_steps) <= int(num_train_timesteps):
            raise ConfigError(
                f"head.num_inference_steps: expected 1..num_train_timesteps={num_train_timesteps}, "
                f"got {num_inference_steps}"
            )
        if beta_schedule not in ("linear", "scaled_linear", "squaredcos_cap_v2"):
            raise ConfigError(
                f"head.beta_schedule: expected linear, scaled_linear or squaredcos_cap_v2, got {beta_schedule!r}"
            )
        if prediction_type not in ("epsilon", "sample"):
            raise ConfigError(f"head.prediction_type: expected 'epsilon' or 'sample', got {prediction_type!r}")
        if scheduler not in ("ddim", "dpmsolver"):
            raise ConfigError(f"head.scheduler: expected 'ddim' or 'dpmsolver', got {scheduler!r}")
        if not float(guidance_beta) > 0:
            raise ConfigError(
                f"head.guidance_beta: expected a number > 0 (the clip on RTC's guidance weight), got {guidance_beta}"
            )
        self.T = int(num_train_timesteps)
        self.num_inference_steps = int(num_inference_steps)
        self.prediction_type = prediction_type
        self.clip_sample = bool(clip_sample)
        self.inpaint = inpaint
        self.guidance_beta = float(guidance_beta)
        # imported here: diffusers takes seconds to import and every head module is imported
        # whenever any head is built
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

        ddpm = DDPMScheduler(num_train_timesteps=self.T, beta_schedule=beta_schedule)
        # derived from the options, so not saved in the state dict
        self.register_buffer("alphas_cumprod", ddpm.alphas_cumprod.clone().float(), persistent=False)
        common = dict(num_train_timesteps=self.T, beta_schedule=beta_schedule, prediction_type="sample")
        if scheduler == "ddim":  # 'trailing' starts at the last timestep, i.e. at pure noise
            self.solver = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
        else:
            self.solver = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
        self.prefix_max = check_prefix_conditioning(prefix_conditioning, horizon)
        check_inpaint(inpaint, ("guided", "replace", "given"), self.prefix_max)
        extra = 1 if self.prefix_max else 0
        self.net = build_denoiser(denoiser, action_dim, horizon, cond_dim, in_extra=extra, **net_options)

    def loss(self, cond, actions, mask=None):
        B = actions.shape[0]
        k = torch.randint(0, self.T, (B,), device=actions.device)
        ab = self.alphas_cumprod[k].to(actions.dtype)[:, None, None]
        noise = torch.randn_like(actions)
        x = ab.sqrt() * actions + (1 - ab).sqrt() * noise
        target = noise if self.prediction_type == "epsilon" else actions
        if not self.prefix_max:
            return {"loss": masked_mse(self.net(x, k.to(actions.dtype) / self.T, cond), target, mask)}
        given = random_prefix(B, self.horizon, self.prefix_max, actions.device)
        pred = self.net(given_prefix(x, actions, given), k.to(actions.dtype) / self.T, cond)
        keep = ~given if mask is None else mask & ~given  # no loss on the steps that were given
        return {"loss": masked_mse(pred, target, keep)}

    def _x0(
        self, x: torch.Tensor, k: int, cond: torch.Tensor, given=None, prefix=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inp = given_prefix(x, prefix, given) if self.prefix_max else x  # the mask is an input of such a net
        out = self.net(inp, cond.new_full((x.shape[0],), k / self.T), cond)
        if self.prediction_type == "sample":
            return out, out
        ab = self.alphas_cumprod[k]
        return out, (x - (1 - ab).sqrt() * out) / ab.sqrt()

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        B = cond.shape[0]
        shape = (B, self.horizon, self.action_dim)
        x = torch.randn(shape, generator=generator, device=cond.device, dtype=cond.dtype)
        self.solver.set_timesteps(self.num_inference_steps, device=cond.device)
        steps = [int(k) for k in self.solver.timesteps]
        given = None
        if prefix is not None and self.inpaint == "given":  # an input of the network, nothing guided or noised in
            given = frozen_steps(w, B, self.prefix_max, FROZEN_GUIDED)
        guided = prefix is not None and self.inpaint == "guided"
        for i, k in enumerate(steps):
            if given is not None:
                _, x0 = self._x0(x, k, cond, given, prefix)
            elif guided:
                _, x0, g = rtc_guidance(lambda xt: self._x0(xt, k, cond), x, prefix, w)
                a, s = self.alphas_cumprod[k].sqrt().item(), (1 - self.alphas_cumprod[k]).sqrt().item()
                x0 = x0 + s * rtc_weight(a / (a + s), self.guidance_beta) * g
            else:
                _, x0 = self._x0(x, k, cond)
            if self.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            x = self.solver.step(x0, k, x).prev_sample
            if prefix is not None and self.inpaint == "replace":
                ab_next = self.alphas_cumprod[steps[i + 1]] if i + 1 < len(steps) else x.new_tensor(1.0)
                noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
                noised = ab_next.sqrt() * prefix + (1 - ab_next).sqrt() * noise
                x = torch.where((w >= FROZEN_REPLACE)[..., None], noised, x)
        if guided or given is not None:
            x = torch.where((w >= FROZEN_GUIDED)[..., None], prefix, x)
        return x
