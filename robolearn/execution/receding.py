"""Receding horizon: execute ``n_action_steps`` of each chunk, then replan.

With ``delay: d`` the next chunk is still requested every n_action_steps steps, but it takes
over d steps later; until then the current chunk keeps running, and the new chunk's first d
actions (already in the past) are skipped. That is exactly the naive asynchronous execution
of Black et al. 2025 — the two executors differ only in the option's name — which is the
honest baseline: a receding-horizon policy on a real robot cannot stop the world to think.

``stride: k`` plays each chunk back k times faster: it executes the chunk's actions k-1,
2k-1, 3k-1, ... (the action planned k steps ahead at every step), so a chunk of H actions lasts
H // k env steps, and ``n_action_steps`` (default: the policy's, divided by k and rounded up, the
same stretch of the plan) counts executed steps. Meant for actions that are position targets
(Push-T's, a Cartesian or joint position); a velocity or gripper command would need scaling.
It trades precision for speed where a time limit binds (DOT's ``return_every_n``).
"""

from __future__ import annotations

import math

from robolearn.execution.base import register_executor
from robolearn.execution.delay import ChunkSchedule, steps_in_chunk


@register_executor("receding")
class RecedingHorizon(ChunkSchedule):
    s_name = "n_action_steps"

    def __init__(
        self,
        policy,
        n_envs: int,
        n_action_steps: int | None = None,
        delay: int | str = 0,
        control_hz: float | None = None,
        stride: int = 1,
        generator=None,
    ):
        self.stride = steps_in_chunk("stride", stride, int(policy.horizon))
        if n_action_steps is None and self.stride > 1:
            n_action_steps = math.ceil(int(policy.n_action_steps) / self.stride)
        super().__init__(policy, n_envs, s=n_action_steps, delay=delay, control_hz=control_hz, generator=generator)

    def _chunk_length(self) -> int:
        return int(self.policy.horizon) // self.stride

    def _request(self, obs, idx, first):
        k = self.stride
        return super()._request(obs, idx, first)[:, k - 1 :: k]  # H // k actions
