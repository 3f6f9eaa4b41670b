"""Executors turn chunks into actions; which one runs is an evaluation-time choice."""
from __future__ import annotations

from typing import Any

from robolearn.errors import ConfigError
from robolearn.execution.base import Executor
from robolearn.execution.receding import RecedingHorizon

EXECUTORS: dict[str, type[Executor]] = {"receding": RecedingHorizon}


def build_executor(cfg: dict[str, Any], policy, n_envs: int, generator=None) -> Executor:
    cfg = dict(cfg or {"name": "receding"})
    name = cfg.pop("name", "receding")
    cfg.pop("_name", None)
    if name not in EXECUTORS:
        raise ConfigError(f"exec.name: unknown executor {name!r}; choose one of {sorted(EXECUTORS)}")
    return EXECUTORS[name](policy, n_envs, generator=generator, **cfg)


__all__ = ["Executor", "build_executor", "EXECUTORS"]
