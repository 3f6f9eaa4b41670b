"""Receding horizon: execute ``n_action_steps`` of each chunk, then replan.

With ``delay: d`` the next chunk is still requested every n_action_steps steps, but it takes
over d steps later; until then the current chunk keeps running, and the new chunk's first d
actions (already in the past) are skipped. That is exactly the naive asynchronous execution
of Black et al. 2025 — the two executors differ only in the option's name — which is the
honest baseline: a receding-horizon policy on a real robot cannot stop the world to think.
"""

from __future__ import annotations

from robolearn.execution.delay import ChunkSchedule


class RecedingHorizon(ChunkSchedule):
    s_name = "n_action_steps"

    def __init__(
        self,
        policy,
        n_envs: int,
        n_action_steps: int | None = None,
        delay: int | str = 0,
        control_hz: float | None = None,
        generator=None,
    ):
        super().__init__(policy, n_envs, s=n_action_steps, delay=delay, control_hz=control_hz, generator=generator)
