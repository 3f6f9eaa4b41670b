"""Temporal ensembling (ACT, Zhao et al. 2023): query every step, average overlapping chunks.

Every step a new chunk is requested; the action executed at step t is the weighted average of
the actions that all usable chunks predicted for step t, with weights exp(-m * i), i = 0 for
the oldest prediction. m >= 0 sets how fast new observations are incorporated: m = 0 is a
plain average, a larger m trusts older predictions more (ACT's choice, which smooths motion).
Averaging trades reactivity for smoothness and, with a multimodal policy, can average modes.

Under delay d (timing in ``delay.py``) the chunk from obs_t only joins the average at step
t + d, so it contributes its actions t+d .. t+H-1; the first chunk of an episode is a
synchronous first inference, usable from step 0.
"""

from __future__ import annotations

import math

import numpy as np

from robolearn.errors import ConfigError
from robolearn.execution.base import register_executor
from robolearn.execution.delay import DelayedExecutor


@register_executor("ensemble")
class TemporalEnsemble(DelayedExecutor):
    def __init__(
        self,
        policy,
        n_envs: int,
        m: float = 0.01,
        delay: int | str = 0,
        control_hz: float | None = None,
        generator=None,
    ):
        super().__init__(policy, n_envs, delay, control_hz, generator)
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m < 0:
            raise ConfigError(f"exec.m: expected a finite number >= 0 (ensembling weights exp(-m*i)), got {m!r}")
        self.m = float(m)
        self._init_delay()
        # one slot per time base modulo H: a chunk is useless H steps after its request
        self.buf = np.zeros((self.n_envs, self.H, self.H, self.A), np.float32)
        self.reset()

    def _set_delay(self, d: int) -> None:
        if d >= self.H:
            raise ConfigError(f"exec.delay: expected < the chunk length H={self.H}, got {d}")
        self.d = d

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.t = np.zeros(self.n_envs, np.int64)
            self.base = np.full((self.n_envs, self.H), -1, np.int64)  # time base per slot, -1 = empty
        else:
            mask = np.asarray(mask, bool)
            self.t[mask] = 0
            self.base[mask] = -1
        self.last_switch = np.zeros(self.n_envs, bool)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._resolve_auto_delay(obs)
        t, rows = self.t, np.arange(self.n_envs)
        slot = t % self.H
        self.buf[rows, slot] = np.asarray(self.policy.predict_chunk(obs, generator=self.generator))
        self.base[rows, slot] = t
        age = t[:, None] - self.base  # (B, H)
        usable = (self.base >= 0) & (age < self.H) & ((self.base == 0) | (age >= self.d))
        # i = rank of each usable prediction by age, oldest first
        older = (self.base[:, None, :] < self.base[:, :, None]) & usable[:, None, :]
        w = np.where(usable, np.exp(-self.m * older.sum(-1)), 0.0)  # (B, H)
        acts = self.buf[rows[:, None], np.arange(self.H)[None], np.clip(age, 0, self.H - 1)]  # (B, H, A)
        out = (w[..., None] * acts).sum(1) / w.sum(1, keepdims=True)
        self.last_switch = (t == 0) | (t - self.d >= 1)  # a new prediction joined the average
        self.t = t + 1
        return out.astype(np.float32)
