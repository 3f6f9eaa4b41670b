"""Collect expert demonstrations into a zarr dataset.

With ``noise > 0`` this is DART's collection mode: the env executes expert action + Gaussian
noise, so the data visits states slightly off the expert's path, while the recorded label
(``action``) stays the clean expert action for the state actually visited. The executed
action is kept too (``exec_action``) so nothing about the run is lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError


def run_expert_episode(
    task, env, expert, seed: int, noise: float | np.ndarray, rng: np.random.Generator, stop_on_success: bool = True
) -> tuple[dict[str, np.ndarray], bool, float]:
    """One episode of expert (+ noise) control. Returns (episode arrays, success, max score)."""
    obs, info = env.reset(seed=seed)
    expert.reset(env)
    lo, hi = task.spec.action_low, task.spec.action_high
    steps: dict[str, list] = {k: [] for k in obs}
    steps["action"], steps["exec_action"] = [], []
    success, max_score = False, -np.inf
    while True:
        a = np.asarray(expert.act(env), dtype=np.float32)
        executed = a
        if np.any(np.asarray(noise) > 0):
            executed = np.clip(a + rng.normal(size=a.shape) * noise, lo, hi).astype(np.float32)
        for k, v in obs.items():
            steps[k].append(v)
        steps["action"].append(a)
        steps["exec_action"].append(executed)
        obs, _, term, trunc, info = env.step(executed)
        max_score = max(max_score, float(info.get("score", 0.0)))
        success = success or bool(info.get("is_success", False))
        if term or trunc or (success and stop_on_success):
            break
    return {k: np.stack(v) for k, v in steps.items()}, success, max_score


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
) -> dict:
    """Run the task's expert for ``n_episodes`` seeded episodes and write them to ``out``.

    Failed expert episodes are dropped unless ``keep_failures`` (they are still counted)."""
    expert = task.expert()
    if expert is None:
        raise ConfigError(f"task {task.spec.name!r} has no scripted expert; its demonstrations come from a dataset")
    if n_episodes < 1:
        raise ConfigError(f"--episodes: expected >= 1, got {n_episodes}")
    out = Path(out)
    buf = ReplayBuffer.open(out, mode="a") if append and out.exists() else ReplayBuffer.create(out, overwrite=overwrite)
    # the store says what it holds from its first moment, and stays current episode by episode:
    # a collection killed at any point leaves its attributes as true as its episodes
    meta = {"task": task.spec.name, "source": "scripted expert", "noise": float(noise), "seed_start": seed_start}
    buf.attrs.update({**meta, "episodes_run": 0})
    env = task.make_env()
    rng = np.random.default_rng(seed_start + 7919)
    n_succ = n_kept = n_steps = 0
    bar = tqdm(range(n_episodes), desc=f"collect {task.spec.name}", disable=not progress, dynamic_ncols=True)
    try:
        for i in bar:
            ep, ok, _ = run_expert_episode(task, env, expert, seed_start + i, noise, rng)
            n_succ += ok
            # counted before it is written: a kill between the two leaves episodes_run one ahead of the
            # episodes stored (an episode that ran and was lost), never behind them
            buf.attrs.update({**meta, "episodes_run": i + 1})
            if ok or keep_failures:
                buf.add_episode(ep)
                n_kept += 1
                n_steps += len(ep["action"])
            bar.set_postfix(success=f"{n_succ / (i + 1):.2f}")
    finally:
        env.close()
        buf.close()
    return {
        "task": task.spec.name,
        "path": str(out),
        "episodes_run": n_episodes,
        "expert_success": n_succ / n_episodes,
        "episodes_kept": n_kept,
        "steps_kept": n_steps,
        "noise": float(noise),
    }
