"""Building and steering the networks of the iterative heads (diffusion, flow, MIP).

Every such head owns one network ``f(x (B, H, A), t (B,), cond (B, D)) -> (B, H, A)`` with
``t`` in [0, 1]; which architecture is a config choice (``denoiser: unet | transformer``),
so the heads compare on the same footing. Options are flat in the head's YAML (``down_dims``,
``d_model`` ...); those that belong to the other architecture are ignored.

``rtc_guidance`` is the inpainting rule shared by the flow and diffusion heads.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robolearn.errors import ConfigError
from robolearn.nets.transformer import TransformerDenoiser
from robolearn.nets.unet1d import ConditionalUnet1D

DENOISERS = ("unet", "transformer")


def check_transformer_options(d_model, n_layers, n_heads, dropout) -> None:
    """Configuration-time checks shared by every head that owns a transformer."""
    if int(d_model) < 1 or int(n_heads) < 1 or int(d_model) % int(n_heads):
        raise ConfigError(f"head.d_model: expected a positive multiple of n_heads={n_heads}, got {d_model}")
    if int(n_layers) < 1:
        raise ConfigError(f"head.n_layers: expected >= 1, got {n_layers}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"head.dropout: expected a value in [0, 1), got {dropout}")


def build_denoiser(
    kind: str,
    action_dim: int,
    horizon: int,
    cond_dim: int,
    *,
    down_dims: list[int] | tuple[int, ...] = (64, 128, 256),
    kernel_size: int = 5,
    n_groups: int = 8,
    d_model: int = 128,
    n_layers: int = 4,
    n_heads: int = 4,
    dropout: float = 0.0,
    in_extra: int = 0,
    **unknown,
) -> nn.Module:
    """Validate the options of the chosen architecture and build it. ``in_extra``: input channels
    beyond the actions (1 for a head trained with prefix conditioning: the given-step mask)."""
    if unknown:
        raise ConfigError(
            f"head: unknown option(s) {', '.join(sorted(unknown))}; denoiser options are down_dims, "
            "kernel_size, n_groups (unet) and d_model, n_layers, n_heads, dropout (transformer)"
        )
    if kind == "unet":
        dims = [int(d) for d in down_dims]
        if not dims or any(d < 1 for d in dims):
            raise ConfigError(f"head.down_dims: expected a non-empty list of positive widths, got {list(down_dims)}")
        if int(n_groups) < 1 or any(d % int(n_groups) for d in dims):
            raise ConfigError(
                f"head.n_groups: every width in down_dims {dims} must be divisible by n_groups, got {n_groups}"
            )
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ConfigError(f"head.kernel_size: expected an odd positive integer, got {kernel_size}")
        return ConditionalUnet1D(action_dim, cond_dim, dims, int(kernel_size), int(n_groups), in_extra=in_extra)
    if kind == "transformer":
        check_transformer_options(d_model, n_layers, n_heads, dropout)
        return TransformerDenoiser(
            action_dim, horizon, cond_dim, int(d_model), int(n_layers), int(n_heads), float(dropout), in_extra
        )
    raise ConfigError(f"head.denoiser: expected one of {', '.join(DENOISERS)}, got {kind!r}")


def check_prefix_conditioning(max_steps, horizon: int) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 0 <= max_steps < horizon:
        raise ConfigError(
            f"head.prefix_conditioning: expected an int in 0..{horizon - 1} (the most leading steps given as "
            f"a clean prefix in training; 0 = off), got {max_steps!r}"
        )
    return max_steps


def check_inpaint(inpaint, allowed: tuple[str, ...], prefix_max: int) -> str:
    if inpaint not in allowed:
        raise ConfigError(f"head.inpaint: expected one of {' | '.join(allowed)}, got {inpaint!r}")
    if inpaint == "given" and not prefix_max:
        raise ConfigError(
            "head.inpaint: 'given' needs a network trained with it: train with policy.head.prefix_conditioning=N "
            "(N > 0), or evaluate with head.inpaint=guided"
        )
    return inpaint


def random_prefix(batch: int, horizon: int, max_steps: int, device) -> torch.Tensor:
    """Training-time prefix conditioning: per sample, a uniform number of leading steps in
    0..max_steps is given (B, H) bool."""
    k = torch.randint(0, max_steps + 1, (batch, 1), device=device)
    return torch.arange(horizon, device=device)[None] < k


def given_prefix(x: torch.Tensor, clean: torch.Tensor | None, given: torch.Tensor | None = None) -> torch.Tensor:
    """The denoiser input of a prefix-conditioned head: the given steps (B, H) replaced by the clean
    actions, and the mask as one more channel -> (B, H, A + 1); ``given`` None: no step given."""
    if given is None:
        given = x.new_zeros(x.shape[:2], dtype=torch.bool)
    if clean is not None:
        x = torch.where(given[..., None], clean, x)
    return torch.cat([x, given[..., None].to(x.dtype)], dim=-1)


def frozen_steps(w: torch.Tensor, batch: int, max_steps: int, frozen: float) -> torch.Tensor:
    """Which steps a prefix-conditioned head is given at inference: those with weight >= ``frozen``
    (B, H) bool; the soft weights of RTC's overlap are not used (no guidance)."""
    given = (w >= frozen).expand(batch, -1) if w.dim() == 1 else w >= frozen
    if int(given.sum(-1).max()) > max_steps:
        raise ConfigError(
            f"head.prefix_conditioning: the executor froze {int(given.sum(-1).max())} leading steps, the head "
            f"was trained with at most {max_steps}; train with a larger prefix_conditioning or use less delay"
        )
    return given


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over real chunk steps only (mask (B, H) True = real)."""
    per_step = (pred - target).pow(2).mean(-1)
    if mask is None:
        return per_step.mean()
    m = mask.to(per_step.dtype)
    return (per_step * m).sum() / m.sum().clamp_min(1.0)


def rtc_weight(t: float, beta: float) -> float:
    """Clipped guidance weight of real-time chunking (Black et al. 2025, eq. 2 and 4), with
    t the linear-path time (0 = noise, 1 = data): min(beta, (1-t)/(t r^2)),
    r^2 = (1-t)^2 / (t^2 + (1-t)^2). The unclipped weight diverges at both ends."""
    if t <= 0.0 or t >= 1.0:
        return beta
    r2 = (1 - t) ** 2 / (t**2 + (1 - t) ** 2)
    return min(beta, (1 - t) / (t * r2))


def rtc_guidance(
    estimate: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    prefix: torch.Tensor,
    w: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One network call with the pseudo-inverse guidance term of RTC.

    ``estimate(x) -> (net_output, clean_estimate)``. Returns the detached network output, the
    detached clean estimate and g = (d clean_estimate / d x)^T ((prefix - clean_estimate) * w):
    the direction in x that moves the estimate toward the prefix on the weighted steps.
    """
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        out, est = estimate(x_)
        err = (prefix - est.detach()) * w[..., None]
        (g,) = torch.autograd.grad(est, x_, grad_outputs=err)
    return out.detach(), est.detach(), g
