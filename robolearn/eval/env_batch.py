"""Environments stepped in lockstep in this process, with batched observations."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def stack_obs(items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(it[k]) for it in items]) for k in items[0]}


def stack_infos(infos: list[dict]) -> dict[str, np.ndarray]:
    """Scalar info entries as arrays (0 where an env did not report the key)."""
    keys = {k for i in infos for k, v in i.items() if np.isscalar(v) or np.ndim(v) == 0}
    return {k: np.array([float(i.get(k, 0.0)) for i in infos]) for k in keys}


class EnvBatch:
    """n environments stepped in lockstep with batched observations; an environment whose episode
    has ended is not stepped again (gymnasium's vector envs either auto-reset it or refuse the
    step), it repeats its last observation until the whole wave is done."""

    def __init__(self, envs: list[gym.Env]):
        self.envs = envs
        self.num_envs = len(envs)
        self._last: list[dict[str, np.ndarray]] = []

    def reset(self, seed: list[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        out = [env.reset(seed=int(s)) for env, s in zip(self.envs, seed)]
        self._last = [o for o, _ in out]
        return stack_obs(self._last), stack_infos([i for _, i in out])

    def step(self, actions: np.ndarray, alive: np.ndarray):
        n = self.num_envs
        rew, term, trunc, infos = np.zeros(n), np.ones(n, bool), np.zeros(n, bool), [{} for _ in range(n)]
        for i in np.flatnonzero(alive):
            self._last[i], rew[i], term[i], trunc[i], infos[i] = self.envs[i].step(actions[i])
        return stack_obs(self._last), rew, term, trunc, stack_infos(infos)

    def render(self, i: int):
        return self.envs[i].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()
