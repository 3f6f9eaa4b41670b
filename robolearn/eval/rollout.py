"""Closed-loop evaluation: batched policy inference over a gymnasium vector env.

Episodes run in waves of ``n_envs``; each env gets its own seed (``seed_start + episode``),
so results are reproducible and evaluation seeds never overlap data-collection seeds
(collection counts up from 0, evaluation from 100000). An episode ends when the env
terminates or truncates, or when the task reports success.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robolearn.atomic import write_json
from robolearn.errors import ConfigError
from robolearn.eval.env_batch import EnvBatch
from robolearn.eval.metrics import summarize
from robolearn.eval.smoothness import smoothness
from robolearn.eval.workers import ProcEnvBatch


class ObsHistory:
    """Stacks the last To observations per env; at reset the first frame is repeated,
    the same edge padding the training windows use."""

    def __init__(self, to: int):
        self.to = to
        self.buf: dict[str, np.ndarray] = {}

    def reset(self, obs: dict[str, np.ndarray], mask: np.ndarray | None = None) -> None:
        for k, v in obs.items():
            rep = np.repeat(v[:, None], self.to, axis=1)
            if mask is None or k not in self.buf:
                self.buf[k] = rep
            else:
                self.buf[k][mask] = rep[mask]

    def push(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for k, v in obs.items():
            self.buf[k] = np.concatenate([self.buf[k][:, 1:], v[:, None]], axis=1)
        return self.buf


def make_env_batch(task, n_envs: int, n_render: int = 0, workers: int = 0) -> EnvBatch | ProcEnvBatch:
    """In-process envs (``workers`` <= 1), or envs split over ``workers`` processes."""
    if workers > 1 and n_envs > 1:
        return ProcEnvBatch(task, n_envs, workers, n_render)
    return EnvBatch([task.make_env(render=i < n_render) for i in range(n_envs)])


def rollout(
    act_fn_factory: Callable[[int], Any],
    task,
    n_episodes: int,
    n_envs: int = 10,
    seed_start: int = 100_000,
    obs_horizon: int = 1,
    video_dir: str | Path | None = None,
    n_videos: int = 0,
    progress: bool = True,
    desc: str = "eval",
    on_step: Callable | None = None,
    workers: int = 0,
    waves: list[int] | None = None,
    venv: EnvBatch | None = None,
    action_noise: float = 0.0,
    noise_seed: int = 0,
) -> list[dict]:
    """Run ``n_episodes`` and return one record per episode.

    Episodes run in waves of ``n_envs`` (wave w: seeds ``seed_start + w * n_envs`` onwards);
    ``waves`` runs only those (a shard of a distributed evaluation). ``act_fn_factory(n, wave)``
    returns an object with ``reset()`` and ``act(obs_history) -> (n, A)``: an Executor around a
    policy, or an expert adapter; built per wave, so a wave's results never depend on which
    other waves ran before it in this process. ``on_step(venv, obs, actions, alive)``
    lets interactive algorithms (DAgger) see every visited state (in-process envs only).
    ``workers`` > 1 steps the envs in that many processes (same per-episode results). ``venv``: envs
    the caller made and keeps (this loop does not close them): collection and DAgger run one live env
    whose simulator state their labelers read between steps.

    ``action_noise`` > 0 perturbs every executed action with Gaussian noise of that std times half
    the action range, clipped to the range (execution noise, as in the RTC benchmark); the policy
    and the metrics see the commanded action, the env the perturbed one. Seeded by (``noise_seed``,
    first seed of the wave): the same episodes get the same noise whatever the executor, the
    number of processes or the waves that ran before.

    This is the one rollout loop of robolearn: evaluation drives it with an Executor, collection and
    the interactive algorithms with a ``robolearn.algos.acting.Driver`` (who acts, who labels, what
    noise, what is recorded).
    """
    n_envs = max(1, min(n_envs, n_episodes))
    n_videos = min(n_videos, n_envs) if video_dir else 0
    if on_step is not None:
        workers = 0  # on_step reads the live env objects
    if not (np.isfinite(action_noise) and action_noise >= 0):
        raise ConfigError(f"eval.action_noise: expected a finite number >= 0, found {action_noise}")
    half_range = (np.asarray(task.spec.action_high) - np.asarray(task.spec.action_low)) / 2
    owned = venv is None
    if owned:
        venv = make_env_batch(task, n_envs, n_render=n_videos, workers=workers)
    elif venv.num_envs != n_envs:
        raise ValueError(f"rollout: venv holds {venv.num_envs} envs, expected n_envs={n_envs}")
    hist = ObsHistory(obs_horizon)
    records: list[dict] = []
    all_waves = list(range(-(-n_episodes // n_envs)))
    waves = all_waves if waves is None else [w for w in all_waves if w in set(waves)]
    bar = tqdm(
        total=sum(min(n_envs, n_episodes - w * n_envs) for w in waves),
        desc=desc,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for wave in waves:
            wave_start = wave * n_envs
            n_live = min(n_envs, n_episodes - wave_start)
            seeds = [seed_start + wave_start + i for i in range(n_envs)]
            obs, info = venv.reset(seed=seeds)
            hist.reset(obs)
            noise_rng = np.random.default_rng([noise_seed, seeds[0]])
            actor = act_fn_factory(n_envs, wave)
            actor.reset()
            alive = np.arange(n_envs) < n_live
            max_score = np.full(n_envs, -np.inf)
            max_cov = np.full(n_envs, -np.inf)
            success = np.zeros(n_envs, bool)
            length = np.zeros(n_envs, int)
            actions_log: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
            switch_log: list[list[bool]] = [[] for _ in range(n_envs)]
            frames: list[list[np.ndarray]] = [[] for _ in range(n_videos)] if wave_start == 0 else []
            for i in range(len(frames)):
                frames[i].append(venv.render(i))
            while alive.any():
                act = np.asarray(actor.act(hist.buf), dtype=np.float32)
                switched = np.asarray(getattr(actor, "last_switch", np.zeros(n_envs, bool)), bool)
                if on_step is not None:
                    on_step(venv, hist.buf, act, alive.copy())
                executed = act
                if action_noise > 0:
                    z = noise_rng.standard_normal(act.shape)
                    executed = np.clip(act + action_noise * half_range * z, task.spec.action_low, task.spec.action_high)
                    executed = executed.astype(np.float32)
                obs, _, term, trunc, info = venv.step(executed, alive)
                hist.push(obs)
                for i in range(len(frames)):
                    if alive[i]:
                        frames[i].append(venv.render(i))
                score = np.asarray(info.get("score", np.zeros(n_envs)), dtype=float)
                succ = np.asarray(info.get("is_success", np.zeros(n_envs)), dtype=bool)
                for i in np.flatnonzero(alive):
                    actions_log[i].append(act[i])
                    switch_log[i].append(bool(switched[i]))
                max_score = np.where(alive, np.maximum(max_score, score), max_score)
                if "coverage" in info:
                    max_cov = np.where(alive, np.maximum(max_cov, np.asarray(info["coverage"], float)), max_cov)
                success |= alive & succ
                length += alive
                ended = alive & (term | trunc | succ)
                alive &= ~ended
            for i in range(n_live):
                acts = np.stack(actions_log[i]) if actions_log[i] else np.zeros((0, 1))
                records.append(
                    {
                        "seed": seeds[i],
                        "success": bool(success[i]),
                        "max_score": float(max_score[i]),
                        **({"max_coverage": float(max_cov[i])} if np.isfinite(max_cov[i]) else {}),
                        "length": int(length[i]),
                        **smoothness(acts, np.asarray(switch_log[i], bool)),
                    }
                )
            bar.update(n_live)
            bar.set_postfix(success=f"{np.mean([r['success'] for r in records]):.2f}")
            if frames and video_dir:
                for i, fr in enumerate(frames):
                    write_video(fr, Path(video_dir) / f"episode_{seeds[i]}.mp4", fps=task.spec.extra.get("fps", 10))
    finally:
        bar.close()
        if owned:
            venv.close()
    return records


def write_video(frames: list[np.ndarray], path: Path, fps: int = 10) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [f for f in frames if f is not None]
    if not frames:
        return
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)


def wave_generator(policy, seed: int, wave: int):
    """The sampling noise of one evaluation wave: seeded by (seed, wave), so any process that
    runs the wave draws the same noise."""
    import torch

    return torch.Generator(device=policy.device).manual_seed(seed * 1_000_003 + wave)


def evaluate_policy(
    policy,
    task,
    exec_cfg: dict | None,
    out_dir: str | Path | None,
    n_episodes: int = 50,
    n_envs: int = 10,
    seed_start: int = 100_000,
    n_videos: int = 0,
    progress: bool = True,
    seed: int = 0,
    workers: int = 0,
    dist=None,
    action_noise: float = 0.0,
) -> dict | None:
    """Roll a policy out through an executor; write metrics.json (and videos) to ``out_dir``.

    ``dist`` (a ``robolearn.train.dist.Dist`` of a torchrun launch) splits the waves over the
    ranks (wave w on rank w mod world) and gathers every episode on rank 0, which summarizes
    and writes; the per-episode results equal a single-process evaluation's. Other ranks get None."""
    from robolearn.execution import build_executor

    build_executor(exec_cfg, policy, max(1, min(n_envs, n_episodes)))  # bad options fail before any env starts
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    n_waves = -(-n_episodes // max(1, min(n_envs, n_episodes)))
    records = rollout(
        lambda n, w: build_executor(exec_cfg, policy, n, generator=wave_generator(policy, seed, w)),
        task,
        n_episodes,
        n_envs,
        seed_start,
        policy.obs_horizon,
        video_dir=(Path(out_dir) / "videos") if out_dir and rank == 0 else None,
        n_videos=n_videos,
        progress=progress and rank == 0,
        workers=workers,
        waves=[w for w in range(n_waves) if w % world == rank],
        action_noise=action_noise,
        noise_seed=seed,
    )
    if world > 1:
        shards = dist.gather(records)
        if shards is None:
            return None
        records = sorted((r for shard in shards for r in shard), key=lambda r: r["seed"])
    metrics = summarize(records)
    metrics["seed_start"] = seed_start
    metrics["max_steps"] = int(task.spec.max_steps)
    metrics["exec"] = exec_cfg
    metrics["head"] = dict(policy.cfg.get("head") or {})  # the head's options as sampled (robolearn eval head.*=)
    metrics["action_noise"] = action_noise
    path = getattr(policy, "path", None)  # the checkpoint evaluated (None for a policy built in memory)
    metrics["checkpoint"] = str(path) if path is not None else None
    if out_dir:
        write_json({"summary": metrics, "episodes": records}, Path(out_dir) / "metrics.json")
    return metrics
