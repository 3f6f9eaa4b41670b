"""Plain MLP builder shared by encoders and heads."""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden: list[int],
    out_dim: int,
    act: type[nn.Module] = nn.Mish,
    final_act: bool = False,
    norm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers.append(nn.Linear(d, h))
        if norm:
            layers.append(nn.LayerNorm(h))
        layers.append(act())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = h
    layers.append(nn.Linear(d, out_dim))
    if final_act:
        layers.append(act())
    return nn.Sequential(*layers)
