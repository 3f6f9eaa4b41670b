"""Receding horizon: execute the first n_action_steps of each chunk, then replan."""
from __future__ import annotations

import numpy as np

from robolearn.errors import ConfigError
from robolearn.execution.base import Executor, select_obs


class RecedingHorizon(Executor):
    def __init__(self, policy, n_envs: int, n_action_steps: int | None = None, generator=None):
        self.policy, self.n_envs, self.generator = policy, n_envs, generator
        self.n = int(n_action_steps or policy.n_action_steps)
        if not 1 <= self.n <= policy.horizon:
            raise ConfigError(f"exec.n_action_steps: expected 1..{policy.horizon} (the chunk length), got {self.n}")
        self.reset()

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.queue = np.zeros((self.n_envs, self.n, self.policy.action_dim), np.float32)
            self.pos = np.full(self.n_envs, self.n)
        else:
            self.pos[np.asarray(mask, bool)] = self.n

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        need = self.pos >= self.n
        if need.any():
            idx = np.flatnonzero(need)
            chunk = self.policy.predict_chunk(select_obs(obs, idx), generator=self.generator)
            self.queue[idx] = chunk[:, : self.n]
            self.pos[idx] = 0
        out = self.queue[np.arange(self.n_envs), self.pos]
        self.pos += 1
        return out
