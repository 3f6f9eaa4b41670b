"""Flow-matching head: rectified flow from Gaussian noise to action chunks.

Path x_t = (1 - t) z + t x (t = 1 is data), the network regresses the velocity x - z, and
sampling integrates dx/dt = v(x, t) with ``num_steps`` Euler steps. Flow needs far fewer
network calls than DDPM for the same quality and its velocity gives a clean estimate at every
step, x1 = x_t + (1 - t) v, which is what real-time-chunking guidance acts on.

Options that also cover the ablations of Pan et al. 2025 ("Much Ado About Noising"):
``init_noise: zero`` starts integration at z = 0 instead of a Gaussian draw (training is
unchanged), and ``num_steps`` is the number of network evaluations (1, 2, 3, 9 ...). ``time_sampling: zero`` with
``num_steps: 1`` trains and samples only the jump from noise at t = 0: the one-step
"straight" flow, which injects noise (C2) without distribution fitting or refinement.

Inpainting (prefix / prefix_weights): the RTC update at every Euler step,
v <- v + min(beta, (1-t)/(t r^2)) * J^T ((prefix - x1) * W), J = d x1 / d x_t,
r^2 = (1-t)^2 / (t^2 + (1-t)^2) (Black, Galliker, Levine 2025). Guidance is soft, so steps
with W = 1 end close to but not exactly at the prefix; those steps (W >= 0.999) are then
overwritten with the prefix, so a frozen step is executed exactly as promised.

Training-time prefix conditioning (``prefix_conditioning: N``): in training a uniform number of
leading steps in 0..N is given clean (their loss masked out), the given-step mask an extra input
channel of the network; at inference the frozen steps (W >= 0.999) are simply given, the soft
weights ignored (``inpaint: given``; ``inpaint: guided``, the default, guides the same network, so
the two compare on one set of weights). No vector-Jacobian product: a chunk with a given prefix
costs what a plain chunk costs.
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

FROZEN = 0.999  # prefix weight at or above which a step is overwritten with the prefix at the end


@register_head("flow")
class FlowHead(ActionHead):
    nfe_option = "num_steps"

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        denoiser: str = "unet",
        num_steps: int = 10,
        time_sampling: str = "uniform",
        beta_a: float = 1.5,
        beta_b: float = 1.0,
        init_noise: str = "gaussian",
        guidance_beta: float = 5.0,
        prefix_conditioning: int = 0,
        inpaint: str = "guided",
        **net_options,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if int(num_steps) < 1:
            raise ConfigError(f"head.num_steps: expected >= 1 integration steps, got {num_steps}")
        if time_sampling not in ("uniform", "beta", "zero"):
            raise ConfigError(f"head.time_sampling: expected 'uniform', 'beta' or 'zero', got {time_sampling!r}")
        if float(beta_a) <= 0 or float(beta_b) <= 0:
            raise ConfigError(f"head.beta_a/beta_b: expected positive Beta parameters, got {beta_a}, {beta_b}")
        if init_noise not in ("gaussian", "zero"):
            raise ConfigError(f"head.init_noise: expected 'gaussian' or 'zero', got {init_noise!r}")
        if not float(guidance_beta) > 0:
            raise ConfigError(
                f"head.guidance_beta: expected a number > 0 (the clip on RTC's guidance weight), got {guidance_beta}"
            )
        self.num_steps = int(num_steps)
        self.time_sampling = time_sampling
        self.beta_ab = (float(beta_a), float(beta_b))
        self.init_noise = init_noise
        self.guidance_beta = float(guidance_beta)
        self.prefix_max = check_prefix_conditioning(prefix_conditioning, horizon)
        self.inpaint = check_inpaint(inpaint, ("guided", "given"), self.prefix_max)
        extra = 1 if self.prefix_max else 0
        self.net = build_denoiser(denoiser, action_dim, horizon, cond_dim, in_extra=extra, **net_options)

    def _sample_time(self, B: int, device: torch.device) -> torch.Tensor:
        if self.time_sampling == "uniform":
            return torch.rand(B, device=device)
        if self.time_sampling == "zero":  # "straight" flow: only the jump from pure noise is trained
            return torch.zeros(B, device=device)
        # pi0's schedule: Beta(a, b) on the noise side, so more training where the path is hardest
        u = torch.distributions.Beta(*[torch.tensor(v, device=device) for v in self.beta_ab]).sample((B,))
        return 0.999 * (1.0 - u)

    def loss(self, cond, actions, mask=None):
        B = actions.shape[0]
        z = torch.randn_like(actions)
        t = self._sample_time(B, actions.device).to(actions.dtype)
        tt = t[:, None, None]
        xt = (1 - tt) * z + tt * actions
        if not self.prefix_max:
            return {"loss": masked_mse(self.net(xt, t, cond), actions - z, mask)}
        given = random_prefix(B, self.horizon, self.prefix_max, actions.device)
        v = self.net(given_prefix(xt, actions, given), t, cond)
        keep = ~given if mask is None else mask & ~given  # no loss on the steps that were given
        return {"loss": masked_mse(v, actions - z, keep)}

    def _net(self, x, t, cond, given=None, prefix=None):
        """The denoiser; a prefix-conditioned one also gets the given-step mask (none given by default)."""
        return self.net(given_prefix(x, prefix, given) if self.prefix_max else x, t, cond)

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        B = cond.shape[0]
        shape = (B, self.horizon, self.action_dim)
        if self.init_noise == "gaussian":
            x = torch.randn(shape, generator=generator, device=cond.device, dtype=cond.dtype)
        else:
            x = cond.new_zeros(shape)
        dt = 1.0 / self.num_steps
        given = None
        if prefix is not None and self.inpaint == "given":  # an input of the network, nothing guided
            given = frozen_steps(w, B, self.prefix_max, FROZEN)
        for i in range(self.num_steps):
            t = i * dt
            tb = cond.new_full((B,), t)
            if prefix is None or given is not None:
                v = self._net(x, tb, cond, given, prefix)
            else:

                def estimate(xt):
                    vt = self._net(xt, tb, cond)
                    return vt, xt + (1 - t) * vt

                v, _, g = rtc_guidance(estimate, x, prefix, w)
                v = v + rtc_weight(t, self.guidance_beta) * g
            x = x + dt * v
        if prefix is not None:
            x = torch.where((w >= FROZEN)[..., None], prefix, x)
        return x
