"""Types both sides share: what an observation key is (``ObsSpec``) and what a task promises
(``TaskSpec``). They live below both ``envs/`` (which fills them in) and the model side (which
builds encoders from them), so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
