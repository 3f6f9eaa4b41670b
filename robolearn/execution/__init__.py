"""Executors turn chunks into actions; which one runs is an evaluation-time choice.

Every executor takes ``delay`` (env steps of simulated inference latency, or ``auto`` with
``control_hz``) under one timing rule (``delay.py``), so their comparison is fair.
"""

from __future__ import annotations

import inspect
from typing import Any

from robolearn.errors import ConfigError
from robolearn.execution.base import EXECUTORS, Executor, load_executors, register_executor
from robolearn.execution.bid import BidirectionalDecoding
from robolearn.execution.ensemble import TemporalEnsemble
from robolearn.execution.realtime import NaiveAsync, RealTimeChunking, rtc_weights
from robolearn.execution.receding import RecedingHorizon


def build_executor(cfg: dict[str, Any] | None, policy, n_envs: int, generator=None) -> Executor:
    """An executor from an ``exec`` config (``configs/exec/*.yaml``: ``name`` plus options).

    Every option is validated here, so a bad one fails before any rollout starts; build once
    before the rollout to fail early (only ``delay: auto`` is resolved at the first ``act``)."""
    cfg = dict(cfg or {})
    file_name = cfg.pop("_name", None)
    name = cfg.pop("name", None) or file_name or "receding"
    load_executors()  # every module of the package registers its executors (@register_executor)
    if name not in EXECUTORS:
        raise ConfigError(f"exec.name: unknown executor {name!r}; choose one of {sorted(EXECUTORS)}")
    cls = EXECUTORS[name]
    allowed = [
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "policy", "n_envs", "generator")
    ]
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(f"exec: unknown option(s) {unknown} for executor {name!r}; it accepts {allowed}")
    return cls(policy, n_envs, generator=generator, **cfg)


__all__ = [
    "EXECUTORS",
    "BidirectionalDecoding",
    "Executor",
    "NaiveAsync",
    "RealTimeChunking",
    "RecedingHorizon",
    "TemporalEnsemble",
    "build_executor",
    "load_executors",
    "register_executor",
    "rtc_weights",
]
