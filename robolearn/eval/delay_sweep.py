"""Success and smoothness as inference delay grows, one line per executor.

The question behind real-time chunking: when the policy is slow compared with the control
rate, how much success and smoothness does each way of executing chunks lose? Every
(executor, delay) pair is evaluated on the same seeds with the same generator seed, so the
pairs differ only in how chunks are executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robolearn.atomic import atomic_path, write_json
from robolearn.eval.metrics import summarize
from robolearn.eval.rollout import rollout, wave_generator
from robolearn.execution import build_executor


def _label(cfg: dict[str, Any]) -> str:
    opts = ",".join(
        f"{k}={v}" for k, v in cfg.items() if k not in ("name", "_name", "delay", "control_hz") and v is not None
    )
    name = cfg.get("name") or cfg.get("_name") or "receding"
    return f"{name}({opts})" if opts else name


def sweep(
    policy,
    task,
    executors: list[dict[str, Any]],
    delays: list[int],
    n_episodes: int = 50,
    n_envs: int = 10,
    seed_start: int = 100_000,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    action_noise: float = 0.0,
) -> list[dict[str, Any]]:
    """One row per (executor, delay): success stats plus mean jerk, boundary jump and step change.

    ``executors``: exec configs (as in ``configs/exec``; an optional ``label`` names the line).
    Every combination is validated before the first rollout, so a bad one (say rtc with
    s < delay) fails at once. With ``out_dir``: ``delay_sweep.json`` and ``delay_sweep.png``."""

    plan = []
    for cfg in executors:
        cfg = dict(cfg)
        label = cfg.pop("label", None) or _label(cfg)
        for d in delays:
            c = {**cfg, "delay": d}
            build_executor(c, policy, max(1, min(n_envs, n_episodes)))  # validates, requests nothing
            plan.append((label, d, c))
    rows = []
    for label, d, c in plan:
        records = rollout(
            lambda n, w, c=c: build_executor(c, policy, n, generator=wave_generator(policy, seed, w)),
            task,
            n_episodes,
            n_envs,
            seed_start,
            policy.obs_horizon,
            progress=progress,
            desc=f"{label} d={d}",
            action_noise=action_noise,
            noise_seed=seed,
        )
        rows.append({"executor": label, "delay": d, **summarize(records)})
    if out_dir:
        out_dir = Path(out_dir)
        write_json(
            {
                "rows": rows,
                "executors": executors,
                "delays": list(delays),
                "episodes": n_episodes,
                "seed_start": seed_start,
                "action_noise": action_noise,
            },
            out_dir / "delay_sweep.json",
        )
        plot_sweep(rows, out_dir / "delay_sweep.png")
    return rows


def plot_sweep(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Success (with 95% Wilson interval), mean |jerk| and boundary jump against delay; plus the
    mean max score when the task has a graded score (Push-T coverage) rather than 0/1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graded = any(abs(r["mean_max_score"] - r["success_rate"]) > 1e-9 for r in rows)
    panels = (
        [("success", "success rate (95% CI)")]
        + ([("score", "mean max score")] if graded else [])
        + [("mean_abs_jerk", "mean |jerk| of actions"), ("boundary_jump", "jump at chunk switches")]
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8))
    labels = list(dict.fromkeys(r["executor"] for r in rows))
    styles = ["-", "--", ":", "-."]  # identical executors (receding vs naive_async) stay visible
    for j, label in enumerate(labels):
        rs = sorted((r for r in rows if r["executor"] == label), key=lambda r: r["delay"])
        d = np.array([r["delay"] for r in rs], dtype=float)
        p = np.array([r["success_rate"] for r in rs])
        ci = np.array([r["success_ci95"] for r in rs])
        kw = dict(marker="os^Dv"[j % 5], linestyle=styles[j % 4], label=label)
        dx = (j - (len(labels) - 1) / 2) * 0.05  # side by side, so the intervals do not hide each other
        axes[0].errorbar(d + dx, p, yerr=[p - ci[:, 0], ci[:, 1] - p], capsize=3, **kw)
        for ax, (key, _) in zip(axes[1:], panels[1:]):
            ax.plot(d, [r["mean_max_score" if key == "score" else key] for r in rs], **kw)
    delays = sorted({r["delay"] for r in rows})
    for ax, (_, title) in zip(axes, panels):
        ax.set_xticks(delays)
        ax.set_xlabel("inference delay (env steps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    if graded:
        axes[1].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
