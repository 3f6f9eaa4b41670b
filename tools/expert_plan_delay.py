"""The scripted expert's own plans executed under inference delay: what a perfect chunked model
would score with naive async, and with exact inpainting (what RTC approximates).

    python tools/expert_plan_delay.py [--task catch_multimodal] [--episodes 100] [--noise 0,0.1] \
        [--cells 0,1 1,1 1,2 2,2 3,3 4,4]

Each chunk is the expert's plan from the simulator's true state at the request (the expert
rolled H steps noise-free, then the simulator restored), run through robolearn's chunk schedule
(request every s steps, usable d steps later, its first d actions skipped):

- ``naive``: the plan assumes the expert's own actions for the d steps of waiting, while the
  robot executes the previous chunk's (naive async with a perfect model);
- ``exact``: the plan first replays the d actions the previous chunk still has pending (what
  will really be executed), then the expert from the state they lead to: inpainting with a hard
  mask done exactly, which is what RTC asks of a learned model;
- ``mean`` (``--mean-of M``): the mean over M rollouts of the expert's clean actions while the
  simulator executes them plus the collection noise: what a model trained on demonstrations
  collected with that noise and clean labels (DART's convention) estimates, E[a_{t+k} | s_t].

Episodes use seeds 1000.. (disjoint from collection and evaluation); the execution noise (std
of the half action range) of episode i is drawn from its own generator, so both kinds of plan
see the same initial states and the same noise draws, and their difference is paired."""

from __future__ import annotations

import argparse

import numpy as np

from robolearn.algos.labelers import ScriptedLabeler
from robolearn.config import compose
from robolearn.eval.metrics import wilson_interval
from robolearn.execution.delay import ChunkSchedule
from robolearn.execution.realtime import pending_prefix
from robolearn.train.data import make_task_from


class _Shape:
    """What the chunk schedule reads of a policy: its chunk length and action size."""

    def __init__(self, horizon: int, action_dim: int):
        self.horizon, self.action_dim, self.n_action_steps = horizon, action_dim, 1


class ExpertPlanSchedule(ChunkSchedule):
    """Chunks from the expert acting in ``env`` (one env), planned from its true state."""

    def __init__(self, task, env, labeler: ScriptedLabeler, horizon: int, s: int, d: int, exact: bool,
                 mean_of: int = 0, noise: float = 0.1, seed: int = 0):  # fmt: skip
        self.task, self.env, self.labeler, self.exact = task, env, labeler, exact
        self.mean_of, self.noise, self.rng = mean_of, noise, np.random.default_rng(seed)
        super().__init__(_Shape(horizon, task.spec.action_dim), 1, s=s, delay=d)

    def _noisy_mean(self) -> np.ndarray:
        """Mean of ``mean_of`` rollouts: clean expert actions recorded, noisy ones executed."""
        lo, hi = self.task.spec.action_low, self.task.spec.action_high
        state, out = self.task.get_state(self.env), np.zeros((self.mean_of, self.H, self.A), np.float32)
        try:
            for m in range(self.mean_of):
                self.task.set_state(self.env, state)
                for k in range(self.H):
                    out[m, k] = a = self.labeler.act(self.env)
                    a = np.clip(a + self.noise * (hi - lo) / 2 * self.rng.standard_normal(a.shape), lo, hi)
                    if any(self.env.step(a)[2:4]):  # the episode ended: its last label stands for the rest
                        out[m, k + 1 :] = out[m, k]
                        break
        finally:
            self.task.set_state(self.env, state)
        return out.mean(0)[None]

    def _request(self, obs, idx, first):
        if self.mean_of:
            return self._noisy_mean()
        if first or not self.exact or self.d == 0:
            return self.labeler.chunk(self.env)[None]
        k = self.t[0] // self.s
        pending = pending_prefix(self.buf[:, (k - 1) % self.ring], self.s)[0, : self.d]
        state = self.task.get_state(self.env)
        try:
            for a in pending:  # what the robot will really do while this chunk is computed
                self.env.step(a)
            rest = self.labeler.chunk(self.env, n=self.H - self.d)
        finally:
            self.task.set_state(self.env, state)
        return np.concatenate([pending, rest])[None]


def plan_success(
    task,
    episodes: int,
    noise: float,
    d: int,
    s: int,
    exact: bool,
    horizon: int = 8,
    mean_of: int = 0,
    collect_noise: float = 0.1,
) -> np.ndarray:
    """(episodes,) bool: the expert's plans under delay d, executed s per chunk (``mean_of`` > 0:
    the mean of that many rollouts with ``collect_noise``, see ``ExpertPlanSchedule``)."""
    env = task.make_env()
    labeler = ScriptedLabeler(task, horizon)
    lo, hi = task.spec.action_low, task.spec.action_high
    ok = np.zeros(episodes, bool)
    try:
        for i in range(episodes):
            rng = np.random.default_rng(i)
            obs, _ = env.reset(seed=1000 + i)
            labeler.reset(env)
            ex = ExpertPlanSchedule(task, env, labeler, horizon, s, d, exact, mean_of, collect_noise, seed=i)
            while True:
                a = ex.act({k: v[None] for k, v in obs.items()})[0]
                a = np.clip(a + noise * (hi - lo) / 2 * rng.standard_normal(a.shape), lo, hi)
                obs, _, term, trunc, info = env.step(a)
                if term or trunc:
                    break
            ok[i] = bool(info["is_success"])
    finally:
        env.close()
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="catch_multimodal")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--noise", default="0,0.1")
    p.add_argument("--cells", nargs="+", default=["0,1", "1,1", "1,2", "2,2", "3,3", "4,4"], help="d,s pairs")
    p.add_argument("--horizon", type=int, default=8)
    p.add_argument("--mean-of", type=int, default=0, help="also the mean of M noisy rollouts (0: not run)")
    a = p.parse_args()
    task = make_task_from(compose([f"task={a.task}"]))
    cells = [tuple(int(x) for x in c.split(",")) for c in a.cells]
    n = a.episodes
    mean_col = f" mean of {a.mean_of} noisy rollouts [95% CI] |" if a.mean_of else ""
    head = "| task | noise | (d, s) | naive [95% CI] | exact inpainting [95% CI] | exact - naive |"
    print(head + " episodes only naive / only exact succeeds |" + mean_col)
    print("|---|---|---|---|---|---|---|" + ("---|" if a.mean_of else ""))
    for noise in (float(x) for x in a.noise.split(",")):
        for d, s in cells:
            naive = plan_success(task, n, noise, d, s, False, a.horizon)
            exact = plan_success(task, n, noise, d, s, True, a.horizon)
            ci = [wilson_interval(int(x.sum()), n) for x in (naive, exact)]
            mean = ""
            if a.mean_of:
                m = plan_success(task, n, noise, d, s, False, a.horizon, a.mean_of)
                lo, hi = wilson_interval(int(m.sum()), n)
                mean = f" {m.mean():.2f} [{lo:.2f}, {hi:.2f}] |"
            print(
                f"| {a.task} | {noise:g} | ({d}, {s}) | {naive.mean():.2f} [{ci[0][0]:.2f}, {ci[0][1]:.2f}] | "
                f"{exact.mean():.2f} [{ci[1][0]:.2f}, {ci[1][1]:.2f}] | {exact.mean() - naive.mean():+.2f} | "
                f"{int((naive & ~exact).sum())} / {int((exact & ~naive).sum())} |" + mean,
                flush=True,
            )


if __name__ == "__main__":
    main()
