"""Autoregressive head: a chunk as a sequence of discretised action values.

Each action dimension is cut into ``num_bins`` bins and the chunk becomes H * A tokens in
time-major order (step 0 dim 0, step 0 dim 1, step 1 dim 0, ...). A small causal transformer,
with the condition as the first token, predicts each token's bin given all earlier ones —
any joint distribution over the chunk, up to the bin width, at the cost of H * A sequential
network calls at inference.

``binning: uniform`` cuts [-1, 1] evenly; ``binning: quantile`` puts bin edges at quantiles of
the training actions (``fit_data``, which the trainer calls before training), so bins are
dense where actions are. Decoded values are the bin centres (uniform) or the mean of the
training values in each bin (quantile).

Inpainting: steps with prefix weight >= 0.5 are frozen. Their tokens are teacher-forced to
the prefix's bins, so everything sampled after them is conditioned on the prefix, and their
output values are the exact prefix (not the bin centre). Weights below 0.5 are ignored: a
discrete sequence model has no soft version of "follow this value".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.errors import ConfigError
from robolearn.heads.base import ActionHead, check_prefix, register_head
from robolearn.nets.denoiser import check_transformer_options
from robolearn.nets.transformer import Block

FROZEN = 0.5


@register_head("autoregressive")
class AutoregressiveHead(ActionHead):
    @classmethod
    def network_evaluations(cls, options):
        return None  # one pass per token: H x A, which the options alone do not give

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        num_bins: int = 256,
        binning: str = "uniform",
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        dropout: float = 0.1,
        temperature: float = 1.0,
        eval_mode: str = "sample",
        **unknown,
    ):
        super().__init__(cond_dim, horizon, action_dim)
        if unknown:
            raise ConfigError(f"head: unknown option(s) {', '.join(sorted(unknown))} for the autoregressive head")
        if int(num_bins) < 2:
            raise ConfigError(f"head.num_bins: expected >= 2, got {num_bins}")
        if binning not in ("uniform", "quantile"):
            raise ConfigError(f"head.binning: expected 'uniform' or 'quantile', got {binning!r}")
        check_transformer_options(d_model, n_layers, n_heads, dropout)
        if not float(temperature) > 0:
            raise ConfigError(f"head.temperature: expected > 0, got {temperature}")
        if eval_mode not in ("sample", "greedy"):
            raise ConfigError(f"head.eval_mode: expected 'sample' or 'greedy', got {eval_mode!r}")
        self.nb, self.binning = int(num_bins), binning
        self.temperature, self.eval_mode = float(temperature), eval_mode
        self.L = horizon * action_dim
        edges = torch.linspace(-1.0, 1.0, self.nb + 1).expand(action_dim, -1).contiguous()
        self.register_buffer("edges", edges)  # (A, nb + 1)
        self.register_buffer("centers", 0.5 * (edges[:, 1:] + edges[:, :-1]))  # (A, nb)
        self.register_buffer("fitted", torch.tensor(binning == "uniform"))
        self.register_buffer("token_dim", torch.arange(self.L) % action_dim, persistent=False)
        self.cond_proj = nn.Linear(cond_dim, int(d_model))
        self.tok_emb = nn.Embedding(action_dim * self.nb, int(d_model))
        self.pos_emb = nn.Parameter(torch.randn(1, self.L, int(d_model)) * 0.02)
        self.blocks = nn.ModuleList([Block(int(d_model), int(n_heads), float(dropout)) for _ in range(int(n_layers))])
        self.ln = nn.LayerNorm(int(d_model))
        self.out = nn.Linear(int(d_model), action_dim * self.nb)

    @torch.no_grad()
    def fit_data(self, actions: torch.Tensor) -> None:
        """Quantile bin edges and per-bin means from normalized training actions (N, H, A)."""
        if self.binning != "quantile":
            return
        vals = actions.reshape(-1, self.action_dim).float().to(self.edges.device)
        q = torch.linspace(0, 1, self.nb + 1, device=vals.device)
        for a in range(self.action_dim):
            v = vals[:, a].contiguous()
            e = torch.quantile(v, q)
            bins = torch.bucketize(v, e[1:-1].contiguous())
            sums = torch.zeros(self.nb, dtype=torch.float64, device=v.device).index_add_(0, bins, v.double())
            counts = torch.zeros(self.nb, dtype=torch.float64, device=v.device).index_add_(
                0, bins, torch.ones_like(v, dtype=torch.float64)
            )
            mid = 0.5 * (e[1:] + e[:-1])
            self.edges[a] = e
            self.centers[a] = torch.where(counts > 0, sums / counts.clamp_min(1), mid).float()
        self.fitted.fill_(True)

    def tokenize(self, actions: torch.Tensor) -> torch.Tensor:
        """(B, H, A) values -> (B, H, A) bin indices; values outside the edges go to the end bins."""
        return torch.stack(
            [
                torch.bucketize(actions[..., a].contiguous(), self.edges[a, 1:-1].contiguous())
                for a in range(self.action_dim)
            ],
            dim=-1,
        )

    def _logits(self, cond: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, n) flat, n < L -> logits (B, n + 1, nb) for positions 0..n."""
        n = tokens.shape[1]
        ids = tokens + self.token_dim[:n] * self.nb
        h = torch.cat([self.cond_proj(cond)[:, None], self.tok_emb(ids)], dim=1) + self.pos_emb[:, : n + 1]
        for blk in self.blocks:
            h = blk(h, causal=True)
        logits = self.out(self.ln(h)).view(h.shape[0], n + 1, self.action_dim, self.nb)
        idx = self.token_dim[: n + 1].view(1, n + 1, 1, 1).expand(h.shape[0], n + 1, 1, self.nb)
        return logits.gather(2, idx).squeeze(2)

    def loss(self, cond, actions, mask=None):
        if not bool(self.fitted):
            raise ConfigError(
                "head.binning=quantile: bins are not fitted; call head.fit_data(normalized_actions) before training"
            )
        B = actions.shape[0]
        tokens = self.tokenize(actions).reshape(B, self.L)
        logits = self._logits(cond, tokens[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, self.nb), tokens.reshape(-1), reduction="none").view(B, self.L)
        if mask is None:
            return {"loss": ce.mean()}
        m = mask.to(ce.dtype).repeat_interleave(self.action_dim, dim=1)
        return {"loss": (ce * m).sum() / m.sum().clamp_min(1.0)}

    @torch.no_grad()
    def sample(self, cond, prefix=None, prefix_weights=None, generator=None):
        prefix, w = check_prefix(self, prefix, prefix_weights)
        B = cond.shape[0]
        frozen = None
        if prefix is not None:
            frozen = (w >= FROZEN).repeat_interleave(self.action_dim, dim=1)  # (B, L)
            forced = self.tokenize(prefix).reshape(B, self.L)
        tokens = torch.zeros(B, 0, dtype=torch.long, device=cond.device)
        for j in range(self.L):
            if frozen is not None and bool(frozen[:, j].all()):
                nxt = forced[:, j]  # no network call needed
            else:
                logits = self._logits(cond, tokens)[:, -1]
                if self.eval_mode == "greedy":
                    nxt = logits.argmax(-1)
                else:
                    probs = (logits.float() / self.temperature).softmax(-1)
                    nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                if frozen is not None:
                    nxt = torch.where(frozen[:, j], forced[:, j], nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        tokens = tokens.view(B, self.horizon, self.action_dim)
        dims = torch.arange(self.action_dim, device=cond.device).expand_as(tokens)
        x = self.centers[dims, tokens].to(cond.dtype)
        if prefix is not None:
            x = torch.where((w >= FROZEN)[..., None], prefix, x)
        return x
