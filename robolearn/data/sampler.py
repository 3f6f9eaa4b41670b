"""Training windows: one per time step, gathered by numpy fancy indexing over index tables.

Window at step t (inside its episode [s, e)): observation frames t-To+1 .. t and the action
chunk t .. t+H-1. The chunk starts at the *current* step, so a policy's first predicted
action is the one to execute now (Diffusion Policy's chunk starts at t-To+1 instead).
Steps outside the episode repeat its first / last frame; the masks say which are real.
All index arithmetic happens once, in ``__init__``: a batch is one ``take`` per key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from robolearn.errors import ConfigError, DataError


class WindowSampler:
    def __init__(
        self,
        arrays: Mapping[str, Any],
        episode_ends: Sequence[int] | np.ndarray,
        obs_keys: Sequence[str],
        action_key: str,
        obs_horizon: int,
        horizon: int,
        episodes: Sequence[int] | np.ndarray | None = None,
    ):
        if obs_horizon < 1 or horizon < 1:
            raise ConfigError(f"obs_horizon and horizon expected >= 1, found {obs_horizon} and {horizon}")
        ends = np.asarray(episode_ends, dtype=np.int64)
        for k in [*obs_keys, action_key]:
            if k not in arrays:
                raise DataError(f"sampler: key '{k}' expected in the loaded arrays, found only {sorted(arrays)}")
            if len(ends) and len(arrays[k]) < ends[-1]:
                raise DataError(
                    f"sampler: key '{k}' expected >= {ends[-1]} rows (episode_ends[-1]), found {len(arrays[k])}"
                )
        eps = np.arange(len(ends)) if episodes is None else np.asarray(episodes, dtype=np.int64)
        if eps.size and (eps.min() < 0 or eps.max() >= len(ends)):
            raise DataError(f"sampler: episode indices expected in [0, {len(ends)}), found [{eps.min()}, {eps.max()}]")
        self.arrays = arrays
        self.obs_keys, self.action_key = list(obs_keys), action_key
        self.obs_horizon, self.horizon = int(obs_horizon), int(horizon)
        self.episodes = eps

        starts = np.concatenate([[0], ends[:-1]])[eps]
        lens = ends[eps] - starts
        first = np.repeat(starts, lens)  # (N,) episode start of each window
        last = np.repeat(starts + lens - 1, lens)  # (N,) episode's last step
        t = first + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        o = t[:, None] + np.arange(1 - self.obs_horizon, 1)  # (N, To)
        a = t[:, None] + np.arange(self.horizon)  # (N, H)
        self.t = t
        self.obs_idx = np.maximum(o, first[:, None]).astype(np.intp)
        self.obs_mask = o >= first[:, None]
        self.act_idx = np.minimum(a, last[:, None]).astype(np.intp)
        self.action_mask = a <= last[:, None]

    def __len__(self) -> int:
        return len(self.t)

    def sample(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Windows ``indices`` (positions in ``0 .. len-1``) as numpy arrays. Images stay uint8,
        everything else becomes float32."""
        i = np.asarray(indices, dtype=np.intp)
        oi = self.obs_idx[i]
        obs = {k: _as_model_dtype(self.arrays[k][oi]) for k in self.obs_keys}
        act = np.asarray(self.arrays[self.action_key][self.act_idx[i]], dtype=np.float32)
        return {"obs": obs, "action": act, "action_mask": self.action_mask[i], "obs_mask": self.obs_mask[i]}

    def random_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, Any]:
        """Uniform over windows, with replacement: every time step counts once per epoch on average."""
        if len(self) == 0:
            raise DataError("sampler: no windows to sample (0 episodes selected)")
        return self.sample(rng.integers(0, len(self), size=batch_size))


def _as_model_dtype(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


def to_torch(batch: Any, device: torch.device) -> Any:
    """Nested dicts of numpy arrays -> same structure of tensors (no copy on CPU)."""
    if isinstance(batch, dict):
        return {k: to_torch(v, device) for k, v in batch.items()}
    return torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True)
