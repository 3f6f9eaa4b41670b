"""Asynchronous execution under inference delay: naive switching and real-time chunking.

Both request a new chunk every ``s`` steps from the current observation; it takes ``d`` env
steps to compute, during which the previous chunk keeps running (timing in ``delay.py``).

- Naive async: the new chunk is sampled from scratch and switched to when it arrives, its
  first d (stale) actions skipped. Nothing ties it to what the robot was doing, so with a
  multimodal policy the switch can jump between modes: the jerk RTC removes.
- Real-time chunking (Black, Galliker, Levine 2025): the new chunk is generated as an
  *inpainting* of the previous one. Its first d steps will be executed from the previous
  chunk no matter what, so they are frozen to it (weight 1); the overlap after them is
  guided with an exponentially decaying soft mask, so the new chunk stays consistent with
  the old plan yet can still react; the last s steps, which the old chunk does not cover,
  are free. The policy's head does the inpainting (``predict_chunk(obs, prefix, weights)``),
  so this executor works with every head.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.errors import ConfigError
from robolearn.execution.base import register_executor, select_obs
from robolearn.execution.delay import ChunkSchedule, check_window, probe_generator


def pending_prefix(prev: np.ndarray, s: int) -> np.ndarray:
    """What the previous chunk (b, H, A), requested s steps earlier, plans for the new chunk's
    steps: its remaining H - s actions, then its last action repeated (weight 0 there)."""
    return np.concatenate([prev[:, s:], np.repeat(prev[:, -1:], s, axis=1)], axis=1)


def rtc_weights(H: int, s: int, d: int) -> np.ndarray:
    """The RTC soft mask (eq. 5 of the paper), (H,) float32 in [0, 1].

    W_i = 1 for i < d; c_i (e^{c_i} - 1) / (e - 1) with c_i = (H-s-i) / (H-s-d+1) for
    d <= i < H-s; 0 for i >= H-s. Needs 0 <= d, 1 <= s and s + d <= H."""
    if not (H >= 1 and s >= 1 and d >= 0):
        raise ConfigError(f"rtc_weights: expected H >= 1, s >= 1, d >= 0, got H={H}, s={s}, d={d}")
    check_window(H, s, d, "s")
    i = np.arange(H, dtype=np.float64)
    c = (H - s - i) / (H - s - d + 1)
    w = c * np.expm1(c) / (math.e - 1)
    w[i < d] = 1.0
    w[i >= H - s] = 0.0
    return w.astype(np.float32)


@register_executor("naive_async")
class NaiveAsync(ChunkSchedule):
    """Switch to each new chunk, sampled without a prefix, as soon as it arrives."""


@register_executor("rtc")
class RealTimeChunking(ChunkSchedule):
    """``mask``: ``soft`` (the paper's method: frozen steps, then the decaying overlap) or ``hard``
    (its ablation: only the d frozen steps are tied to the previous chunk, everything after is
    free, so the new chunk reacts fully to the new observation)."""

    def __init__(
        self,
        policy,
        n_envs: int,
        s: int | None = None,
        delay: int | str = 0,
        control_hz: float | None = None,
        generator=None,
        mask: str = "soft",
    ):
        if mask not in ("soft", "hard"):
            raise ConfigError(f"exec.mask: expected soft or hard, got {mask!r}")
        self.mask = mask
        super().__init__(policy, n_envs, s, delay, control_hz, generator)

    def _set_delay(self, d: int) -> None:
        if d > self.s:
            raise ConfigError(
                f"exec.s: real-time chunking needs s >= delay (the steps frozen to the previous "
                f"chunk must all come from it), got s={self.s} < delay={d}"
            )
        super()._set_delay(d)
        self.weights = rtc_weights(self.H, self.s, d)
        if self.mask == "hard":
            self.weights = np.where(np.arange(self.H) < d, 1.0, 0.0).astype(np.float32)

    def _request(self, obs: dict[str, np.ndarray], idx: np.ndarray, first: bool) -> np.ndarray:
        if first:  # nothing to stay consistent with yet
            return super()._request(obs, idx, first)
        k = self.t[idx] // self.s
        prev = self.buf[idx, (k - 1) % self.ring]  # (b, H, A), time base t - s
        prefix = pending_prefix(prev, self.s)
        return np.asarray(
            self.policy.predict_chunk(
                select_obs(obs, idx), prefix=prefix, prefix_weights=self.weights, generator=self.generator
            )
        )

    def _probe(self, obs: dict[str, np.ndarray]) -> Callable[[], Any]:
        gen = probe_generator(self.policy)
        prefix = np.zeros((len(next(iter(obs.values()))), self.H, self.A), np.float32)
        w = rtc_weights(self.H, self.s, 0)  # the cost of inpainting does not depend on the weights' values
        return lambda: self.policy.predict_chunk(obs, prefix=prefix, prefix_weights=w, generator=gen)
