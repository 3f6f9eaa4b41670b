"""Closed-loop evaluation during training: the plan (validated settings), one evaluation of the
EMA weights, the summary (best and mean of the last k) and the plot against step and wall-clock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.atomic import atomic_path
from robolearn.config import to_dict
from robolearn.errors import ConfigError
from robolearn.policy import ChunkPolicy
from robolearn.train.data import make_task_from


def eval_plan(cfg) -> dict[str, Any] | None:
    """Validated settings of the evaluations during training, or None when off."""
    algo, steps = cfg.algo, cfg.algo.steps
    every = algo.eval_every
    if every is None:
        return None
    if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
        raise ConfigError(f"algo.eval_every: expected a positive number of steps (or null = off), found {every!r}")
    if isinstance(steps, int) and every > steps:
        raise ConfigError(f"algo.eval_every: expected <= algo.steps={steps} (no evaluation would run), found {every}")
    k = algo.eval_last_k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"algo.eval_last_k: expected a positive int, found {k!r}")
    ev = cfg.eval
    episodes = ev.episodes
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"eval.episodes: expected a positive int, found {episodes!r}")
    workers = ev.workers
    if not (workers == "auto" or (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 0)):
        raise ConfigError(f"eval.workers: expected 'auto' or an int >= 0, found {workers!r}")
    return {
        "every": every,
        "last_k": k,
        "episodes": episodes,
        "n_envs": int(ev.n_envs),
        "seed_start": int(ev.seed_start),
        "workers": workers,
        "action_noise": float(ev.action_noise),
        "task": make_task_from(cfg),
        "exec": to_dict(cfg.exec),
    }


def eval_workers(setting) -> int:
    """``auto``: worker processes only when more than one core is free (the load average says
    how many are taken, this process included), else in-process (0)."""
    if setting != "auto":
        return int(setting)
    import os

    from robolearn.eval.workers import free_cores

    idle = free_cores() - int(round(os.getloadavg()[0]))
    return idle + 1 if idle >= 1 else 0


def evaluate_during_training(ema: ChunkPolicy, plan: dict[str, Any], dist=None) -> dict[str, float]:
    """One closed-loop evaluation of the EMA weights (its waves split over the ranks of a
    distributed run); the global RNG is left as it was, so a run with evaluations trains exactly
    like one without. Returns the metrics on rank 0, {} elsewhere."""
    from robolearn.eval.rollout import evaluate_policy

    state = torch.get_rng_state()
    t = time.time()
    m = evaluate_policy(
        ema,
        plan["task"],
        plan["exec"],
        None,
        n_episodes=plan["episodes"],
        n_envs=plan["n_envs"],
        seed_start=plan["seed_start"],
        progress=False,
        workers=eval_workers(plan["workers"]),
        dist=dist,
        action_noise=plan["action_noise"],
    )
    torch.set_rng_state(state)
    if m is None:
        return {}
    return {
        "eval_score": m["mean_max_score"],
        "eval_success": m["success_rate"],
        "eval_success_ci95": m["success_ci95"],
        "eval_episodes": m["episodes"],
        "eval_s": time.time() - t,
    }


def eval_summary(history: list[dict[str, Any]], last_k: int) -> dict[str, Any]:
    """The protocol's numbers from the evaluation rows: the best evaluation (by score, then
    success) and the mean of the last ``last_k``."""
    rows = [h for h in history if "eval_score" in h]
    if not rows:
        return {"n_evals": 0}
    best = max(rows, key=lambda h: (h["eval_score"], h["eval_success"]))
    last = rows[-last_k:]
    return {
        "n_evals": len(rows),
        "episodes": rows[-1]["eval_episodes"],
        "best_score": best["eval_score"],
        "best_success": best["eval_success"],
        "best_step": best["step"],
        "last_k": len(last),
        "mean_last_k_score": float(np.mean([h["eval_score"] for h in last])),
        "mean_last_k_success": float(np.mean([h["eval_success"] for h in last])),
        "final_score": rows[-1]["eval_score"],
        "final_success": rows[-1]["eval_success"],
        "eval_seconds": float(sum(h["eval_s"] for h in rows)),
    }


def plot_evals(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Score and success of the evaluations against step and against training wall-clock."""
    rows = [h for h in history if "eval_score" in h]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, key, label in ((axes[0], "step", "training step"), (axes[1], "train_s", "training wall-clock (min)")):
        x = np.array([h[key] for h in rows], dtype=float) / (60.0 if key == "train_s" else 1.0)
        ax.plot(x, [h["eval_score"] for h in rows], "o-", label="mean max score")
        ax.plot(x, [h["eval_success"] for h in rows], "s-", label="success rate")
        ax.set_xlabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{title}: {rows[-1]['eval_episodes']} evaluation episodes each (EMA weights)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
