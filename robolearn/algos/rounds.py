"""Rounds of collection and retraining, shared by BC-in-rounds, DART, DAgger and HG-DAgger.

Round 0 is BC on expert demonstrations. Each later round rolls out whatever the algorithm's
plan says drives (``plan(r, history, algo)`` returns a strategy of ``robolearn.algos.acting``),
labels what it should with the expert, appends the labelled stretches to the run's dataset (a
zarr that only ever grows) and retrains; every round is evaluated and its cost written to the
ledger (``robolearn.algos.accounting``). Chunk labels are stored as ``action_chunk`` (T, H, A)
next to the per-step label ``action`` = chunk[:, 0]; ``algo.chunk_key`` makes the trainer fit
the stored chunk.

Faults: an episode becomes visible in the dataset only when complete (ReplayBuffer), the
trainer resumes from its own checkpoint, and ``progress.json`` is rewritten atomically after
each finished round. A killed run, started again with the same arguments, keeps the data of
the interrupted round (tagged with ``round`` and ``rollout`` ids), collects only what is
missing, and continues from the last completed round.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from robolearn.algos.accounting import evaluate_with_errors, mse, offpolicy_errors, plot_ledgers, write_ledger
from robolearn.algos.acting import CHUNK_KEY, ExpertActs, run_episode
from robolearn.algos.labelers import make_labeler
from robolearn.atomic import write_json
from robolearn.config import save_config
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError, DataError
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import DataBundle, make_task_from, pick_device, train

HELDOUT_SEED = 500_000  # clean expert episodes for the off-policy error (eval uses 100_000+)
ROUND_STRIDE = 100_000  # rollout id = round * ROUND_STRIDE + index within the round


def demos_only(r: int, history: list[dict], algo) -> ExpertActs:
    """BC in rounds (``algo.name=bc``, the equal-budget baseline), and every algorithm's round 0:
    clean expert demonstrations."""
    return ExpertActs()


def _stored(buf: ReplayBuffer) -> dict[int, tuple[int, int]]:
    """Rollout id -> (round, labels stored) for everything already in the dataset."""
    if buf.n_episodes == 0:
        return {}
    d = buf.load(["rollout", "round"])
    ids, first, counts = np.unique(d["rollout"], return_index=True, return_counts=True)
    return {int(g): (int(d["round"][i]), int(n)) for g, i, n in zip(ids, first, counts)}


def collect_round(
    task,
    labeler,
    buf: ReplayBuffer,
    r: int,
    strategy,
    *,
    n_rollouts: int,
    label_budget: int | None,
    max_rollouts: int,
    seed: int,
    chunk_labels: bool,
    keep_failures: bool,
    sidecar: Path,
    policy: ChunkPolicy | None = None,
    exec_cfg: dict | None = None,
    progress: bool = True,
) -> dict:
    """Run round ``r``'s rollouts, appending each one's labelled stretches as episodes.

    Stops after ``n_rollouts`` or, with ``label_budget``, once the round has added that many
    labels (at most ``max_rollouts``). Rollouts already in the dataset or in ``sidecar`` (the
    per-rollout cost log) are skipped, so a resumed round only collects what is missing. A
    rollout stored but not logged (killed in between) is logged from its stored steps."""
    stored = {g: n for g, (rr, n) in _stored(buf).items() if rr == r}
    log: dict[str, dict] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    for g, n in stored.items():  # killed between add_episode and the log write: rebuild what we can
        log.setdefault(
            str(g),
            {"success": None, "env_steps": n, "queries": n, "labels": n, "label_sim_steps": 0, "reconstructed": True},
        )
    done = {int(k) for k in log}
    labels = sum(stored.values())
    env = task.make_env()
    total = label_budget if label_budget else n_rollouts
    bar = tqdm(
        total=total,
        initial=min(labels, total) if label_budget else len(done),
        desc=f"round {r} ({type(strategy).__name__})",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for k in range(max_rollouts if label_budget else n_rollouts):
            if label_budget and labels >= label_budget:
                break
            g = r * ROUND_STRIDE + k
            if g in done:
                continue
            # per-rollout randomness, so a resumed round draws what an uninterrupted one would
            rng, before = np.random.default_rng([seed, g]), labels
            gen = torch.Generator(device=policy.device).manual_seed(_env_seed(seed, g)) if policy else None
            segs, st = run_episode(
                task, env, labeler, _env_seed(seed, g), strategy, rng, chunk_labels, policy, exec_cfg, gen
            )
            kept = st["success"] or keep_failures
            for s in segs if kept else []:
                if label_budget:  # exact budgets: the last rollout contributes only what fits
                    s = {key: v[: label_budget - labels] for key, v in s.items()}
                n = len(s["action"])
                if n == 0:
                    break
                buf.add_episode({**s, "round": np.full(n, r, np.int32), "rollout": np.full(n, g, np.int64)})
                labels += n
            log[str(g)] = {**st, "labels": labels - before}
            write_json(log, sidecar)
            bar.update(labels - before if label_budget else 1)
    finally:
        bar.close()
        env.close()
    mine = [v for k, v in log.items() if int(k) // ROUND_STRIDE == r]
    return {
        "rollouts": len(mine),
        "labels": labels,
        **{k: int(sum(v[k] for v in mine)) for k in ("env_steps", "queries", "label_sim_steps")},
        "rollout_success": float(np.mean([v["success"] for v in mine if v["success"] is not None] or [np.nan])),
    }


def _env_seed(seed: int, g: int) -> int:
    """Collection seeds: disjoint from evaluation (100_000+) and held-out (500_000+) seeds."""
    return 10_000_000 * (seed + 1) + g


def ensure_heldout(task, labeler, path: Path, n: int, progress: bool = True) -> Path:
    """Clean expert episodes on fixed seeds, for the off-policy error (the same for every run)."""
    buf = ReplayBuffer.open_or_create(path)
    env = task.make_env()
    try:
        for i in tqdm(
            range(buf.n_episodes, n), desc="held-out expert episodes", disable=not progress or n <= buf.n_episodes
        ):
            segs, _ = run_episode(
                task, env, labeler, HELDOUT_SEED + i, ExpertActs(), np.random.default_rng(i), chunk_labels=False
            )
            buf.add_episode(segs[0])
    finally:
        env.close()
    return path


def run_rounds(
    cfg: DictConfig,
    run_dir: str | Path,
    plan: Callable[[int, list[dict], Any], Any] = demos_only,
    progress: bool = True,
    dist=None,
) -> dict:
    """Collect -> train -> evaluate, round after round; resumes from ``run_dir/progress.json``.

    Under torchrun (``dist``, a world of several processes) rank 0 collects, evaluates and writes
    everything, as in one process; every rank joins each round's training (DDP)."""
    if dist is not None and dist.world > 1 and not dist.is_main:
        return _train_rounds_follower(cfg, Path(run_dir), progress, dist)
    algo, method = cfg.algo, str(cfg.algo.name)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    prog_file = run_dir / "progress.json"
    prog = (
        json.loads(prog_file.read_text())
        if prog_file.exists()
        else {"method": method, "completed_round": -1, "history": [], "checkpoints": {}}
    )
    if prog["method"] != method:
        raise ConfigError(
            f"{prog_file}: run dir holds a {prog['method']!r} run, expected {method!r}; use another run_dir"
        )
    task = make_task_from(cfg)
    device = pick_device(str(cfg.device))
    seed, horizon = int(cfg.seed), int(cfg.policy.horizon)
    chunk_labels = str(algo.labels) == "chunk"
    if str(algo.labels) not in ("chunk", "step"):
        raise ConfigError(f"algo.labels: expected chunk | step, found {algo.labels!r}")
    labeler = make_labeler(task, str(algo.expert), horizon, device, seed)  # a teacher that does not fit: here
    save_config(cfg, run_dir / "config.yaml")
    if dist is not None:
        dist.barrier()  # the followers read progress.json from here on
    heldout = ensure_heldout(task, labeler, run_dir / "heldout.zarr", int(algo.heldout_episodes), progress)
    data_path = run_dir / "data.zarr"
    buf = ReplayBuffer.open_or_create(data_path)
    exec_cfg = OmegaConf.to_container(cfg.exec, resolve=True)
    n_eval = int(algo.eval_episodes or cfg.eval.episodes)
    budget = algo.labels_per_round
    if prog["history"]:  # a kill between progress.json and the ledger leaves the ledger one round behind
        write_ledger(prog["history"], run_dir / "ledger.csv")
    totals = {
        k: (prog["history"][-1][k] if prog["history"] else 0)
        for k in ("expert_queries", "env_steps", "label_sim_steps")
    }
    for r in range(prog["completed_round"] + 1, int(algo.rounds) + 1):
        prev = ChunkPolicy.load(run_dir / prog["checkpoints"][str(r - 1)], device=device) if r > 0 else None
        strategy = plan(r, prog["history"], algo)
        rdir = run_dir / f"round_{r:02d}"
        rdir.mkdir(exist_ok=True)
        st = collect_round(
            task,
            labeler,
            buf,
            r,
            strategy,
            n_rollouts=int(algo.demo_episodes if r == 0 else algo.episodes_per_round),
            label_budget=int(budget) if budget else None,
            max_rollouts=int(algo.max_rollouts_per_round),
            seed=seed,
            chunk_labels=chunk_labels,
            keep_failures=r > 0 or bool(algo.keep_failed_demos),
            sidecar=rdir / "collect.json",
            policy=prev,
            exec_cfg=exec_cfg,
            progress=progress,
        )
        if buf.n_episodes == 0:
            raise DataError(
                f"{data_path}: round {r} added no episodes (expert success {st['rollout_success']:.0%}); "
                f"nothing to train on (algo.keep_failed_demos=true keeps failed demonstrations)"
            )
        rcfg = copy.deepcopy(cfg)
        rcfg.data = str(data_path)
        warm = str(algo.retrain) == "warm" and prev is not None
        if warm and algo.warm_steps:
            rcfg.algo.steps = int(algo.warm_steps)
        t0 = time.time()
        if dist is not None:
            dist.barrier()  # the round's data is on disk: the other ranks join its training
        rcfg.algo.chunk_key = CHUNK_KEY if chunk_labels else None
        bundle = DataBundle(rcfg, data_path)
        ckpt = train(rcfg, rdir / "train", progress=progress, data=bundle, init_from=prev if warm else None, dist=dist)
        train_s = time.time() - t0
        policy = ChunkPolicy.load(ckpt, device=device)
        m, on = evaluate_with_errors(
            policy,
            task,
            labeler,
            exec_cfg,
            n_eval,
            int(cfg.eval.n_envs),
            int(cfg.eval.seed_start),
            seed=seed,
            progress=progress,
            action_noise=float(cfg.eval.action_noise),
        )
        off = offpolicy_errors(policy, heldout, (task.spec.action_low, task.spec.action_high), seed=seed)
        for k, v in (("expert_queries", "queries"), ("env_steps", "env_steps"), ("label_sim_steps", "label_sim_steps")):
            totals[k] += st[v]
        row = {
            "method": method,
            "seed": seed,
            "round": r,
            "expert_labels": buf.n_steps,
            **totals,
            "dataset_episodes": buf.n_episodes,
            "rollouts": st["rollouts"],
            "beta": strategy.record.get("beta"),
            "noise_std": strategy.record.get("noise_std"),
            "success_rate": m["success_rate"],
            "success_lo": m["success_ci95"][0],
            "success_hi": m["success_ci95"][1],
            "mean_max_score": m["mean_max_score"],
            "offpolicy_mse": mse(off),
            "onpolicy_mse": mse(on),
            "train_seconds": train_s,
            "rollout_success": st["rollout_success"],
            "error_cov": (off.T @ off / max(1, len(off))).tolist(),
        }
        prog["history"].append(row)
        prog["checkpoints"][str(r)] = str(Path(ckpt).relative_to(run_dir))  # the run dir may move
        prog["completed_round"] = r
        write_json(prog, prog_file)  # the round exists from here on
        write_ledger(prog["history"], run_dir / "ledger.csv")
        plot_ledgers(prog["history"], run_dir / "ledger.png", title=f"{method} on {cfg.task.name}")
        if progress:
            print(
                f"round {r}: labels {row['expert_labels']}, success {row['success_rate']:.2f}, "
                f"off-policy mse {row['offpolicy_mse']:.4g}, on-policy mse {row['onpolicy_mse']:.4g}"
            )
    return prog


def _train_rounds_follower(cfg: DictConfig, run_dir: Path, progress: bool, dist) -> dict:
    """A rank other than 0: wait for each round's data, then train on it with the others."""
    algo = cfg.algo
    prog_file = run_dir / "progress.json"
    dist.barrier()  # rank 0 has read or created the run directory's state
    prog = json.loads(prog_file.read_text()) if prog_file.exists() else {"completed_round": -1, "checkpoints": {}}
    device = pick_device(str(cfg.device))
    chunk_labels = str(algo.labels) == "chunk"
    for r in range(prog["completed_round"] + 1, int(algo.rounds) + 1):
        rcfg = copy.deepcopy(cfg)
        rcfg.data = str(run_dir / "data.zarr")
        dist.barrier()  # rank 0 collected round r
        prev = None
        if r > 0 and str(algo.retrain) == "warm":
            done = json.loads(prog_file.read_text())["checkpoints"]
            prev = ChunkPolicy.load(run_dir / done[str(r - 1)], device=device)
            if algo.warm_steps:
                rcfg.algo.steps = int(algo.warm_steps)
        rcfg.algo.chunk_key = CHUNK_KEY if chunk_labels else None
        bundle = DataBundle(rcfg, rcfg.data)
        train(rcfg, run_dir / f"round_{r:02d}" / "train", progress=False, data=bundle, init_from=prev, dist=dist)
    return prog
