"""The Task contract: what the rest of robolearn may know about a simulated task.

A task makes gymnasium envs whose observations are dicts keyed exactly like the arrays in
the task's zarr datasets (``data/<key>``), so a policy trained on collected data can be run
in the env without any renaming. Experts act from the simulator's privileged state and are
Markovian: ``expert.act(env)`` depends only on the current simulator state, so any state a
learner reaches can be labelled (DAgger), and ``get_state``/``set_state`` let an expert roll
a whole chunk forward from a state and then put the simulator back.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from robolearn.spec import ObsSpec, TaskSpec

__all__ = ["Expert", "ObsSpec", "Task", "TaskSpec"]


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
