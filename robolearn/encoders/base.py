"""The ObsEncoder contract.

An encoder turns a dict of observation histories into what a head conditions on:
``forward(obs)`` -> (B, out_dim) vector, and ``tokens(obs)`` -> (B, N, token_dim) for heads
that attend (``ActionHead.wants_tokens``). ``obs[k]`` is (B, To, *shape): low-dim keys arrive
already normalized (float), image keys arrive as uint8 (B, To, H, W, 3) and become float on
the model's device inside the encoder.
"""

from __future__ import annotations

import torch
from torch import nn


class ObsEncoder(nn.Module):
    out_dim: int
    token_dim: int

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def tokens(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError
