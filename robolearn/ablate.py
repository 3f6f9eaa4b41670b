"""``robolearn ablate EXPERIMENT.yaml``: variants x tasks x seeds, trained and evaluated alike.

The grid answers Pan et al. (2025, "Much Ado About Noising"): when a generative head beats
regression, is it distribution fitting (C1), noise injected during training (C2) or iterative
refinement with supervision at every step (C3)? Every variant is a config over the existing
heads. A variant either trains its own model (``train:`` overrides) or re-samples another
variant's trained weights with different inference options (``from:`` + ``sample:``, e.g. flow
with z = 0, or with 1 / 2 / 3 / 9 network evaluations), so it costs an evaluation, not a run.

Layout under the experiment's ``out`` directory::

    data/<task>.zarr                 demos collected for tasks with a ``collect:`` block
    train/<variant>/<task>/s<seed>/  one training run (trainer resume files included)
    cells/<variant>/<task>/s<seed>/metrics.json   one evaluated cell
    results.csv, results.md, results.png

A cell whose ``metrics.json`` exists is never re-run; a killed training resumes from its last
checkpoint; demos are collected to a temporary store and renamed when complete. Re-running the
command after an interruption finishes the grid.

Under ``torchrun`` (or any launch that sets ``RANK`` / ``WORLD_SIZE``) the ranks split the grid:
the cells that share one trained model (a variant and those re-sampling it, per task and seed)
go to one rank, model m to rank m mod world, so no model is ever trained twice; rank 0 collects
the demos, and waits for every cell before writing the results. No process group is needed:
cells are independent runs.
"""

from __future__ import annotations

import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from robolearn.atomic import atomic_path, write_json, write_text
from robolearn.config import compose, find_config, load_yaml, refuse_changed_settings, save_config, to_dict
from robolearn.errors import ConfigError
from robolearn.eval.metrics import wilson_interval
from robolearn.train.dist import shard_ranks

CELL_FIELDS = [
    "variant",
    "task",
    "seed",
    "components",
    "nfe",
    "success_rate",
    "success_lo",
    "success_hi",
    "mean_max_score",
    "episodes",
    "successes",
    "train_seconds",
    "expert_labels",
]


# ---------------------------------------------------------------------------------------------
# experiment file


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """The experiment file, with command-line ``overrides`` for every cell: ``eval.episodes=10``
    (and ``eval.n_envs`` / ``eval.seed_start``) set the evaluation, ``seeds=[0]`` (or ``seeds=0``)
    the training seeds, ``collect.episodes=N`` the demonstrations collected for every task;
    anything else (``algo.steps=500``) is appended to the experiment's training overrides."""
    path = Path(path)
    if not path.is_file() and find_config("experiment", str(path)) is not None:
        path = find_config("experiment", str(path))
    exp = load_yaml(path)
    if exp.get("suite") is not None:
        _expand_suite(exp, path)
    for o in overrides or []:
        k, sep, v = o.partition("=")
        if not sep:
            raise ConfigError(f"override {o!r}: expected key=value")
        if k.startswith("eval."):
            if k[5:] not in ("episodes", "n_envs", "seed_start"):
                raise ConfigError(f"override {o!r}: expected eval.episodes, eval.n_envs or eval.seed_start")
            import yaml

            exp.eval = {**(exp.get("eval") or {}), k[5:]: yaml.safe_load(v)}
        elif k == "seeds":
            import yaml

            val = yaml.safe_load(v)
            exp.seeds = [val] if isinstance(val, int) and not isinstance(val, bool) else val
        elif k == "collect.episodes":
            import yaml

            n = yaml.safe_load(v)
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"override {o!r}: collect.episodes expected a positive int, found {v!r}")
            collecting = [t for t in (exp.get("tasks") or {}).values() if t and t.get("collect")]
            if not collecting:
                raise ConfigError(f"override {o!r}: no task of {path} collects demonstrations (a 'collect:' block)")
            for t in collecting:
                t.collect = {**t.collect, "episodes": n}
        else:
            exp.train = [*(exp.get("train") or []), o]
    for key in ("tasks", "variants"):
        if not isinstance(exp.get(key), DictConfig) or len(exp[key]) == 0:
            raise ConfigError(f"{path}: key {key!r}: expected a non-empty mapping of name -> settings")
    if "seeds" not in exp:
        exp.seeds = [0]
    seeds = exp.seeds
    if not OmegaConf.is_list(seeds) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path}: key 'seeds': expected a non-empty list of integers, found {seeds!r}")
    for name, v in exp.variants.items():
        v = v or {}
        if "from" in v:
            if v["from"] not in exp.variants or "from" in (exp.variants[v["from"]] or {}):
                raise ConfigError(
                    f"{path}: variants.{name}.from: expected a variant that trains its own model, found {v['from']!r}"
                )
            if "train" in v:
                raise ConfigError(f"{path}: variants.{name}: give either 'train' or 'from', not both")
        elif not OmegaConf.is_list(v.get("train")):
            raise ConfigError(
                f"{path}: variants.{name}.train: expected a list of overrides such as "
                "[policy=flow, policy.head.num_steps=1]"
            )
    for name, t in exp.tasks.items():
        if not OmegaConf.is_list((t or {}).get("overrides")):
            raise ConfigError(f"{path}: tasks.{name}.overrides: expected a list such as [task=pusht]")
    exp["_path"] = str(path)
    exp["_name"] = exp.get("name") or path.stem
    return exp


def _expand_suite(exp: DictConfig, path: Path) -> None:
    """``suite: {preset: MT10 | MT50 | tasks: [...], obs: state | image, collect: {episodes: 10}}``
    becomes one ``tasks`` entry per Meta-World env (its demos collected by the scripted expert);
    entries the file also lists under ``tasks`` are kept and win."""
    from robolearn.envs.suites import PREFIX, PRESETS, check_name

    suite = exp.suite
    if not isinstance(suite, DictConfig):
        raise ConfigError(f"{path}: key 'suite': expected a mapping such as {{preset: MT10}}, found {suite!r}")
    unknown = sorted(set(suite) - {"preset", "tasks", "obs", "collect", "overrides"})
    if unknown:
        raise ConfigError(f"{path}: suite.{unknown[0]}: unknown key; expected preset, tasks, obs, collect, overrides")
    if ("preset" in suite) == ("tasks" in suite):
        raise ConfigError(f"{path}: key 'suite': expected exactly one of preset ({', '.join(PRESETS)}) or tasks")
    if "preset" in suite:
        if suite.preset not in PRESETS:
            raise ConfigError(f"{path}: suite.preset: expected one of {', '.join(PRESETS)}, found {suite.preset!r}")
        names = list(PRESETS[suite.preset])
    else:
        names = [str(t).removeprefix(PREFIX) for t in suite.tasks]
        for n in names:
            check_name(n)
    obs = str(suite.get("obs", "state"))
    if obs not in ("state", "image"):
        raise ConfigError(f"{path}: suite.obs: expected state or image, found {obs!r}")
    collect = {"episodes": 10, "until_kept": True, **to_dict(suite.get("collect") or {})}
    extra = [str(o) for o in (suite.get("overrides") or [])]
    tasks = {
        n: {"overrides": [f"task={PREFIX}{n}{'_image' if obs == 'image' else ''}", *extra], "collect": collect}
        for n in names
    }
    exp.tasks = OmegaConf.merge(OmegaConf.create(tasks), exp.get("tasks") or {})


def trained_by(exp: DictConfig, variant: str) -> str:
    return str((exp.variants[variant] or {}).get("from", variant))


def cell_cfg(exp: DictConfig, variant: str, task: str, seed: int, data: str | None) -> DictConfig:
    """The full training config of the model a cell evaluates."""
    tv = exp.variants[trained_by(exp, variant)]
    overrides = [*exp.tasks[task].overrides, *tv.train, *(exp.get("train") or []), f"seed={seed}"]
    if data:
        overrides.append(f"data={data}")
    cfg = compose([str(o) for o in overrides])
    ev = exp.get("eval") or {}
    for k in ("episodes", "n_envs", "seed_start"):
        if k in ev:
            cfg.eval[k] = ev[k]
    return cfg


def plan(exp: DictConfig) -> list[tuple[str, str, int]]:
    """Every (variant, task, seed) cell, seed by seed (a grid stopped early has every variant
    for its first seeds), trained variants first so re-sampling ones find their weights."""
    own = [v for v in exp.variants if "from" not in (exp.variants[v] or {})]
    rest = [v for v in exp.variants if v not in own]
    return [(v, t, int(s)) for s in exp.seeds for t in exp.tasks for v in own + rest]


# ---------------------------------------------------------------------------------------------
# running


def _wait_for(done, what: str, poll_s: float = 2.0) -> None:
    """Poll until ``done()``; torchrun stops every rank if one fails, so this cannot wait forever
    on a dead peer."""
    if not done():
        print(f"robolearn ablate: rank {shard_ranks()[0]} waits for {what}", file=sys.stderr, flush=True)
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
        _wait_for(dest.exists, f"the demos of {task_name}")
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


ADVERSARIAL = ("gail", "airl")  # cells whose learner is a stable-baselines3 policy, not a ChunkPolicy


def adversarial_cell(cfg: DictConfig, train_dir: Path, cell_dir: Path, progress: bool) -> dict:
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
                       int(cfg.eval.seed_start), 1, progress=progress)  # fmt: skip
    finally:
        actor.env.close()
    m = {**summarize(recs), "seed_start": int(cfg.eval.seed_start), "max_steps": int(task.spec.max_steps),
         "checkpoint": str(train_dir / "learner.zip"), "head": {}}  # fmt: skip
    tmp = cell_dir.with_name(cell_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_json({"summary": m, "episodes": recs}, tmp / "metrics.json")
    shutil.rmtree(cell_dir, ignore_errors=True)
    tmp.rename(cell_dir)
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
) -> list[dict]:
    """Run (or finish) the grid; ``only_tasks`` / ``only_seeds`` select part of it, e.g. to split
    the seeds over several processes sharing one output directory (cells never overlap); a last
    run without them then writes the results of the whole grid."""

    from tqdm import tqdm

    exp = load_experiment(path, overrides)
    out = Path(out or exp.get("out") or f"runs/ablate/{exp._name}")
    refuse_changed_settings(exp, out, False, None, file="experiment.yaml")  # finished cells match the table
    out.mkdir(parents=True, exist_ok=True)
    save_config(exp, out / "experiment.yaml")
    if only_tasks:
        unknown = [t for t in only_tasks if t not in exp.tasks]
        if unknown:
            raise ConfigError(f"{exp._path}: --tasks {unknown}: not in the experiment's tasks {list(exp.tasks)}")
    if only_seeds:
        unknown = [sd for sd in only_seeds if sd not in list(exp.seeds)]
        if unknown:
            raise ConfigError(f"{exp._path}: --seeds {unknown}: not in the experiment's seeds {list(exp.seeds)}")
    cells = [c for c in plan(exp) if (not only_tasks or c[1] in only_tasks) and (not only_seeds or c[2] in only_seeds)]
    rank, world = shard_ranks()
    selected = cells
    if world > 1:
        models = list(dict.fromkeys((trained_by(exp, v), t, sd) for v, t, sd in cells))
        mine_models = {m for i, m in enumerate(models) if i % world == rank}
        cells = [c for c in cells if (trained_by(exp, c[0]), c[1], c[2]) in mine_models]
    # every variant composes (a bad one fails before any training starts); its NFE for the table
    nfe: dict[tuple[str, str], int | None] = {}
    for v in exp.variants:
        for t in exp.tasks:
            if str(cell_cfg(exp, v, t, 0, None).algo.name) in ADVERSARIAL:
                nfe[(v, t)] = None  # a PPO learner's Gaussian mean: no head
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
        if str(cfg.algo.name) in ADVERSARIAL:
            adversarial_cell(cfg, train_dir, cell_dir, progress)
        else:
            ckpt, _ = train_cell(cfg, train_dir, progress)
            _eval_cell(exp, variant, cfg, ckpt, cell_dir, progress)
        write_results(finished_rows(exp, out, nfe), out, exp)
    if world > 1 and rank == 0:  # the results files cover the whole selection once every rank is done
        _wait_for(
            lambda: all((out / "cells" / v / t / f"s{sd}" / "metrics.json").exists() for v, t, sd in selected),
            "the other ranks' cells",
        )
    rows = finished_rows(exp, out, nfe)
    write_results(rows, out, exp)
    mine = set(selected if world > 1 and rank == 0 else cells)
    return [r for r in rows if (r["variant"], r["task"], r["seed"]) in mine]


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
        secs, labels = _cell_cost(out / "train" / trained_by(exp, variant) / task / f"s{seed}", out, task)
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
            }
        )
    return rows


def _cell_cost(train_dir: Path, out: Path, task: str) -> tuple[float, int | None]:
    """(training seconds, expert labels) of one trained model: an interactive run's totals from its
    progress.json, else the steps of the demonstrations the experiment collected for the task."""
    import json

    prog, adv = train_dir / "progress.json", train_dir / "history.json"
    if adv.exists() and not prog.exists():  # an adversarial run: the demonstrations' steps, PPO's seconds
        hist = json.loads(adv.read_text())
        return float(sum(h.get("seconds", 0.0) for h in hist)), int(hist[-1]["expert_labels"])
    if prog.exists():
        hist = json.loads(prog.read_text())["history"]
        return float(sum(h["train_seconds"] for h in hist)), int(hist[-1]["expert_labels"]) if hist else None
    summary = train_dir / "train_summary.json"
    secs = float(json.loads(summary.read_text())["seconds"]) if summary.exists() else float("nan")
    data = out / "data" / f"{task}.zarr"
    if not data.exists():
        return secs, None
    from robolearn.data.replay_buffer import ReplayBuffer

    buf = ReplayBuffer.open(data, mode="r")
    try:
        return secs, int(buf.n_steps)
    finally:
        buf.close()


# ---------------------------------------------------------------------------------------------
# results


def aggregate(rows: list[dict], reference: str | None = None) -> list[dict]:
    """One row per (variant, task): mean and std over seeds of the mean max score, success pooled
    over seeds with a Wilson interval, and the score relative to the reference variant."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["task"]), []).append(r)
    ref = {t: np.mean([r["mean_max_score"] for r in g]) for (v, t), g in groups.items() if v == reference}
    out = []
    for (v, t), g in groups.items():
        scores = np.array([r["mean_max_score"] for r in g], dtype=float)
        succ, n = sum(r["successes"] for r in g), sum(r["episodes"] for r in g)
        lo, hi = wilson_interval(succ, n)
        rel = scores.mean() / ref[t] if t in ref and ref[t] > 0 else float("nan")
        out.append(
            {
                "variant": v,
                "task": t,
                "components": g[0]["components"],
                "nfe": g[0]["nfe"],
                "seeds": len(g),
                "score_mean": float(scores.mean()),
                "score_std": float(scores.std(ddof=1)) if len(g) > 1 else 0.0,
                "success": succ / max(n, 1),
                "success_lo": lo,
                "success_hi": hi,
                "successes": succ,
                "episodes": n,
                "expert_labels": _mean_labels(g),
                "relative": rel,
            }
        )
    return out


def _mean_labels(rows: list[dict]) -> float | None:
    vals = [r["expert_labels"] for r in rows if r.get("expert_labels") is not None]
    return float(np.mean(vals)) if vals else None


def markdown_table(agg: list[dict], reference: str | None) -> str:
    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    rel = f" (/{reference})" if reference else ""
    head = (
        "| variant | components | NFE | " + " | ".join(f"{t} score{rel} | {t} success [95% CI]" for t in tasks) + " |"
    )
    lines = [head, "|" + "---|" * (3 + 2 * len(tasks))]
    for v in variants:
        first = next(by[(v, t)] for t in tasks if (v, t) in by)
        cells = []
        for t in tasks:
            a = by.get((v, t))
            if a is None:
                cells += ["", ""]
                continue
            r = "" if np.isnan(a["relative"]) else f" ({a['relative']:.2f})"
            cells.append(f"{a['score_mean']:.3f} ± {a['score_std']:.3f}{r}")
            cells.append(f"{a['success']:.2f} [{a['success_lo']:.2f}, {a['success_hi']:.2f}]")
        lines.append(
            f"| {v} | {first['components']} | {first['nfe'] if first['nfe'] is not None else ''} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def plot(agg: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(5, 0.6 * len(variants) + 2) * len(tasks), 4), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        vs = [v for v in variants if (v, t) in by]
        y = [by[(v, t)]["score_mean"] for v in vs]
        e = [by[(v, t)]["score_std"] for v in vs]
        ax.bar(range(len(vs)), y, yerr=e, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(vs)), vs, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("mean max score (± std over seeds)")
        ax.set_ylim(0, 1.05)
        ax.set_title(t)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def suite_rows(agg: list[dict]) -> list[dict]:
    """Per variant, the suite mean: the mean over tasks of the success rate (pooled over seeds),
    with the Wilson interval of all its episodes (equal episodes per task: the same mean)."""
    out = []
    for v in dict.fromkeys(a["variant"] for a in agg):
        g = [a for a in agg if a["variant"] == v]
        succ = sum(a["successes"] for a in g)
        n = sum(a["episodes"] for a in g)
        lo, hi = wilson_interval(succ, n)
        out.append({"variant": v, "tasks": len(g), "success": float(np.mean([a["success"] for a in g])),
                    "success_lo": lo, "success_hi": hi})  # fmt: skip
    return out


def suite_markdown(agg: list[dict], experts: dict[str, str]) -> str:
    """Tasks as rows (a suite has too many for columns), variants as columns, the suite mean last."""
    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    lines = [
        "| task | expert demos kept / run | " + " | ".join(f"{v} success [95% CI]" for v in variants) + " |",
        "|" + "---|" * (2 + len(variants)),
    ]
    for t in tasks:
        cells = [
            f"{by[(v, t)]['success']:.2f} [{by[(v, t)]['success_lo']:.2f}, {by[(v, t)]['success_hi']:.2f}]"
            if (v, t) in by
            else ""
            for v in variants
        ]
        lines.append(f"| {t} | {experts.get(t, '')} | " + " | ".join(cells) + " |")
    means = {r["variant"]: r for r in suite_rows(agg)}
    cells = [
        f"**{means[v]['success']:.3f}** [{means[v]['success_lo']:.2f}, {means[v]['success_hi']:.2f}] "
        f"({means[v]['tasks']} tasks)"
        for v in variants
    ]
    lines.append("| **suite mean** | | " + " | ".join(cells) + " |")
    labels = {v: _mean_labels([a for a in agg if a["variant"] == v]) for v in variants}
    if any(x is not None for x in labels.values()):
        cells = [f"{labels[v]:.0f}" if labels[v] is not None else "" for v in variants]
        lines.append("| expert labels per task (mean) | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def suite_plot(agg: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    tasks = sorted(dict.fromkeys(a["task"] for a in agg), key=lambda t: -np.mean(
        [by[(v, t)]["success"] for v in variants if (v, t) in by]))  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(tasks) * len(variants) + 2), 4.2))
    w = 0.8 / len(variants)
    for j, v in enumerate(variants):
        xs = [i for i, t in enumerate(tasks) if (v, t) in by]
        ys = [by[(v, tasks[i])]["success"] for i in xs]
        err = np.array([[by[(v, tasks[i])]["success"] - by[(v, tasks[i])]["success_lo"] for i in xs],
                        [by[(v, tasks[i])]["success_hi"] - by[(v, tasks[i])]["success"] for i in xs]])  # fmt: skip
        mean = float(np.mean(ys)) if ys else float("nan")
        ax.bar(np.array(xs) + (j - (len(variants) - 1) / 2) * w, ys, w, yerr=err, capsize=1.5,
               label=f"{v} (mean {mean:.2f})")  # fmt: skip
    ax.set_xticks(range(len(tasks)), tasks, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("success (95% Wilson interval)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _expert_counts(out: Path, tasks: list[str]) -> dict[str, str]:
    """``kept / run`` of each task's collected demos (from the store's attributes)."""
    import json

    found = {}
    for t in tasks:
        attrs = out / "data" / f"{t}.zarr" / "zarr.json"
        if attrs.is_file():
            a = json.loads(attrs.read_text()).get("attributes", {})
            runs = a.get("collections") or []
            if runs:
                found[t] = f"{sum(r['episodes_kept'] for r in runs)} / {sum(r['episodes_run'] for r in runs)}"
    return found


def results_table(agg: list[dict], exp: DictConfig, out: Path) -> str:
    """The Markdown table: tasks as columns, or as rows with a suite mean for a suite experiment."""
    if exp.get("suite") is not None:
        return suite_markdown(agg, _expert_counts(out, list(exp.tasks)))
    return markdown_table(agg, exp.get("reference"))


def write_results(rows: list[dict], out: Path, exp: DictConfig) -> None:
    reference = exp.get("reference")
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CELL_FIELDS)
        w.writeheader()
        w.writerows(rows)
    agg = aggregate(rows, reference)
    table = results_table(agg, exp, out)
    (suite_plot if exp.get("suite") is not None else plot)(agg, out / "results.png", str(exp._name))
    write_text(out / "results.md", f"# {exp._name}\n\n{table}\n")
    write_json(agg, out / "results.json")
