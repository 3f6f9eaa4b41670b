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

from robolearn.algos.acting import ExpertActs, run_episode
from robolearn.algos.labelers import ScriptedLabeler
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError


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
    if task.expert() is None:
        raise ConfigError(f"task {task.spec.name!r} has no scripted expert; its demonstrations come from a dataset")
    labeler = ScriptedLabeler(task, horizon=1)
    strategy = ExpertActs(noise=float(noise) if noise > 0 else None)
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
            (ep,), st = run_episode(task, env, labeler, seed_start + i, strategy, rng, chunk_labels=False)
            ep.pop("expert_acted")  # always the expert here
            ok = st["success"]
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
