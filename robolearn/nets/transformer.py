"""Small pre-LayerNorm transformer blocks, plus the transformer denoiser.

One block type serves two heads: the autoregressive head runs it causally over action
tokens (condition as the first token); the diffusion / flow / MIP heads run it
bidirectionally over the chunk's time steps with the condition and time injected into every
block by adaptive LayerNorm (DiT's adaLN-Zero: each block starts as the identity, which
keeps early training stable on small datasets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.nets.embeddings import TimeEmbedding


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """x + attn(LN(x)), x + mlp(LN(x)); with ``cond_dim`` the LayerNorms are modulated by the
    condition (shift, scale) and each branch is gated (zero-initialised)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, cond_dim: int | None = None):
        super().__init__()
        affine = cond_dim is None
        self.ln1 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.ln2 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model), nn.Dropout(dropout)
        )
        self.mod = None
        if cond_dim is not None:
            self.mod = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * d_model))
            nn.init.zeros_(self.mod[1].weight)
            nn.init.zeros_(self.mod[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        if self.mod is None:
            x = x + self.attn(self.ln1(x), causal)
            return x + self.mlp(self.ln2(x))
        s1, b1, g1, s2, b2, g2 = self.mod(c)[:, None].chunk(6, dim=-1)
        x = x + g1 * self.attn(self.ln1(x) * (1 + s1) + b1, causal)
        return x + g2 * self.mlp(self.ln2(x) * (1 + s2) + b2)


class TransformerDenoiser(nn.Module):
    """(x (B, H, A), t (B,) in [0, 1], cond (B, D)) -> (B, H, A): one token per chunk step."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        dropout: float = 0.0,
        in_extra: int = 0,
    ):
        super().__init__()
        self.inp = nn.Linear(action_dim + in_extra, d_model)  # in_extra: input features beyond the actions
        self.pos = nn.Parameter(torch.randn(1, horizon, d_model) * 0.02)
        self.time_emb = TimeEmbedding(d_model)
        self.cond = nn.Sequential(nn.Linear(cond_dim, d_model), nn.Mish(), nn.Linear(d_model, d_model))
        self.blocks = nn.ModuleList([Block(d_model, n_heads, dropout, cond_dim=d_model) for _ in range(n_layers)])
        self.ln_out = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, action_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.time_emb(t.expand(x.shape[0])) + self.cond(cond)
        h = self.inp(x) + self.pos
        for blk in self.blocks:
            h = blk(h, c)
        return self.out(self.ln_out(h))
