"""Simulated inference delay, shared by every executor so that comparisons are fair.

Time model (one rule for all executors). Env steps count t = 0, 1, 2, ... from the episode
start. A chunk requested at step t is computed from obs_t and has *time base* t: its action i
is meant for step t + i. It becomes usable only ``d`` env steps later, at step t + d; in the
meantime the robot keeps moving on older actions, so the new chunk's first d actions are
already in the past and are skipped.

Episode start: there is no older chunk to act from, so the first request of an episode is a
*synchronous first inference*: the world waits for it (a real robot waits at rest before it
starts moving), it is usable at step 0 and executed from its index 0. Every later request pays
the full delay d.

``delay: auto`` measures the policy's latency once (per policy, batch size and kind of call)
and converts it with ``control_hz``: d = floor(latency * control_hz), the convention of Black
et al. 2025 (a chunk that is ready within one control period is used at the next tick).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from robolearn.errors import ConfigError
from robolearn.execution.base import Executor, select_obs

# policy -> {(probe kind, batch size): seconds}; weak so a deleted policy frees its entry.
_LATENCY: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def parse_delay(delay: Any, control_hz: Any = None) -> int | str:
    """``delay`` as an int >= 0, or ``"auto"`` (which needs ``control_hz`` > 0)."""
    if delay is None:
        return 0
    if isinstance(delay, str):
        if delay.strip().lower() == "auto":
            if (
                control_hz is None
                or isinstance(control_hz, bool)
                or not isinstance(control_hz, (int, float))
                or not control_hz > 0
            ):
                raise ConfigError(f"exec.control_hz: delay=auto needs the control rate in Hz (> 0), got {control_hz!r}")
            return "auto"
        if delay.strip().isdigit():
            return int(delay)
    if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 0:
        raise ConfigError(f"exec.delay: expected an integer >= 0 (env steps) or 'auto', got {delay!r}")
    return int(delay)


def steps_in_chunk(name: str, value: Any, H: int) -> int:
    """An executor option that counts chunk steps: an integer in 1..H."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= H:
        raise ConfigError(f"exec.{name}: expected an integer in 1..{H} (the chunk length), got {value!r}")
    return int(value)


def check_window(H: int, s: int, d: int, s_name: str) -> None:
    """A chunk must cover the d steps of waiting plus the s steps it is executed for."""
    if d >= H:
        raise ConfigError(f"exec.delay: expected < the chunk length H={H}, got {d}")
    if s + d > H:
        raise ConfigError(f"exec.{s_name} + exec.delay: expected <= the chunk length H={H}, got {s} + {d} = {s + d}")


CLOCK: Callable[[], float] = time.perf_counter  # what delay=auto measures with (tests inject a clock)


def measured_latency(policy, key: tuple, call: Callable[[], Any]) -> float:
    """Seconds one ``call`` takes (after one warm-up call), measured once per policy and key."""
    cache = _LATENCY.setdefault(policy, {})
    if key not in cache:
        call()  # warm-up: lazy init, allocator, kernel selection
        t0 = CLOCK()
        call()  # predict_chunk returns numpy, so device work is finished when it returns
        cache[key] = CLOCK() - t0
    return cache[key]


def latency_to_steps(seconds: float, control_hz: float) -> int:
    return int(math.floor(seconds * control_hz + 1e-9))


@contextmanager
def auto_delay_context(seconds: float, control_hz: float):
    """Say where a measured delay came from when it turns out not to fit."""
    try:
        yield
    except ConfigError as e:
        d = latency_to_steps(seconds, control_hz)
        raise ConfigError(f"delay=auto measured {seconds * 1e3:.1f} ms = {d} steps at {control_hz} Hz; {e}") from None


def probe_generator(policy):
    """A private generator for latency probes, so measuring does not shift the eval's random stream."""
    import torch

    return torch.Generator(device=getattr(policy, "device", "cpu")).manual_seed(0)


class DelayedExecutor(Executor):
    """What every executor shares: the policy, the batch of envs, and the simulated delay ``d``
    (fixed, or ``auto``: measured on the first ``act`` with a call like the ones it will make)."""

    def __init__(self, policy, n_envs: int, delay: int | str = 0, control_hz: float | None = None, generator=None):
        self.policy, self.n_envs, self.generator = policy, int(n_envs), generator
        self.H, self.A = self._chunk_length(), int(policy.action_dim)
        self.control_hz = control_hz
        self._delay = parse_delay(delay, control_hz)
        self.d: int | None = None

    def _chunk_length(self) -> int:
        """Actions per chunk as executed (the policy's H; fewer if an executor subsamples)."""
        return int(self.policy.horizon)

    def _init_delay(self) -> None:
        """Apply a fixed delay; subclasses call it once their own options are checked."""
        if self._delay != "auto":
            self._set_delay(self._delay)

    def _set_delay(self, d: int) -> None:
        raise NotImplementedError

    def _probe(self, obs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """One call of the kind the executor makes later, for ``delay: auto``."""
        gen = probe_generator(self.policy)
        return lambda: self.policy.predict_chunk(obs, generator=gen)

    def _resolve_auto_delay(self, obs: dict[str, np.ndarray]) -> None:
        if self.d is None:
            sec = measured_latency(self.policy, (type(self).__name__, self.n_envs), self._probe(obs))
            with auto_delay_context(sec, self.control_hz):
                self._set_delay(latency_to_steps(sec, self.control_hz))


class ChunkSchedule(DelayedExecutor):
    """Request a chunk every ``s`` steps; it takes over ``d`` steps later.

    Chunk k is requested at step k*s. Chunk 0 (synchronous first inference) runs from step 0;
    chunk k >= 1 arrives at step k*s + d and runs until chunk k+1 arrives, i.e. its indices
    d .. d+s-1. Requests may overlap (s < d): up to 1 + d//s chunks are in flight per env,
    kept in a small ring. Subclasses change only how a chunk is requested (``_request``).

    After each ``act``, ``last_switch`` (B,) is True for the envs whose action came from a
    chunk that took over at this step (step 0 included).
    """

    s_name = "s"

    def __init__(
        self,
        policy,
        n_envs: int,
        s: int | None = None,
        delay: int | str = 0,
        control_hz: float | None = None,
        generator=None,
    ):
        super().__init__(policy, n_envs, delay, control_hz, generator)
        s = policy.n_action_steps if s is None else s
        self.s = steps_in_chunk(self.s_name, s, self.H)
        self._init_delay()
        self.reset()

    def _set_delay(self, d: int) -> None:
        check_window(self.H, self.s, d, self.s_name)
        self.d = d
        self.ring = 2 + d // self.s  # chunks that can be alive at once (executing + in flight)
        self.buf = np.zeros((self.n_envs, self.ring, self.H, self.A), np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.t = np.zeros(self.n_envs, np.int64)
        else:
            self.t[np.asarray(mask, bool)] = 0
        self.last_switch = np.zeros(self.n_envs, bool)

    # ---- hooks ------------------------------------------------------------------------
    def _request(self, obs: dict[str, np.ndarray], idx: np.ndarray, first: bool) -> np.ndarray:
        """New chunks (len(idx), H, A) for envs ``idx``; ``first``: chunk 0 of their episode."""
        return np.asarray(self.policy.predict_chunk(select_obs(obs, idx), generator=self.generator))

    # ---- stepping ---------------------------------------------------------------------
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._resolve_auto_delay(obs)
        s, d, t = self.s, self.d, self.t
        k = t // s
        req = t % s == 0
        for first in (True, False):
            idx = np.flatnonzero(req & ((k == 0) == first))
            if len(idx):
                self.buf[idx, k[idx] % self.ring] = self._request(obs, idx, first)
        running = np.where(t < s + d, 0, (t - d) // s)  # the latest chunk that has arrived
        out = self.buf[np.arange(self.n_envs), running % self.ring, t - running * s]
        self.last_switch = (t == 0) | ((t >= s + d) & ((t - d) % s == 0))
        self.t = t + 1
        return out
