"""Per-key affine normalization, fitted on the training data and saved with the policy.

Stored as ``center`` and ``scale`` (x = y * scale + center), plus ``inv_scale`` that is 0 on
constant dimensions: those map to 0 and come back as the constant exactly, instead of
blowing up by 1 / 0. Buffers, not parameters: they move with ``.to(device)`` and never train.
Images are not normalized here; image encoders scale uint8 themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from robolearn.errors import ConfigError, DataError

MODES = ("minmax", "gaussian")
FORMAT = "robolearn.normalizer/1"


class Normalizer(nn.Module):
    def __init__(self, eps: float = 1e-4):
        super().__init__()
        self.eps = float(eps)
        self.modes: dict[str, str] = {}

    @property
    def keys(self) -> list[str]:
        return list(self.modes)

    def fit(self, arrays: Mapping[str, np.ndarray], modes: Mapping[str, str] | str = "minmax") -> Normalizer:
        """Statistics over the first axis (time); trailing dims each get their own.

        ``minmax`` maps [min, max] to [-1, 1]; ``gaussian`` maps to zero mean, unit std. A dim
        whose range (minmax) or std (gaussian) is below ``eps`` counts as constant."""
        for k in list(self.modes):
            self._drop(k)
        for k, x in arrays.items():
            mode = modes if isinstance(modes, str) else modes.get(k)
            if mode not in MODES:
                raise ConfigError(f"normalizer mode for key '{k}': expected one of {MODES}, found {mode!r}")
            if "." in k:
                raise ConfigError(f"normalizer key '{k}': expected a name without '.', found one")
            x = np.asarray(x, dtype=np.float64)
            if x.ndim == 0 or len(x) == 0:
                raise DataError(f"normalizer key '{k}': expected >= 1 rows to fit, found shape {x.shape}")
            if not np.isfinite(x).all():
                raise DataError(f"normalizer key '{k}': expected finite values to fit, found NaN/inf")
            if mode == "minmax":
                lo, hi = x.min(axis=0), x.max(axis=0)
                center, spread = (hi + lo) / 2, (hi - lo) / 2
                const = hi - lo < self.eps
            else:
                center, spread = x.mean(axis=0), x.std(axis=0)
                const = spread < self.eps
            self._set(
                k,
                mode,
                torch.as_tensor(center, dtype=torch.float32),
                torch.as_tensor(np.where(const, 0.0, spread), dtype=torch.float32),
            )
        return self

    def _set(self, key: str, mode: str, center: Tensor, scale: Tensor) -> None:
        inv = torch.where(
            scale > 0, 1.0 / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(scale)
        )
        self.register_buffer(f"{key}__center", center.contiguous())
        self.register_buffer(f"{key}__scale", scale.contiguous())
        self.register_buffer(f"{key}__inv_scale", inv.contiguous())
        self.modes[key] = mode

    def _drop(self, key: str) -> None:
        for part in ("center", "scale", "inv_scale"):
            del self._buffers[f"{key}__{part}"]
        del self.modes[key]

    def _stats(self, key: str, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if key not in self.modes:
            raise DataError(f"normalizer: key '{key}' expected among the fitted keys {self.keys}, found no statistics")
        c, s, inv = (self._buffers[f"{key}__{p}"] for p in ("center", "scale", "inv_scale"))
        tail = tuple(c.shape)
        if tuple(x.shape[x.dim() - len(tail) :]) != tail or x.dim() < len(tail):
            raise DataError(f"normalizer: key '{key}' expected trailing shape {tail}, found {tuple(x.shape)}")
        return c, s, inv

    def normalize(self, key: str, x: Tensor) -> Tensor:
        c, _, inv = self._stats(key, x)
        return (x - c) * inv

    def unnormalize(self, key: str, x: Tensor) -> Tensor:
        c, s, _ = self._stats(key, x)
        return x * s + c

    def save(self, path: str | Path) -> None:
        """safetensors, modes in the header metadata: loadable without pickle, safe to share."""
        tensors = {
            f"{k}/{p}": self._buffers[f"{k}__{p}"].detach().cpu().contiguous()
            for k in self.modes
            for p in ("center", "scale")
        }
        save_file(
            tensors, str(path), metadata={"format": FORMAT, "modes": json.dumps(self.modes), "eps": str(self.eps)}
        )

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: expected a normalizer safetensors file, found nothing")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {n: f.get_tensor(n) for n in f.keys()}  # noqa: SIM118 (safetensors handles have keys(), not __iter__)
        except Exception as e:
            raise DataError(
                f"{path}: expected a normalizer safetensors file, found unreadable data ({type(e).__name__})"
            ) from None
        if meta.get("format") != FORMAT:
            raise DataError(f"{path}: expected metadata format {FORMAT!r}, found {meta.get('format')!r}")
        norm = cls(eps=float(meta.get("eps", 1e-4)))
        for k, mode in json.loads(meta["modes"]).items():
            if f"{k}/center" not in tensors or f"{k}/scale" not in tensors:
                raise DataError(f"{path}: key '{k}' expected center and scale tensors, found {sorted(tensors)}")
            norm._set(k, mode, tensors[f"{k}/center"], tensors[f"{k}/scale"])
        return norm

    def extra_repr(self) -> str:
        return ", ".join(f"{k}: {m} {tuple(self._buffers[f'{k}__center'].shape)}" for k, m in self.modes.items())
