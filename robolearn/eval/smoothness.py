"""How smooth the executed motion is, and how much of the roughness comes from chunk switches.

Success alone hides what asynchronous execution costs: a policy can still succeed while the
arm snaps at every chunk boundary. The boundary jump isolates that snap; comparing it with the
typical step-to-step change (``step_change``) says whether switches are the rough part.
"""

from __future__ import annotations

import numpy as np


def smoothness(actions: np.ndarray, switch_steps: np.ndarray) -> dict[str, float]:
    """Per-episode smoothness of executed ``actions`` (T, A).

    ``switch_steps`` (T,) bool: True where a new chunk took over (an executor's
    ``last_switch``). Returns
    - ``mean_abs_jerk``: mean |third difference| over steps and action dims,
    - ``boundary_jump``: mean over switch steps t >= 1 of ||a_t - a_{t-1}|| (Euclidean),
    - ``step_change``: the same norm averaged over the non-switch steps t >= 1, for scale.
    A quantity with no step to average over (a too-short episode, no switch) is 0.0."""
    a = np.asarray(actions, dtype=np.float64)
    a = a.reshape(len(a), -1)
    sw = np.asarray(switch_steps, dtype=bool).reshape(-1)
    if len(sw) != len(a):
        raise ValueError(f"smoothness: switch_steps has {len(sw)} steps, actions has {len(a)}")
    jerk = float(np.abs(np.diff(a, n=3, axis=0)).mean()) if len(a) >= 4 else 0.0
    step = np.linalg.norm(np.diff(a, axis=0), axis=-1)  # step[t-1] = ||a_t - a_{t-1}||
    at_switch = sw[1:]
    return {
        "mean_abs_jerk": jerk,
        "boundary_jump": float(step[at_switch].mean()) if at_switch.any() else 0.0,
        "step_change": float(step[~at_switch].mean()) if (~at_switch).any() else 0.0,
    }
