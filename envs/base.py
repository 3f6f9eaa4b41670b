"""The Task contract: what the rest of robolearn may know about a simulated task.

A task makes gymnasium envs whose observations are dicts keyed exactly like the arrays in
the task's zarr datasets (``data/<key>``), so a policy trained on collected data can be run
in the env without any renaming. Experts act from the simulator's privileged state and are
Markovian: ``expert.act(env)`` depends only on the current simulator state, so any state a
learner reaches can be labelled (DAgger), and ``get_state``/``set_state`` let an expert roll
a whole chunk forward from a state and then put the simulator back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class ObsSpec:
    """One observation key. ``kind`` is 'lowdim' (float vector) or 'rgb' (H, W, 3 uint8)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = "lowdim"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    obs: dict[str, ObsSpec]
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    max_steps: int
    # Coverage-style tasks report a continuous score ("max reward"); success is score-based.
    extra: dict[str, Any] = field(default_factory=dict)
    # How each observation is read from the task's datasets (``obs_keys`` entries such as
    # ``"agent_pos=state[0:2]"``); a task config without ``obs_keys`` uses these.
    data_keys: tuple[str, ...] = ()


class Expert(Protocol):
    def reset(self, env: gym.Env) -> None: ...
    def act(self, env: gym.Env) -> np.ndarray: ...  # one action (A,), from privileged state


class Task(Protocol):
    spec: TaskSpec

    def make_env(self, render: bool = False) -> gym.Env:
        """A gymnasium env. ``reset(seed=...)`` is deterministic; obs is a dict keyed like
        ``spec.obs``; ``info`` carries ``is_success`` (bool) and ``score`` (float, the
        quantity whose episode maximum is reported, e.g. Push-T coverage)."""

    def get_state(self, env: gym.Env) -> Any: ...
    def set_state(self, env: gym.Env, state: Any) -> None: ...
    def expert(self) -> Expert | None: ...
