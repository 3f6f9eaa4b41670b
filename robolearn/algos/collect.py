"""Collect expert demonstrations into a zarr dataset.

With ``noise > 0`` this is DART's collection mode: the env executes expert action + Gaussian
noise, so the data visits states slightly off the expert's path, while the recorded label
(``action``) stays the clean expert action for the state actually visited. The executed
action is kept too (``exec_action``) so nothing about the run is lost.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from robolearn.algos.acting import ExpertActs, run_episode
from robolearn.algos.labelers import ScriptedLabeler
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError

MAX_TRIES_PER_KEPT = 20  # until_kept: give up after this many episodes per episode wanted


def _noisy_expert(noise: float) -> ExpertActs:
    """The expert's own actions, with Gaussian noise of std ``noise`` (half action ranges) added."""
    if not noise >= 0:
        raise ConfigError(f"--noise: expected a number >= 0 (std of the noise on executed actions), found {noise}")
    return ExpertActs(noise=float(noise) if noise > 0 else None)


def collect(
    task,
    n_episodes: int,
    out: str | Path,
    noise: float = 0.0,
    seed_start: int = 0,
    keep_failures: bool = False,
    overwrite: bool = False,
    append: bool = False,
    progress: bool = True,
    until_kept: bool = False,
) -> dict:
    """Run the task's expert for ``n_episodes`` seeded episodes and write them to ``out``.

    Failed expert episodes are dropped unless ``keep_failures`` (they are still counted). With
    ``until_kept``, ``n_episodes`` is the number of episodes to keep: seeds go on until that many
    succeeded (at most ``MAX_TRIES_PER_KEPT`` times as many episodes are run)."""
    if task.expert() is None:
        raise ConfigError(f"task {task.spec.name!r} has no scripted expert; its demonstrations come from a dataset")
    strategy = _noisy_expert(noise)
    labeler = ScriptedLabeler(task, horizon=1)
    if n_episodes < 1:
        raise ConfigError(f"--episodes: expected >= 1, got {n_episodes}")
    out = Path(out)
    buf = ReplayBuffer.open(out, mode="a") if append and out.exists() else ReplayBuffer.create(out, overwrite=overwrite)
    # the store says what it holds from its first moment, and stays current episode by episode:
    # a collection killed at any point leaves its attributes as true as its episodes. Each
    # collection (the first and every --append) is one entry of ``collections``, never overwritten.
    prior = dict(buf.attrs)
    if prior.get("task") not in (None, task.spec.name):
        buf.close()
        raise ConfigError(
            f"{out}: --append expected a dataset of task {task.spec.name!r}, found one of {prior.get('task')!r}"
        )
    runs = list(prior.get("collections") or [])
    if not runs and "episodes_run" in prior:  # written before collections were recorded: keep what it said
        runs = [{k: prior[k] for k in ("seed_start", "episodes_run", "noise") if k in prior}]
    done_before = sum(int(r.get("episodes_run", 0)) for r in runs)
    entry = {
        "seed_start": int(seed_start),
        "seed_end": int(seed_start),
        "episodes_run": 0,
        "episodes_kept": 0,
        "noise": float(noise),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    noises = {float(r.get("noise", noise)) for r in runs} | {float(noise)}

    def record(i: int) -> None:
        entry.update(seed_end=int(seed_start) + i, episodes_run=i, episodes_kept=n_kept)
        buf.attrs.update(
            {
                "task": task.spec.name,
                "source": "scripted expert",
                "noise": float(noise) if len(noises) == 1 else "mixed (see collections)",
                "seed_start": int(runs[0]["seed_start"]) if runs else int(seed_start),
                "episodes_run": done_before + i,
                "collections": [*runs, entry],
            }
        )

    n_kept = 0
    record(0)
    env = task.make_env()
    rng = np.random.default_rng(seed_start + 7919)
    n_succ = n_steps = 0
    n_run = n_episodes * MAX_TRIES_PER_KEPT if until_kept else n_episodes
    bar = tqdm(range(n_run), desc=f"collect {task.spec.name}", disable=not progress, dynamic_ncols=True)
    n_done = 0
    try:
        for i in bar:
            if until_kept and n_kept >= n_episodes:
                break
            (ep,), st = run_episode(task, env, labeler, seed_start + i, strategy, rng, chunk_labels=False)
            ep.pop("expert_acted")  # always the expert here
            ok = st["success"]
            n_succ += ok
            n_done = i + 1
            # counted before it is written: a kill between the two leaves episodes_run one ahead of the
            # episodes stored (an episode that ran and was lost), never behind them
            record(i + 1)
            if ok or keep_failures:
                buf.add_episode(ep)
                n_kept += 1
                n_steps += len(ep["action"])
                record(i + 1)  # episodes_kept: never ahead of the episodes stored
            bar.set_postfix(success=f"{n_succ / (i + 1):.2f}")
    finally:
        env.close()
        buf.close()
    if until_kept and n_kept < n_episodes:
        print(
            f"collect {task.spec.name}: kept {n_kept} of the {n_episodes} episodes wanted after {n_done} tries "
            f"(expert success {n_succ / max(n_done, 1):.1%})",
            file=sys.stderr,
        )
    return {
        "task": task.spec.name,
        "path": str(out),
        "episodes_run": n_done,
        "expert_success": n_succ / max(n_done, 1),
        "episodes_kept": n_kept,
        "steps_kept": n_steps,
        "noise": float(noise),
    }


def audit_expert(task, n_episodes: int = 50, noise: float = 0.0, seed_start: int = 0) -> dict:
    """The scripted expert's success on ``n_episodes`` seeded episodes, executing its actions plus
    Gaussian noise of std ``noise`` (DART's collection noise); nothing is written."""
    from robolearn.eval.metrics import wilson_interval

    if task.expert() is None:
        raise ConfigError(f"task {task.spec.name!r} has no scripted expert to audit")
    strategy = _noisy_expert(noise)
    labeler = ScriptedLabeler(task, horizon=1)
    rng = np.random.default_rng(seed_start + 7919)
    env = task.make_env()
    wins, lengths = 0, []
    try:
        for i in range(n_episodes):
            _, st = run_episode(task, env, labeler, seed_start + i, strategy, rng, chunk_labels=False)
            wins += bool(st["success"])
            lengths.append(int(st["env_steps"]))
    finally:
        env.close()
    lo, hi = wilson_interval(wins, n_episodes)
    return {"task": task.spec.name, "noise": float(noise), "episodes": n_episodes, "successes": wins,
            "success": wins / n_episodes, "success_ci95": [lo, hi], "mean_length": float(np.mean(lengths))}  # fmt: skip
