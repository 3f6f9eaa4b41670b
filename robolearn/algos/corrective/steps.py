"""Where the next state comes from: the task's simulator, or a learned dynamics model."""

from __future__ import annotations

import numpy as np


class SimStep:
    """The task's simulator as ``step``: put it at each state, execute the action, read the state."""

    def __init__(self, task):
        self.task, self.env = task, task.make_env()
        self.env.reset(seed=0)
        self.calls = 0

    def __call__(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        out = np.empty_like(states)
        for i, (s, a) in enumerate(zip(states, actions)):
            self.task.set_correction_state(self.env, s)
            self.env.step(a.astype(np.float32))
            out[i] = self.task.correction_state(self.env)
        self.calls += len(states)
        return out

    def close(self) -> None:
        self.env.close()


class ModelStep:
    """A learned dynamics model as ``step`` (batched)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        self.calls += len(states)
        return self.model.predict(states, actions)

    def close(self) -> None:
        pass
