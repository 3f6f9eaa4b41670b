"""What an interactive run cost and what it bought, round by round.

Interactive methods are compared at equal *expert effort*, not at equal rounds: every row of
``ledger.csv`` says how many expert labels the training set holds, how many times the expert
was consulted, how many env steps the runs took, and the success that bought. Two errors
explain the success: the learner's error on the expert's own states (off-policy, what BC
minimises) and on the states the learner itself visits (on-policy, what matters at test
time). Compounding error is the gap between the two.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.algos.acting import LastFrames
from robolearn.atomic import atomic_path
from robolearn.data.dataset import load_dataset
from robolearn.data.sampler import WindowSampler
from robolearn.eval.metrics import summarize
from robolearn.eval.rollout import rollout

COLUMNS = [
    "method",
    "seed",
    "round",
    "expert_labels",
    "expert_queries",
    "env_steps",
    "label_sim_steps",
    "dataset_episodes",
    "rollouts",
    "beta",
    "noise_std",
    "success_rate",
    "success_lo",
    "success_hi",
    "mean_max_score",
    "offpolicy_mse",
    "onpolicy_mse",
    "train_seconds",
]


# ---- the two errors ----------------------------------------------------------------------
@torch.no_grad()
def offpolicy_errors(
    policy, data_path: str | Path, bounds: tuple[np.ndarray, np.ndarray] | None = None, batch: int = 2048, seed: int = 0
) -> np.ndarray:
    """First predicted action minus the expert's action, on every step of a clean expert
    dataset (N, A). DART uses their covariance as the next round's noise. Predictions are
    clipped to ``bounds`` (the env clips them too): an extrapolating regressor's +-10 is an
    executed +-1, and the error should say what happens, not what was asked."""
    keys = list(policy.obs_spec)
    buf, arrays = load_dataset(data_path, keys, action_key="action")
    s = WindowSampler(arrays, buf.episode_ends, keys, "action", policy.obs_horizon, 1)
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    out = []
    for i in range(0, len(s), batch):
        b = s.sample(np.arange(i, min(len(s), i + batch)))
        out.append(_clip(policy.predict_chunk(b["obs"], generator=gen)[:, 0], bounds) - b["action"][:, 0])
    return np.concatenate(out)


def _clip(a: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    return a if bounds is None else np.clip(a, bounds[0], bounds[1])


@torch.no_grad()
def evaluate_with_errors(
    policy,
    task,
    labeler,
    exec_cfg: dict | None,
    n_episodes: int,
    n_envs: int,
    seed_start: int,
    seed: int = 0,
    progress: bool = False,
    action_noise: float = 0.0,
) -> tuple[dict, np.ndarray]:
    """Closed-loop success of the learner alone, plus its on-policy errors: at every state it
    visits, its fresh first action (clipped to the action bounds) minus the expert's action
    there (N, A)."""
    from robolearn.execution import build_executor

    gen = torch.Generator(device=policy.device).manual_seed(seed)
    to = max(policy.obs_horizon, labeler.obs_horizon)
    bounds = (task.spec.action_low, task.spec.action_high)
    errors: list[np.ndarray] = []

    def on_step(venv, obs, actions, alive):
        idx = np.flatnonzero(alive)
        mine = policy.predict_chunk({k: obs[k][idx, -policy.obs_horizon :] for k in policy.obs_spec}, generator=gen)
        theirs = np.stack([labeler.act(venv.envs[i], {k: v[i] for k, v in obs.items()}) for i in idx])
        errors.append(_clip(mine[:, 0], bounds) - theirs)

    def factory(n: int, wave: int):
        return LastFrames(build_executor(exec_cfg, policy, n, generator=gen), policy.obs_horizon)

    records = rollout(
        factory,
        task,
        n_episodes,
        n_envs,
        seed_start,
        to,
        progress=progress,
        desc="eval",
        on_step=on_step,
        action_noise=action_noise,
        noise_seed=seed,
    )
    return summarize(records), np.concatenate(errors) if errors else np.zeros((0, policy.action_dim))


def mse(errors: np.ndarray) -> float:
    return float(np.mean(np.square(errors))) if len(errors) else float("nan")


# ---- the ledger ----------------------------------------------------------------------------
def write_ledger(rows: list[dict[str, Any]], path: str | Path) -> None:
    """The whole table, rewritten atomically from the run's progress (so a resumed run never
    holds a duplicate or half-written row)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in COLUMNS})


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)


def read_ledgers(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        with Path(p).open() as f:
            for r in csv.DictReader(f):
                rows.append({k: _parse(v) for k, v in r.items()})
    return rows


def _parse(v: str) -> Any:
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def plot_ledgers(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Success vs expert labels, one line per method (mean over seeds, min-max band), and the
    off-/on-policy errors per round beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        rounds = sorted({r["round"] for r in mine})
        x, y, off, on = (
            _agg(mine, rounds, k) for k in ("expert_labels", "success_rate", "offpolicy_mse", "onpolicy_mse")
        )
        lo, hi = _agg(mine, rounds, "success_rate", np.min), _agg(mine, rounds, "success_rate", np.max)
        (line,) = ax.plot(x, y, "o-", label=m)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        ax2.plot(rounds, off, "o--", color=line.get_color(), label=f"{m} off-policy")
        ax2.plot(rounds, on, "s-", color=line.get_color(), label=f"{m} on-policy")
    ax.set_xlabel("expert labels in the training set")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax2.set_xlabel("round")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylabel("first-action MSE vs expert")
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def _agg(rows: list[dict], rounds: list[int], key: str, fn: Callable = np.nanmean) -> list[float]:
    out = []
    for k in rounds:
        vals = [r[key] for r in rows if r["round"] == k and r[key] is not None]
        out.append(float(fn(vals)) if vals else float("nan"))
    return out
