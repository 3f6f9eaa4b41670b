"""Who labels a state: the task's scripted expert, or a trained policy as the teacher.

A label is a chunk. A chunked policy predicts H actions at s_t, so its label must be the
expert's H actions *from s_t*: the simulator state is saved, the expert rolled H-1 steps
forward, the state restored (``ScriptedLabeler.chunk``). Windows over the learner's own
trajectory would instead label step t+k with the expert's action at a state the learner,
not the expert, produced. A teacher's label is the chunk its ``predict_chunk`` gives from its
own observation history (teacher-student: ``algo.expert=<checkpoint>``).
"""

from __future__ import annotations

import numpy as np
import torch

from robolearn.errors import ConfigError
from robolearn.policy import ChunkPolicy


class ScriptedLabeler:
    """The task's Markovian expert. Its chunk at a state is what it does from there for H
    steps: save the simulator, roll the expert forward, restore."""

    obs_horizon = 1

    def __init__(self, task, horizon: int):
        self.task, self.horizon = task, horizon
        self.expert = task.expert()
        if self.expert is None:
            raise ConfigError(
                f"task {task.spec.name!r} has no scripted expert; set algo.expert=<teacher checkpoint dir>"
            )
        self.sim_steps = 0

    def reset(self, env) -> None:
        self.expert.reset(env)

    def act(self, env, hist=None) -> np.ndarray:
        return np.asarray(self.expert.act(env), dtype=np.float32)

    def chunk(self, env, hist=None, n: int | None = None) -> np.ndarray:
        n = n or self.horizon
        state = self.task.get_state(env)
        out = []
        try:
            for i in range(n):
                out.append(self.act(env))
                if i < n - 1:
                    _, _, term, trunc, _ = env.step(out[-1])
                    self.sim_steps += 1
                    if term or trunc:  # the episode ends inside the chunk (Meta-World refuses a step past
                        out += [out[-1]] * (n - len(out))  # its last): nothing to label there, as in training
                        break
        finally:
            self.task.set_state(env, state)
        return np.stack(out)


class TeacherLabeler:
    """A trained ChunkPolicy as the expert (teacher-student distillation, e.g. Push-T where only
    human data exists): its label is the chunk it predicts from its own observation history."""

    sim_steps = 0

    def __init__(self, policy: ChunkPolicy, horizon: int, seed: int = 0):
        if policy.horizon < horizon:
            raise ConfigError(
                f"algo.expert: the teacher predicts {policy.horizon} actions per chunk, "
                f"the student needs policy.horizon={horizon}; expected teacher horizon >= {horizon}"
            )
        self.policy, self.horizon, self.obs_horizon = policy, horizon, policy.obs_horizon
        self.gen = torch.Generator(device=policy.device).manual_seed(seed)

    def reset(self, env) -> None:
        pass

    def chunk(self, env, hist: dict[str, np.ndarray], n: int | None = None) -> np.ndarray:
        missing = set(self.policy.obs_spec) - set(hist)
        if missing:
            raise ConfigError(
                f"algo.expert: the teacher needs observation keys {sorted(missing)} the env does not give"
            )
        obs = {k: hist[k][None, -self.obs_horizon :] for k in self.policy.obs_spec}
        return self.policy.predict_chunk(obs, generator=self.gen)[0, : n or self.horizon].astype(np.float32)

    def act(self, env, hist: dict[str, np.ndarray]) -> np.ndarray:
        return self.chunk(env, hist, 1)[0]


def make_labeler(task, expert: str, horizon: int, device, seed: int = 0):
    if expert in (None, "", "scripted"):
        return ScriptedLabeler(task, horizon)
    teacher = ChunkPolicy.load(expert, device=device)
    check_teacher(teacher, task, expert)
    return TeacherLabeler(teacher, horizon, seed)


def check_teacher(teacher: ChunkPolicy, task, where) -> None:
    """Before any rollout: the teacher must see observations the student's task gives (same keys
    and shapes) and act in its action space. One line naming what differs."""
    spec = task.spec
    missing = sorted(set(teacher.obs_spec) - set(spec.obs))
    if missing:
        raise ConfigError(
            f"algo.expert={where}: the teacher observes {sorted(teacher.obs_spec)}, the task {spec.name} gives "
            f"{sorted(spec.obs)}; expected every teacher key, found {missing} missing"
        )
    for k, s in teacher.obs_spec.items():
        if tuple(s.shape) != tuple(spec.obs[k].shape):
            raise ConfigError(
                f"algo.expert={where}: key {k!r}: expected the task's shape {tuple(spec.obs[k].shape)}, "
                f"found the teacher's {tuple(s.shape)}"
            )
    if teacher.action_dim != spec.action_dim:
        raise ConfigError(
            f"algo.expert={where}: expected a teacher acting in {spec.action_dim}-D (task {spec.name}), "
            f"found {teacher.action_dim}-D actions"
        )
