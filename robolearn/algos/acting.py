"""Who drives a rollout and what it records: the strategies of collection, DART, DAgger and
HG-DAgger, run by the one rollout loop (``robolearn.eval.rollout.rollout``).

A strategy decides, at each step, which action is executed and whether the step is labelled:
``ExpertActs`` (the expert, optionally with Gaussian noise: demonstrations and DART),
``Mixture`` (the expert with probability beta, else the learner: DAgger) and ``Gated`` (the
learner until it strays, then the expert: HG-DAgger). It asks a ``StepContext`` for what it
needs (the expert's action, its chunk, the learner's next action); the context queries each at
most once per step and counts the queries. ``LabellingDriver`` adapts a strategy to the
rollout loop and records the labelled stretches: the observation, the expert's label ``action``
(and ``action_chunk``), the executed ``exec_action`` (clipped to the action bounds) and
``expert_acted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robolearn.algos.labelers import ScriptedLabeler
from robolearn.eval.env_batch import EnvBatch
from robolearn.eval.rollout import rollout

CHUNK_KEY = "action_chunk"
CHUNK_MASK_KEY = CHUNK_KEY + "_mask"  # optional: which chunk steps are real (else all are)


class LastFrames:
    """Executor adapter: the rollout keeps the longer of the learner's and the teacher's
    observation histories; the learner sees only its own ``To`` frames."""

    def __init__(self, executor, to: int):
        self.executor, self.to = executor, to

    def reset(self, mask=None) -> None:
        self.executor.reset(mask)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.executor.act({k: v[:, -self.to :] for k, v in obs.items()})


class StepContext:
    """What a strategy may ask at one step; each answer is computed at most once per step."""

    def __init__(self, env, labeler, learner, policy, generator, rng, chunk_labels: bool, fast: bool):
        self.env, self.labeler, self.learner, self.policy = env, labeler, learner, policy
        self.generator, self.rng, self.chunk_labels, self.fast = generator, rng, chunk_labels, fast
        self.queries = 0

    def begin(self, hist: dict[str, np.ndarray]) -> None:
        self.hist = hist
        self.h = {k: v[0] for k, v in hist.items()}
        self.a_exp: np.ndarray | None = None
        self.chunk: np.ndarray | None = None
        self.queried = False

    def _count(self) -> None:
        if not self.queried:
            self.queried, self.queries = True, self.queries + 1

    def expert_action(self) -> np.ndarray:
        """The expert's action here (one query)."""
        if self.a_exp is None:
            self._count()
            self.a_exp = self.labeler.act(self.env, self.h)
        return self.a_exp

    def label(self) -> np.ndarray:
        """The expert's action as the stored label: the first action of its chunk when chunks are
        labelled here (rolled from the saved simulator state), else its action."""
        if self.chunk_labels and not self.fast:
            if self.chunk is None:
                self._count()
                self.chunk = self.labeler.chunk(self.env, self.h)
                self.a_exp = self.chunk[0]
            return self.a_exp
        return self.expert_action()

    def learner_action(self) -> np.ndarray:
        """The learner's next executed action (its executor's queue advances)."""
        return self.learner.act(self.hist)[0]

    def fresh_learner_action(self) -> np.ndarray:
        """The learner's first action of a freshly predicted chunk (its queue untouched)."""
        p = self.policy
        obs = {k: v[None, -p.obs_horizon :] for k, v in self.h.items() if k in p.obs_spec}
        return p.predict_chunk(obs, generator=self.generator)[0, 0]


@dataclass
class ExpertActs:
    """The expert drives, plus Gaussian noise of std ``noise`` (a scalar) or ``noise @ z`` (a
    factor (A, A) of the covariance: DART's correlated noise); every step is labelled with the
    expert's clean action."""

    noise: float | np.ndarray | None = None
    record: dict[str, Any] = field(default_factory=dict)  # what the ledger shows (noise std)
    needs_learner = False

    def reset(self) -> None:
        pass

    def step(self, ctx: StepContext) -> tuple[np.ndarray, bool, bool]:
        a = ctx.label()
        if self.noise is not None:
            z = ctx.rng.standard_normal(a.shape[0])
            a = a + (self.noise @ z if np.ndim(self.noise) == 2 else self.noise * z)
        return a, True, True


@dataclass
class Mixture:
    """DAgger: the expert's action with probability ``beta``, else the learner's; every visited
    state is labelled by the expert."""

    beta: float
    record: dict[str, Any] = field(default_factory=dict)
    needs_learner = True

    def reset(self) -> None:
        pass

    def step(self, ctx: StepContext) -> tuple[np.ndarray, bool, bool]:
        a_exp = ctx.label()
        a_learn = ctx.learner_action()  # the learner's queue advances every step, whoever acts
        by_expert = bool(ctx.rng.random() < self.beta)
        return (a_exp if by_expert else a_learn), by_expert, True


@dataclass
class Gated:
    """HG-DAgger: the learner drives until it strays more than ``threshold`` from the expert,
    then the expert until the learner agrees within ``release * threshold`` again, for at least
    ``min_takeover`` steps. Only the takeover stretches are labelled."""

    threshold: float
    release: float
    min_takeover: int
    record: dict[str, Any] = field(default_factory=dict)
    needs_learner = True

    def reset(self) -> None:
        self.on, self.taken = False, 0

    def step(self, ctx: StepContext) -> tuple[np.ndarray, bool, bool]:
        a_exp = ctx.expert_action()
        handback = self.on and self.taken >= self.min_takeover
        if handback and np.linalg.norm(ctx.fresh_learner_action() - a_exp) < self.release * self.threshold:
            self.on = False
            ctx.learner.reset()
        if not self.on:
            a_learn = ctx.learner_action()
            if np.linalg.norm(a_learn - a_exp) > self.threshold:
                self.on, self.taken = True, 0
        if not self.on:
            return a_learn, False, False
        self.taken += 1
        return ctx.label(), True, True


class LabellingDriver:
    """Adapts a strategy to the rollout loop (one env) and records its labelled stretches."""

    def __init__(self, task, env, labeler, strategy, ctx: StepContext):
        self.lo, self.hi = task.spec.action_low, task.spec.action_high
        self.env, self.labeler, self.strategy, self.ctx = env, labeler, strategy, ctx
        self.segments: list[dict[str, list]] = []
        self.seg: dict[str, list] | None = None

    def reset(self) -> None:
        self.labeler.reset(self.env)
        self.strategy.reset()
        if self.ctx.learner is not None:
            self.ctx.learner.reset()

    def act(self, hist: dict[str, np.ndarray]) -> np.ndarray:
        ctx = self.ctx
        ctx.begin(hist)
        a, by_expert, labelled = self.strategy.step(ctx)
        a = np.clip(a, self.lo, self.hi).astype(np.float32)  # what the env executes (a regressor may ask for more)
        if labelled:
            if self.seg is None:
                extra = [CHUNK_KEY] if ctx.chunk is not None else []
                self.seg = {k: [] for k in [*hist, "action", "exec_action", "expert_acted", *extra]}
                self.segments.append(self.seg)
            for k, v in ctx.h.items():
                self.seg[k].append(v[-1])
            self.seg["action"].append(ctx.a_exp)
            self.seg["exec_action"].append(a)
            self.seg["expert_acted"].append(np.uint8(by_expert))
            if ctx.chunk is not None:
                self.seg[CHUNK_KEY].append(ctx.chunk)
        else:
            self.seg = None
        return a[None]


def run_episode(
    task,
    env,
    labeler,
    seed: int,
    strategy,
    rng: np.random.Generator,
    chunk_labels: bool,
    policy=None,
    exec_cfg: dict | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Roll one episode of ``strategy`` on ``env`` through the rollout loop; return the labelled
    stretches to store and what it cost (success, env steps, expert queries, labels, simulator
    steps spent on chunk labels)."""
    from robolearn.errors import ConfigError
    from robolearn.execution import build_executor

    if strategy.needs_learner and policy is None:
        raise ConfigError(f"{type(strategy).__name__} needs a learner policy")
    learner = None
    if policy is not None:
        learner = LastFrames(build_executor(exec_cfg, policy, 1, generator=generator), policy.obs_horizon)
    # an undisturbed scripted expert: its chunk at t is its own next H actions, read off afterwards
    fast = (
        chunk_labels
        and isinstance(strategy, ExpertActs)
        and strategy.noise is None
        and isinstance(labeler, ScriptedLabeler)
    )
    ctx = StepContext(env, labeler, learner, policy, generator, rng, chunk_labels, fast)
    driver = LabellingDriver(task, env, labeler, strategy, ctx)
    sim0 = labeler.sim_steps
    to = max(labeler.obs_horizon, policy.obs_horizon if policy else 1)
    (rec,) = rollout(lambda n, w: driver, task, 1, 1, seed, to, progress=False, venv=EnvBatch([env]))
    out = [{k: np.stack(v) for k, v in s.items()} for s in driver.segments]
    if fast and out:
        acts = out[0]["action"]
        tail = labeler.chunk(env, None, labeler.horizon - 1) if labeler.horizon > 1 else acts[:0]
        full = np.concatenate([acts, tail])
        out[0][CHUNK_KEY] = np.stack([full[t : t + labeler.horizon] for t in range(len(acts))])
    stats = {
        "success": rec["success"],
        "env_steps": rec["length"],
        "queries": ctx.queries,
        "labels": int(sum(len(s["action"]) for s in out)),
        "label_sim_steps": labeler.sim_steps - sim0,
        "max_score": rec["max_score"],
    }
    return out, stats
