"""``robolearn delay EXPERIMENT.yaml``: success against inference delay, per executor, head and task.

The structure of the main figure of real-time chunking (Black, Galliker, Levine 2025): for every
delay d (env steps of inference latency), every executor runs with the execution horizon
s = max(d, 1) (a new chunk is requested every s steps and takes over d steps later; RTC needs
s >= d), with and without execution noise. ``horizons: all`` also runs every s from max(d, 1)
to H - d, as the paper's sweep over execution horizons does (``horizons.png``, success against s
per delay). The experiment file is an ablation file
(``robolearn ablate``: tasks, seeds, training overrides, variants = heads, ``from:`` + ``sample:``
to re-sample a trained model with other inference options) plus a ``sweep`` block::

    sweep:
      delays: [0, 1, 2, 3, 4]
      noise: [0.0, 0.1]                   # execution noise, std in half action ranges
      executors:                          # label -> exec config (configs/exec), delay and s set here
        naive_async: {name: naive_async}
        rtc: {name: rtc}
        bid: {name: bid, n_samples: 8}
        ensemble: {name: ensemble}
      horizons: min                       # s = max(d, 1); or all: every s from max(d, 1) to H - d

A variant may list ``executors: [rtc]`` to run only those (e.g. a re-sampled model whose inference
option only changes how RTC's prefix is used). Every cell (variant, task, seed, noise, executor,
delay, s) is one JSON file under ``<out>/cells``, written once: a stopped run resumes where it was,
and training is the ablation's (a trained model is never trained again). Results pool the seeds:
``results.csv`` / ``results.md`` (success with its 95% Wilson interval, episodes, mean max score) and
``delay.png`` (success against delay, one panel per task and noise level). Sharded:
``torchrun --nproc_per_node N -m robolearn delay EXP`` gives each rank whole trained models (a model
and the variants re-sampled from it together); rank 0 writes the tables when every cell exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robolearn.atomic import write_json
from robolearn.config import save_config, to_dict
from robolearn.errors import ConfigError
from robolearn.eval.metrics import summarize, wilson_interval
from robolearn.experiments.cells import collect_data, train_cell, wait_for
from robolearn.experiments.report import default_s, write_delay_results
from robolearn.experiments.spec import cell_cfg, load_experiment, rank_share, resume_into, select, trained_by
from robolearn.train.dist import shard_ranks

HORIZONS = ("min", "all")


def check_sweep(exp: DictConfig) -> dict[str, Any]:
    """The ``sweep`` block, validated (every executor builds at every delay before anything runs)."""
    where = f"{exp._path}: sweep"
    sw = exp.get("sweep")
    if not isinstance(sw, DictConfig):
        raise ConfigError(f"{where}: expected a mapping with delays, noise and executors")
    delays, noise, execs = sw.get("delays"), sw.get("noise", [0.0]), sw.get("executors")
    if not OmegaConf.is_list(delays) or not delays or not all(isinstance(d, int) and d >= 0 for d in delays):
        raise ConfigError(f"{where}.delays: expected a non-empty list of integers >= 0, found {delays!r}")
    if not OmegaConf.is_list(noise) or not all(isinstance(n, (int, float)) and n >= 0 for n in noise):
        raise ConfigError(f"{where}.noise: expected a list of numbers >= 0, found {noise!r}")
    if not isinstance(execs, DictConfig) or not execs:
        raise ConfigError(f"{where}.executors: expected a mapping label -> exec config, found {execs!r}")
    horizons = sw.get("horizons", "min")
    if horizons not in HORIZONS:
        raise ConfigError(f"{where}.horizons: expected one of {list(HORIZONS)}, found {horizons!r}")
    for v, spec in exp.variants.items():
        only = (spec or {}).get("executors")
        if only is not None and (not OmegaConf.is_list(only) or not set(only) <= set(execs)):
            raise ConfigError(f"{exp._path}: variants.{v}.executors: expected a list of {list(execs)}, found {only!r}")
    return {
        "delays": list(delays),
        "noise": [float(n) for n in noise],
        "executors": to_dict(execs),
        "horizons": horizons,
    }


def _horizon_key(cfg: dict[str, Any]) -> str | None:
    """The exec option that is the execution horizon: ``s``, or ``n_action_steps`` for receding
    horizon; None for temporal ensembling, which has none."""
    import inspect

    from robolearn.execution import load_executors

    EXECUTORS = load_executors()
    cls = EXECUTORS.get(cfg.get("name", ""))
    if cls is None:
        raise ConfigError(f"sweep.executors: unknown executor {cfg.get('name')!r}; choose one of {sorted(EXECUTORS)}")
    params = inspect.signature(cls.__init__).parameters
    return "s" if "s" in params else ("n_action_steps" if "n_action_steps" in params else None)


def exec_at(cfg: dict[str, Any], d: int, s: int | None = None) -> tuple[dict[str, Any], int | None]:
    """The exec config at delay d with the execution horizon s (default max(d, 1)) for executors
    that have one."""
    key = _horizon_key(cfg)
    s = max(d, 1) if s is None else s
    out = {**cfg, "delay": d, **({key: s} if key else {})}
    return out, (s if key else None)


def horizons_at(cfg: dict[str, Any], d: int, horizon: int, which: str) -> list[int | None]:
    """The execution horizons one executor runs at delay d: max(d, 1) (``min``), or every s from
    max(d, 1) to H - d (``all``); [None] for an executor without one."""
    if _horizon_key(cfg) is None:
        return [None]
    lo = max(d, 1)
    return [lo] if which == "min" else list(range(lo, max(horizon - d, lo) + 1))


def check_windows(exp: DictConfig, sweep: dict[str, Any], tasks: list[str]) -> None:
    """Every executor at every delay fits every variant's chunk (s + d <= H ...): checked on the
    composed configs before any data is collected or model trained."""
    from types import SimpleNamespace

    from robolearn.execution import build_executor
    from robolearn.train.trainer import make_task_from

    for task in tasks:
        for variant in exp.variants:
            cfg = cell_cfg(exp, variant, task, 0, None)
            pol = cfg.policy
            shape = SimpleNamespace(
                horizon=int(pol.horizon),
                n_action_steps=int(pol.n_action_steps or pol.horizon),
                obs_horizon=int(pol.obs_horizon),
                action_dim=make_task_from(cfg).spec.action_dim,
            )
            for _, label, d, s in _cells(exp, sweep, task, variant):
                try:
                    build_executor(exec_at(sweep["executors"][label], d, s)[0], shape, 1)
                except ConfigError as e:
                    at = f"delay {d}" + ("" if default_s(d, s) else f", s = {s}")
                    raise ConfigError(
                        f"{exp._path}: sweep.executors.{label} at {at} ({task}, {variant}): {e}"
                    ) from None


def _cells(exp, sweep, task, variant):
    """(noise, executor label, delay, execution horizon) of every cell of one trained model."""
    only = (exp.variants[variant] or {}).get("executors")
    labels = [e for e in sweep["executors"] if only is None or e in only]
    horizon = int(cell_cfg(exp, variant, task, 0, None).policy.horizon) if sweep["horizons"] != "min" else 0
    return [
        (n, e, d, s)
        for n in sweep["noise"]
        for e in labels
        for d in sweep["delays"]
        for s in horizons_at(sweep["executors"][e], d, horizon, sweep["horizons"])
    ]


def _cell_file(
    out: Path, variant: str, task: str, seed: int, noise: float, label: str, d: int, s: int | None = None
) -> Path:
    """A cell at the default horizon s = max(d, 1) keeps its name whatever ``horizons`` says."""
    tail = "" if default_s(d, s) else f"_s{s}"
    return out / "cells" / task / variant / f"s{seed}" / f"{label}_n{noise:g}_d{d}{tail}.json"


def run_delay_experiment(
    path: str | Path,
    out: str | Path | None = None,
    progress: bool = True,
    only_tasks: list[str] | None = None,
    overrides: list[str] | None = None,
    only_variants: list[str] | None = None,
) -> list[dict]:
    from tqdm import tqdm

    from robolearn.eval.rollout import rollout, wave_generator
    from robolearn.execution import build_executor
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import make_task_from, pick_device

    exp = load_experiment(path, overrides)
    sweep = check_sweep(exp)
    select(exp, only_tasks, only_variants)  # an unknown task or variant stops here, before any work
    out = Path(out or exp.get("out") or f"runs/delay/{exp._name}")
    run_seeds = resume_into(exp, out)  # other settings than the seeds: refused
    out.mkdir(parents=True, exist_ok=True)
    save_config(exp, out / "experiment.yaml")
    tasks = [t for t in exp.tasks if not only_tasks or t in only_tasks]
    check_windows(exp, sweep, tasks)
    rank, world = shard_ranks()  # under torchrun: each rank its share of the trained models
    data = {t: collect_data(exp, t, out, progress, rank) for t in tasks}
    selected = [c for c in select(exp, only_tasks, only_variants) if run_seeds is None or c[2] in run_seeds]
    models = rank_share(exp, selected, rank, world)
    bar = tqdm(models, desc=f"delay {exp._name}", disable=not progress, dynamic_ncols=True)
    for variant, task, seed in bar:
        todo = [c for c in _cells(exp, sweep, task, variant) if not _cell_file(out, variant, task, seed, *c).exists()]
        if not todo:
            continue
        cfg = cell_cfg(exp, variant, task, seed, data[task])
        ckpt, _ = train_cell(cfg, out / "train" / trained_by(exp, variant) / task / f"s{seed}", progress)
        sample = to_dict((exp.variants[variant] or {}).get("sample") or {})
        policy = ChunkPolicy.load(ckpt, device=pick_device(str(cfg.device)), head_overrides=sample)
        diag = out / "diagnostic" / task / variant / f"s{seed}.json"
        if not diag.exists():  # before the sweep: can this model show RTC's effect at all?
            from robolearn.eval.modality import demonstration_modality

            write_json(demonstration_modality(policy, str(cfg.data), list(cfg.task.obs_keys), str(cfg.task.action_key),
                                              seed=seed), diag)  # fmt: skip
        env_task = make_task_from(cfg)
        n_eps, n_envs = int(cfg.eval.episodes), int(cfg.eval.n_envs)
        for noise, label, d, s_at in todo:
            ex, s = exec_at(sweep["executors"][label], d, s_at)
            build_executor(ex, policy, min(n_envs, n_eps))  # a bad combination fails before its rollout
            bar.set_postfix(cell=f"{variant}/{task}/s{seed} {label} d={d} s={s} noise={noise:g}")
            records = rollout(
                lambda n, w, ex=ex: build_executor(ex, policy, n, generator=wave_generator(policy, seed, w)),
                env_task,
                n_eps,
                n_envs,
                int(cfg.eval.seed_start),
                policy.obs_horizon,
                progress=False,
                action_noise=noise,
                noise_seed=seed,
            )
            m = summarize(records)
            write_json(
                {"summary": m, "exec": ex, "s": s, "delay": d, "noise": noise, "seed": seed, "episodes": records},
                _cell_file(out, variant, task, seed, noise, label, d, s_at),
            )
    if world > 1 and rank == 0:  # the tables cover the whole sweep once every rank is done
        wait_for(
            lambda: all(
                _cell_file(out, v, t, sd, *c).exists() for v, t, sd in selected for c in _cells(exp, sweep, t, v)
            ),
            "the other ranks' cells",
        )
    rows = results(exp, sweep, out)
    write_delay_results(rows, out, str(exp._name), paired_rows(exp, sweep, out), diagnostic_rows(exp, sweep, out))
    return rows


def results(exp: DictConfig, sweep: dict[str, Any], out: Path) -> list[dict]:
    """One row per (task, variant, executor, noise, delay, s), seeds pooled (every finished cell). Each
    seed contributes its first ``eval.episodes`` episodes (by evaluation seed), so a cell evaluated
    with more episodes under an earlier setting weighs the same as the others."""
    n_eps = int(exp.eval.episodes)
    rows = []
    for task in exp.tasks:
        ms = step_ms(exp, task)
        for variant in exp.variants:
            for noise, label, d, s in _cells(exp, sweep, task, variant):
                files = [_cell_file(out, variant, task, int(sd), noise, label, d, s) for sd in exp.seeds]
                done = [json.loads(f.read_text()) for f in files if f.exists()]
                if not done:
                    continue
                eps = [e for c in done for e in sorted(c["episodes"], key=lambda e: e["seed"])[:n_eps]]
                k, n = sum(e["success"] for e in eps), len(eps)
                lo, hi = wilson_interval(k, n)
                rows.append(
                    {
                        "task": task,
                        "variant": variant,
                        "executor": label,
                        "noise": noise,
                        "delay": d,
                        "delay_ms": None if ms is None else d * ms,
                        "s": done[0]["s"],
                        "seeds": len(done),
                        "episodes": n,
                        "successes": k,
                        "success_rate": k / n,
                        "success_lo": lo,
                        "success_hi": hi,
                        "mean_max_score": sum(e["max_score"] for e in eps) / n,
                    }
                )
    return rows


def step_ms(exp: DictConfig, task: str) -> float | None:
    """Milliseconds per control step of a task (its ``fps``), None when the task does not say."""
    from robolearn.train.trainer import make_task_from

    fps = make_task_from(cell_cfg(exp, next(iter(exp.variants)), task, int(exp.seeds[0]), None)).spec.extra.get("fps")
    return 1000.0 / float(fps) if fps else None


BASELINE = "naive_async"


def _unit_success(exp, sweep, out, task, variant, noise, label, d) -> dict[tuple[int, int], float]:
    """(training seed, evaluation seed) -> success averaged over the executor's execution horizons
    at delay d, for the training seeds whose cells at every such s are finished (the first
    ``eval.episodes`` episodes of each)."""
    n_eps = int(exp.eval.episodes)
    horizons = [s for n, e, dd, s in _cells(exp, sweep, task, variant) if (n, e, dd) == (noise, label, d)]
    units: dict[tuple[int, int], float] = {}
    for sd in exp.seeds:
        files = [_cell_file(out, variant, task, int(sd), noise, label, d, s) for s in horizons]
        if not horizons or not all(f.exists() for f in files):
            continue
        per: dict[int, list[float]] = {}
        for f in files:
            for e in sorted(json.loads(f.read_text())["episodes"], key=lambda e: e["seed"])[:n_eps]:
                per.setdefault(int(e["seed"]), []).append(float(e["success"]))
        units.update({(int(sd), k): sum(v) / len(v) for k, v in per.items() if len(v) == len(horizons)})
    return units


def paired_rows(exp: DictConfig, sweep: dict[str, Any], out: Path, baseline: str = BASELINE,
                n_boot: int = 4000) -> list[dict]:  # fmt: skip
    """The RTC paper's headline with paired statistics: per (task, variant, noise, delay, executor),
    the solve rate averaged over the execution horizons s (the paper's figure), and its difference
    to ``baseline`` on the same units (training seed, evaluation seed): every executor sees the same
    initial states and noise draws (common random numbers), so the difference is paired; its 95%
    interval is a percentile bootstrap over units (seeded: the same files give the same interval).
    A re-sampled variant (``from:``) without its own baseline cells is paired with its model's."""
    import numpy as np

    if baseline not in sweep["executors"]:
        return []
    rows = []
    for task in exp.tasks:
        for variant in exp.variants:
            labels = dict.fromkeys(e for _, e, _, _ in _cells(exp, sweep, task, variant))
            base_variant = variant if baseline in labels else trained_by(exp, variant)
            for noise in sweep["noise"]:
                for d in sweep["delays"]:
                    base = _unit_success(exp, sweep, out, task, base_variant, noise, baseline, d)
                    for label in labels:
                        units = _unit_success(exp, sweep, out, task, variant, noise, label, d)
                        common = sorted(set(units) & set(base))
                        if not common:
                            continue
                        x = np.array([units[u] for u in common])
                        diff = x - np.array([base[u] for u in common])
                        rng = np.random.default_rng(12345)
                        boot = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(1)
                        lo, hi = np.percentile(boot, [2.5, 97.5])
                        rows.append({
                            "task": task, "variant": variant, "executor": label, "noise": noise, "delay": d,
                            "units": len(common), "solve_rate": float(x.mean()), "baseline": baseline,
                            "diff": float(diff.mean()), "diff_lo": float(lo), "diff_hi": float(hi),
                        })  # fmt: skip
    return rows


def diagnostic_rows(exp: DictConfig, sweep: dict[str, Any], out: Path) -> list[dict]:
    """Per (task, variant): the multimodality diagnostic of its trained models (mean over seeds of
    ``eval.modality.demonstration_modality``: share of demonstration states with bimodal sampled
    chunks, mean coefficient, gap between two samples at one observation), beside naive async's
    mean chunk-switch jump at each delay (all seeds' episodes, the lowest noise level)."""
    import numpy as np

    rows = []
    noise = min(sweep["noise"])
    for task in exp.tasks:
        for variant in exp.variants:
            found = [out / "diagnostic" / task / variant / f"s{int(sd)}.json" for sd in exp.seeds]
            diags = [json.loads(f.read_text()) for f in found if f.exists()]
            if not diags:
                continue
            row = {"task": task, "variant": variant, "seeds": len(diags), "noise": noise}
            for k in ("bimodal_share", "mean_coefficient", "sample_gap"):
                row[k] = float(np.mean([dg[k] for dg in diags]))
            runs_baseline = BASELINE in ((exp.variants[variant] or {}).get("executors") or [BASELINE])
            base = variant if runs_baseline else trained_by(exp, variant)
            for d in sweep["delays"]:
                jumps = []
                for sd in exp.seeds:
                    f = _cell_file(out, base, task, int(sd), noise, BASELINE, d)
                    if f.exists():
                        jumps += [e["boundary_jump"] for e in json.loads(f.read_text())["episodes"]]
                row[f"jump_d{d}"] = float(np.mean(jumps)) if jumps else None
            rows.append(row)
    return rows
