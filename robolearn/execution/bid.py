"""Bidirectional decoding (BID, Liu et al. 2024): choose among sampled chunks, do not inpaint.

Like naive async and RTC, a chunk is requested every ``s`` steps and takes over ``d`` steps
later (timing in ``delay.py``). At each request the policy samples ``n_samples`` candidate chunks
in one batched call, and BID keeps the candidate closest to what the previous chunk still plans
for the same future steps (backward coherence), the distance weighted by the same prefix weights
RTC uses (1 over the steps executed from the previous chunk anyway, decaying over the rest of
the overlap, 0 where the previous chunk has no plan). The policy is never asked to inpaint, so
BID costs one batched sample of ``n_samples`` chunks and works with every head through
``predict_chunk``. The paper's second criterion (forward contrast against a weaker policy) is
not implemented: backward coherence is the part that addresses inference delay.

With one candidate BID is naive async: the same call on the same observation and generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.errors import ConfigError
from robolearn.execution.base import register_executor, select_obs
from robolearn.execution.delay import ChunkSchedule, probe_generator
from robolearn.execution.realtime import pending_prefix, rtc_weights


def closest_to_prefix(cands: np.ndarray, prefix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The index of the candidate (b, N, H, A) nearest the prefix (b, H, A) under the weighted
    squared distance sum_i w_i ||c_i - p_i||^2; (b,) ints."""
    cost = (np.square(cands - prefix[:, None]).sum(-1) * weights).sum(-1)
    return cost.argmin(axis=1)


@register_executor("bid")
class BidirectionalDecoding(ChunkSchedule):
    def __init__(
        self,
        policy,
        n_envs: int,
        s: int | None = None,
        n_samples: int = 16,
        delay: int | str = 0,
        control_hz: float | None = None,
        generator=None,
    ):
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ConfigError(
                f"exec.n_samples: expected an integer >= 1 (candidate chunks per request), got {n_samples!r}"
            )
        self.n_samples = int(n_samples)
        super().__init__(policy, n_envs, s, delay, control_hz, generator)

    def _set_delay(self, d: int) -> None:
        super()._set_delay(d)
        self.weights = rtc_weights(self.H, self.s, min(d, self.s))

    def _candidates(self, obs: dict[str, np.ndarray], generator) -> np.ndarray:
        b, n = len(next(iter(obs.values()))), self.n_samples
        many = {k: np.repeat(v, n, axis=0) for k, v in obs.items()}  # env-major: rows b*n .. b*n+n-1
        out = np.asarray(self.policy.predict_chunk(many, generator=generator))
        return out.reshape(b, n, self.H, self.A)

    def _request(self, obs: dict[str, np.ndarray], idx: np.ndarray, first: bool) -> np.ndarray:
        cands = self._candidates(select_obs(obs, idx), self.generator)
        if first:  # nothing to be coherent with yet
            return cands[:, 0]
        k = self.t[idx] // self.s
        prefix = pending_prefix(self.buf[idx, (k - 1) % self.ring], self.s)
        return cands[np.arange(len(idx)), closest_to_prefix(cands, prefix, self.weights)]

    def _probe(self, obs: dict[str, np.ndarray]) -> Callable[[], Any]:
        gen = probe_generator(self.policy)
        return lambda: self._candidates(obs, gen)
