"""One checkpoint's executors against inference delay (``robolearn eval --delays``): success and
smoothness, one line per executor.

The question behind real-time chunking: when the policy is slow compared with the control
rate, how much success and smoothness does each way of executing chunks lose? Every
(executor, delay) pair is evaluated on the same seeds with the same generator seed, so the
pairs differ only in how chunks are executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robolearn.atomic import write_json
from robolearn.eval.metrics import summarize
from robolearn.eval.rollout import rollout, wave_generator
from robolearn.execution import build_executor
from robolearn.experiments.report import sweep_plot


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
        sweep_plot(rows, out_dir / "delay_sweep.png")
    return rows


def delay_sweep(
    run_or_ckpt: str | Path,
    delays: list[int],
    exec: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    episodes: int = 50,
    n_envs: int = 10,
    seed_start: int = 100_000,
    out: str | Path | None = None,
    action_noise: float = 0.0,
    max_steps: int | None = None,
) -> tuple[list[dict[str, Any]], Path]:
    """Every executor of ``exec`` (comma-separated) at every delay for a run or checkpoint, as
    ``robolearn eval --delays`` does: rows, and where the table and plot were written."""
    from robolearn.eval.api import (
        checkpoint_task,
        executor_configs,
        load_policy,
        out_dir,
        resolve_checkpoint,
        split_overrides,
    )

    ckpt = resolve_checkpoint(run_or_ckpt)
    head, exec_overrides = split_overrides(overrides)
    execs = executor_configs(ckpt, exec, exec_overrides)
    policy = load_policy(ckpt, head)
    task = checkpoint_task(policy, max_steps)
    where = out_dir(Path(out) if out else ckpt.parent.parent / "eval" / "delay_sweep")
    rows = sweep(
        policy,
        task,
        execs,
        delays,
        n_episodes=episodes,
        n_envs=n_envs,
        seed_start=seed_start,
        out_dir=where,
        action_noise=action_noise,
    )
    return rows, where
