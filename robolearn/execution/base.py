"""The Executor contract: how predicted chunks become one action per env step.

Executors work on a batch of B envs at once, stepped in lockstep. ``act(obs)`` receives the
stacked observation history for every env (``obs[k]``: (B, To, *shape), numpy) and returns
(B, A) actions. It asks the policy for chunks when it must, through
``policy.predict_chunk(obs, prefix, prefix_weights)``, and never knows which head it drives.

After each ``act``, ``last_switch`` (B,) bool says for which envs a new chunk took over at
this step (step 0 of an episode counts): the smoothness metrics measure the jump there.
Every executor takes ``delay`` (simulated inference latency, see ``delay.py``).
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np

EXECUTORS: dict[str, type] = {}  # name -> class, filled by @register_executor as the modules load


def register_executor(name: str):
    """Class decorator: the executor ``exec.name`` / ``configs/exec/<name>.yaml`` builds. A new
    executor is one module in this package with this decorator, plus its YAML."""

    def deco(cls):
        if name in EXECUTORS and EXECUTORS[name] is not cls:
            raise RuntimeError(f"executor name {name!r} registered twice")
        EXECUTORS[name] = cls
        cls.executor_name = name
        return cls

    return deco


def load_executors() -> dict[str, type]:
    """Import every module of ``robolearn.execution`` once, so each registers its executors."""
    pkg = importlib.import_module("robolearn.execution")
    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"robolearn.execution.{mod.name}")
    return EXECUTORS


class Executor:
    n_envs: int
    last_switch: np.ndarray

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget pending chunks (for the envs where ``mask`` is True, or all): a new episode."""
        raise NotImplementedError

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError


def select_obs(obs: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The observations of a subset of envs (those that need a new chunk now)."""
    return {k: v[idx] for k, v in obs.items()}
