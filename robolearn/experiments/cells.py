"""One cell runner for every experiment kind: collect the task's demonstrations, train the cell's
model (behaviour cloning, interactive rounds, or an adversarial learner), evaluate it, never redo a
finished cell, and split the cells over ranks (torchrun's RANK / WORLD_SIZE, no process group).

What a cell does is its kind's function, picked by the cell's ``algo.name`` (``@register_cell``):
``policy_cell`` (train a ChunkPolicy by BC or interactive rounds, then evaluate it) unless another
kind registered the name. A new kind of experiment is a spec (its YAML) and one cell function."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from robolearn.atomic import write_json
from robolearn.config import compose, save_config, to_dict
from robolearn.config_schema import ExpertSchema
from robolearn.errors import ConfigError
from robolearn.experiments.report import write_results
from robolearn.experiments.spec import cell_cfg, load_experiment, plan, rank_share, resume_into, select, trained_by
from robolearn.train.dist import shard_ranks


def wait_for(done, what: str, poll_s: float = 2.0) -> None:
    """Poll until ``done()``; torchrun stops every rank if one fails, so this cannot wait forever
    on a dead peer."""
    if not done():
        print(f"robolearn: rank {shard_ranks()[0]} waits for {what}", file=sys.stderr, flush=True)
    while not done():
        time.sleep(poll_s)


def collect_data(exp: DictConfig, task_name: str, out: Path, progress: bool, rank: int = 0) -> str | None:
    spec = exp.tasks[task_name].get("collect")
    if not spec:
        return None
    from robolearn.algos.collect import collect
    from robolearn.train.trainer import make_task_from

    dest = out / "data" / f"{task_name}.zarr"
    if rank != 0:  # rank 0 collects; the dataset appears complete or not at all
        wait_for(dest.exists, f"the demos of {task_name}")
    if dest.exists():
        return str(dest)
    cfg = compose([str(o) for o in exp.tasks[task_name].overrides])
    task = make_task_from(cfg)
    tmp = dest.with_name(dest.name + ".partial")
    collect(
        task,
        int(spec.get("episodes", 100)),
        tmp,
        noise=float(spec.get("noise", 0.0)),
        seed_start=int(spec.get("seed_start", 0)),
        overwrite=True,
        progress=progress,
        until_kept=bool(spec.get("until_kept", False)),
    )
    tmp.rename(dest)  # the dataset appears only once it is complete
    return str(dest)


def train_cell(cfg: DictConfig, run_dir: Path, progress: bool) -> tuple[Path, float]:
    """Train the cell's model: one behaviour-cloning run, or, for an interactive algo (one with
    ``rounds``: ``algo=dagger`` / ``dart`` / ``hg_dagger``), its rounds of collection and
    retraining (which collect their own demonstrations); the last round's checkpoint is evaluated."""
    from robolearn.train.trainer import train

    if "rounds" in cfg.algo:
        from robolearn.algos.interactive import run_interactive

        prog = run_interactive(cfg, run_dir, progress=progress)  # resumes; a finished run returns at once
        last = prog["checkpoints"][str(prog["completed_round"])]
        return run_dir / last, float(sum(h["train_seconds"] for h in prog["history"]))
    ckpt, summary = run_dir / "checkpoints" / "last", run_dir / "train_summary.json"
    if summary.exists() and ckpt.is_dir():  # finished before: never retrain
        import json

        return ckpt, float(json.loads(summary.read_text())["seconds"])
    t0 = time.time()
    ckpt = train(cfg, run_dir, progress=progress)
    return ckpt, time.time() - t0


@dataclass(frozen=True)
class CellKind:
    """``run(exp, variant, cfg, train_dir, cell_dir, progress)`` trains (or finds trained) the cell's
    model in ``train_dir``, evaluates it and writes ``cell_dir/metrics.json``; returns its summary.
    ``has_head``: its model is a ChunkPolicy (the table's network-evaluations column)."""

    run: Callable[..., dict]
    has_head: bool = True


CELL_KINDS: dict[str, CellKind] = {}  # algo.name -> its kind; every other name: policy_cell


def register_cell(*algo_names: str, has_head: bool = True, schema: type | None = None):
    """Cells whose ``algo.name`` is one of ``algo_names`` run the decorated function; ``schema``: the
    typed schema (a dataclass, ``config_schema.py``) of a new algorithm's options, if it brings one."""

    def deco(fn):
        from robolearn.config_schema import ALGOS

        for name in algo_names:
            CELL_KINDS[name] = CellKind(fn, has_head)
            if schema is not None:
                ALGOS[name] = schema
        return fn

    return deco


def cell_kind(cfg: DictConfig) -> CellKind:
    return CELL_KINDS.get(str(cfg.algo.name), CellKind(policy_cell))


def policy_cell(
    exp: DictConfig, variant: str, cfg: DictConfig, train_dir: Path, cell_dir: Path, progress: bool
) -> dict:
    """Behaviour cloning or interactive rounds (``train_cell``), then the checkpoint evaluated."""
    ckpt, _ = train_cell(cfg, train_dir, progress)
    return _eval_cell(exp, variant, cfg, ckpt, cell_dir, progress)


@register_cell("gail", "airl", has_head=False)  # the learner is a stable-baselines3 policy
def adversarial_cell(
    exp: DictConfig, variant: str, cfg: DictConfig, train_dir: Path, cell_dir: Path, progress: bool
) -> dict:
    """A GAIL / AIRL cell: its rounds (skipped when ``learner.zip`` exists), then the learner's
    deterministic policy through the same rollout loop, seeds and metrics file as every cell."""
    from robolearn.algos.adversarial import load_learner, run_adversarial
    from robolearn.eval.metrics import summarize
    from robolearn.eval.rollout import rollout
    from robolearn.train.trainer import make_task_from

    if not (train_dir / "learner.zip").exists():
        shutil.rmtree(train_dir, ignore_errors=True)  # an interrupted run restarts (its rounds are minutes)
        run_adversarial(cfg, train_dir, progress=progress)["env"].close()
    task = make_task_from(cfg)
    actor = load_learner(train_dir, task)
    try:
        recs = rollout(lambda n, w: actor, task, int(cfg.eval.episodes), int(cfg.eval.n_envs),
                       int(cfg.eval.seed_start), 1, progress=progress,
                       action_noise=float(cfg.eval.action_noise), noise_seed=int(cfg.seed))  # fmt: skip
    finally:
        actor.env.close()
    m = {**summarize(recs), "seed_start": int(cfg.eval.seed_start), "max_steps": int(task.spec.max_steps),
         "checkpoint": str(train_dir / "learner.zip"), "head": {}}  # fmt: skip
    _write_cell(cell_dir, {"summary": m, "episodes": recs})
    return m


def _eval_cell(exp: DictConfig, variant: str, cfg: DictConfig, ckpt: Path, cell_dir: Path, progress: bool) -> dict:
    from robolearn.eval.rollout import evaluate_policy
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import make_task_from, pick_device

    sample = to_dict((exp.variants[variant] or {}).get("sample") or {})
    policy = ChunkPolicy.load(ckpt, device=pick_device(str(cfg.device)), head_overrides=sample)
    task = make_task_from(cfg)
    tmp = cell_dir.with_name(cell_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    m = evaluate_policy(
        policy,
        task,
        to_dict(cfg.exec),
        tmp,
        n_episodes=int(cfg.eval.episodes),
        n_envs=int(cfg.eval.n_envs),
        seed_start=int(cfg.eval.seed_start),
        n_videos=0,
        progress=progress,
        seed=int(cfg.seed),
        action_noise=float(cfg.eval.action_noise),
    )
    shutil.rmtree(cell_dir, ignore_errors=True)
    tmp.rename(cell_dir)  # metrics.json appears with the finished cell, never half-written
    return m


def _nfe(policy_head: dict) -> int | None:
    from robolearn.heads import head_class

    options = {k: v for k, v in policy_head.items() if k != "name"}
    return head_class(str(policy_head.get("name"))).network_evaluations(options)


def run_experiment(
    path: str | Path,
    out: str | Path | None = None,
    progress: bool = True,
    only_tasks: list[str] | None = None,
    only_seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    only_variants: list[str] | None = None,
) -> list[dict]:
    """Run (or finish) the grid; ``only_tasks`` / ``only_seeds`` / ``only_variants`` select part of
    it, e.g. to split the seeds over several processes sharing one output directory (cells never
    overlap); a last run without them then writes the results of the whole grid."""

    from tqdm import tqdm

    exp = load_experiment(path, overrides)
    out = Path(out or exp.get("out") or f"runs/ablate/{exp._name}")
    run_seeds = resume_into(exp, out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(exp, out / "experiment.yaml")
    cells = select(exp, only_tasks, only_variants, only_seeds)  # an unknown name stops here
    if run_seeds is not None:  # seeds=[...] given on a resumed --out: only those (and --seeds among them)
        cells = [c for c in cells if c[2] in run_seeds]
    rank, world = shard_ranks()
    selected, cells = cells, rank_share(exp, cells, rank, world)
    # every variant composes (a bad one fails before any training starts); its NFE for the table
    nfe: dict[tuple[str, str], int | None] = {}
    for v in exp.variants:
        for t in exp.tasks:
            if not cell_kind(cell_cfg(exp, v, t, 0, None)).has_head:
                nfe[(v, t)] = None  # e.g. a PPO learner's Gaussian mean: no head
                continue
            head = {
                **to_dict(cell_cfg(exp, v, t, 0, None).policy)["head"],
                **to_dict((exp.variants[v] or {}).get("sample") or {}),
            }
            nfe[(v, t)] = _nfe(head)
    data = {t: collect_data(exp, t, out, progress, rank) for t in exp.tasks if not only_tasks or t in only_tasks}
    bar = tqdm(cells, desc=f"ablate {exp._name}", disable=not progress, dynamic_ncols=True)
    for variant, task, seed in bar:
        bar.set_postfix(cell=f"{variant}/{task}/s{seed}")
        cell_dir = out / "cells" / variant / task / f"s{seed}"
        if (cell_dir / "metrics.json").exists():
            continue
        cfg = cell_cfg(exp, variant, task, seed, data[task])
        train_dir = out / "train" / trained_by(exp, variant) / task / f"s{seed}"
        cell_kind(cfg).run(exp, variant, cfg, train_dir, cell_dir, progress)
        write_results(finished_rows(exp, out, nfe), out, exp)
    if world > 1 and rank == 0:  # the results files cover the whole selection once every rank is done
        wait_for(
            lambda: all((out / "cells" / v / t / f"s{sd}" / "metrics.json").exists() for v, t, sd in selected),
            "the other ranks' cells",
        )
    rows = finished_rows(exp, out, nfe)
    write_results(rows, out, exp)
    mine = set(selected if world > 1 and rank == 0 else cells)
    return [r for r in rows if (r["variant"], r["task"], r["seed"]) in mine]


@register_cell("expert", has_head=False, schema=ExpertSchema)
def expert_cell(
    exp: DictConfig, variant: str, cfg: DictConfig, train_dir: Path, cell_dir: Path, progress: bool
) -> dict:
    """The task's scripted expert on the experiment's evaluation seeds, with the evaluation's
    execution noise (``eval.action_noise``, std in half action ranges): the reference J(expert) of a
    regret table, measured by the same rollout loop and metrics as every learner."""
    import numpy as np

    from robolearn.algos.acting import ExpertActs, run_episode
    from robolearn.algos.labelers import ScriptedLabeler
    from robolearn.eval.metrics import summarize
    from robolearn.train.trainer import make_task_from

    task = make_task_from(cfg)
    if task.expert() is None:
        raise ConfigError(f"algo=expert: task {task.spec.name!r} has no scripted expert to evaluate")
    half = (np.asarray(task.spec.action_high) - np.asarray(task.spec.action_low)) / 2
    sigma = float(cfg.eval.action_noise)
    strategy = ExpertActs(noise=np.diag(sigma * half) if sigma > 0 else None)
    env, labeler, recs = task.make_env(), ScriptedLabeler(task, horizon=1), []
    try:
        for i in range(int(cfg.eval.episodes)):
            seed = int(cfg.eval.seed_start) + i
            _, st = run_episode(task, env, labeler, seed, strategy, np.random.default_rng([seed, 17]), False)
            recs.append({"seed": seed, "success": bool(st["success"]), "max_score": float(st["max_score"]),
                         "length": int(st["env_steps"])})  # fmt: skip
    finally:
        env.close()
    m = {**summarize(recs), "seed_start": int(cfg.eval.seed_start), "max_steps": int(task.spec.max_steps),
         "action_noise": sigma, "checkpoint": "scripted expert", "head": {}}  # fmt: skip
    _write_cell(cell_dir, {"summary": m, "episodes": recs})
    return m


def _write_cell(cell_dir: Path, metrics: dict) -> None:
    """``cell_dir/metrics.json`` appears complete or not at all."""
    tmp = cell_dir.with_name(cell_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(metrics, tmp / "metrics.json")
    shutil.rmtree(cell_dir, ignore_errors=True)
    tmp.rename(cell_dir)


def finished_rows(exp: DictConfig, out: Path, nfe: dict[tuple[str, str], int | None]) -> list[dict]:
    """One row per finished cell of the whole grid, whichever process ran it: the results files
    always show everything done so far, never only what the last (partial) run did."""
    import json

    rows = []
    for variant, task, seed in plan(exp):
        f = out / "cells" / variant / task / f"s{seed}" / "metrics.json"
        if not f.exists():
            continue
        m = json.loads(f.read_text())["summary"]
        secs, labels, env_steps = _cell_cost(out / "train" / trained_by(exp, variant) / task / f"s{seed}", out, task)
        if m.get("checkpoint") == "scripted expert":  # the reference row: nothing learned, nothing labelled
            secs, labels, env_steps = 0.0, None, 0
        rows.append(
            {
                "variant": variant,
                "task": task,
                "seed": seed,
                "components": str((exp.variants[variant] or {}).get("components", "")),
                "nfe": nfe[(variant, task)],
                "success_rate": m["success_rate"],
                "success_lo": m["success_ci95"][0],
                "success_hi": m["success_ci95"][1],
                "mean_max_score": m["mean_max_score"],
                "episodes": m["episodes"],
                "successes": int(round(m["success_rate"] * m["episodes"])),
                "train_seconds": secs,
                "expert_labels": labels,
                "env_steps": env_steps,
            }
        )
    return rows


def _cell_cost(train_dir: Path, out: Path, task: str) -> tuple[float, int | None, int]:
    """(training seconds, expert labels, learner environment steps) of one trained model: an
    interactive or adversarial run's totals from its progress.json / history.json (environment steps
    after the demonstrations: mixed or learner rollouts, PPO's steps), else the steps of the
    demonstrations the experiment collected for the task and no learner steps (behaviour cloning)."""
    import json

    prog, adv = train_dir / "progress.json", train_dir / "history.json"
    if adv.exists() and not prog.exists():  # an adversarial run: the demonstrations' steps, PPO's seconds
        hist = json.loads(adv.read_text())
        return (float(sum(h.get("seconds", 0.0) for h in hist)), int(hist[-1]["expert_labels"]),
                int(hist[-1]["env_steps"]) - int(hist[0]["env_steps"]))  # fmt: skip
    if prog.exists():
        hist = json.loads(prog.read_text())["history"]
        if not hist:
            return 0.0, None, 0
        return (float(sum(h["train_seconds"] for h in hist)), int(hist[-1]["expert_labels"]),
                int(hist[-1]["env_steps"]) - int(hist[0]["env_steps"]))  # fmt: skip
    summary = train_dir / "train_summary.json"
    secs = float(json.loads(summary.read_text())["seconds"]) if summary.exists() else float("nan")
    data = out / "data" / f"{task}.zarr"
    if not data.exists() and (train_dir / "config.yaml").exists():  # the task's own data (e.g. human demos)
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(train_dir / "config.yaml")
        given = cfg.get("data") or (cfg.get("task") or {}).get("data")
        data = Path(str(given)) if given else data
    if not data.exists():
        return secs, None, 0
    from robolearn.data.replay_buffer import ReplayBuffer

    buf = ReplayBuffer.open(data, mode="r")
    try:
        return secs, int(buf.n_steps), 0
    finally:
        buf.close()
