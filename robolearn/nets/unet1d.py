"""Conditional 1-D U-Net over the time axis of an action chunk, FiLM-conditioned.

The Diffusion Policy denoiser (Chi et al. 2023) in our own words: convolutions along the
chunk's time axis give a smoothness prior over neighbouring actions, and the condition
(observation features + time embedding) enters every residual block as a per-channel
scale and shift (FiLM), which works better than concatenating it to the input.

Differences from the original: any chunk length works (the time axis is zero-padded to a
multiple of 2**(levels-1) and cropped back), and the default widths are smaller
(see ``configs/policy/diffusion.yaml``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.nets.embeddings import TimeEmbedding


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(groups, c_out), nn.Mish())


class FiLMResBlock(nn.Module):
    """conv -> (scale, shift from cond) -> conv, plus a residual path."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.conv1 = ConvBlock(c_in, c_out, kernel, groups)
        self.conv2 = ConvBlock(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(c)[..., None].chunk(2, dim=1)
        h = self.conv1(x) * scale + shift
        return self.conv2(h) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """(x (B, H, A), t (B,) in [0, 1], cond (B, D)) -> (B, H, A)."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        down_dims: list[int] | tuple[int, ...] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        time_dim: int = 128,
        in_extra: int = 0,
    ):
        super().__init__()
        dims = [action_dim + in_extra, *down_dims]  # in_extra: input channels beyond the actions (a mask)
        c_dim = time_dim + cond_dim
        self.levels = len(down_dims)
        self.time_emb = TimeEmbedding(time_dim)
        blk = lambda i, o: FiLMResBlock(i, o, c_dim, kernel_size, n_groups)  # noqa: E731
        self.down = nn.ModuleList()
        for i, (ci, co) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(down_dims) - 1
            self.down.append(
                nn.ModuleList(
                    [blk(ci, co), blk(co, co), nn.Identity() if last else nn.Conv1d(co, co, 3, stride=2, padding=1)]
                )
            )
        self.mid = nn.ModuleList([blk(dims[-1], dims[-1]), blk(dims[-1], dims[-1])])
        self.up = nn.ModuleList()  # mirrors the down path; each level upsamples back by 2
        for co, ci in reversed(list(zip(down_dims[:-1], down_dims[1:]))):
            self.up.append(
                nn.ModuleList([blk(2 * ci, co), blk(co, co), nn.ConvTranspose1d(co, co, 4, stride=2, padding=1)])
            )
        self.out = nn.Sequential(
            ConvBlock(down_dims[0], down_dims[0], kernel_size, n_groups), nn.Conv1d(down_dims[0], action_dim, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        H = x.shape[1]
        pad = (-H) % (2 ** (self.levels - 1))
        h = F.pad(x.transpose(1, 2), (0, pad))  # (B, A, H') with H' divisible by every downsampling
        c = torch.cat([self.time_emb(t.expand(x.shape[0])), cond], dim=-1)
        skips = []
        for b1, b2, down in self.down:
            h = b2(b1(h, c), c)
            skips.append(h)
            h = down(h)
        for b in self.mid:
            h = b(h, c)
        for b1, b2, up in self.up:  # the finest level's skip is unused, as in Diffusion Policy
            h = up(b2(b1(torch.cat([h, skips.pop()], dim=1), c), c))
        return self.out(h)[..., :H].transpose(1, 2)
