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

from robolearn.errors import ConfigError
from robolearn.spec import ObsSpec, TaskSpec

__all__ = ["EpisodeMode", "Expert", "ObsSpec", "Task", "TaskSpec", "TwoRenderers", "find_wrapper"]


class EpisodeMode:
    """A multimodal expert's strategy, drawn per episode at ``reset`` from ``modes`` (seeded) and kept
    per env, so that given (simulator state, mode) the expert stays deterministic."""

    modes: tuple[str, ...] = ()

    def init_modes(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self._mode: dict[int, str] = {}

    def reset(self, env: gym.Env) -> None:
        self._mode[id(env.unwrapped)] = self.modes[int(self.rng.integers(len(self.modes)))]

    def mode(self, env: gym.Env) -> str:
        return self._mode.get(id(env.unwrapped), self.modes[0])

    def set_mode(self, env: gym.Env, mode: str) -> None:
        """Force a strategy (ablations, tests) instead of drawing one at ``reset``."""
        if mode not in self.modes:
            raise ConfigError(f"{type(self).__name__}: mode must be one of {self.modes}, got {mode!r}")
        self._mode[id(env.unwrapped)] = mode


class TwoRenderers:
    """An env's offscreen renderers: one for image observations, one for video frames (either may
    be None). The env provides ``_render(renderer)``."""

    _obs_renderer: Any = None
    _video_renderer: Any = None

    def render(self) -> np.ndarray | None:
        """A video frame (``render_size``), or None when the env was made without rendering."""
        return self._render(self._video_renderer) if self._video_renderer is not None else None

    def close_renderers(self) -> None:
        for r in (self._obs_renderer, self._video_renderer):
            if r is not None:
                r.close()
        self._obs_renderer = self._video_renderer = None


def find_wrapper(env: gym.Env, cls: type) -> Any:
    """The first layer of a wrapped env that is a ``cls`` (a task's own env under gymnasium wrappers)."""
    e = env
    while not isinstance(e, cls):
        if not hasattr(e, "env"):
            raise TypeError(f"no {cls.__name__} in {env}")
        e = e.env
    return e


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
