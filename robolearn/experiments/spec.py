"""The experiment file: load it (with command-line overrides), validate it, expand a ``suite:``
block into its tasks, and plan its cells."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robolearn.config import compose, find_config, load_yaml, refuse_changed_settings, to_dict
from robolearn.errors import ConfigError


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """The experiment file, with command-line ``overrides`` for every cell: ``eval.episodes=10``
    (and ``eval.n_envs`` / ``eval.seed_start``) set the evaluation, ``seeds=[0]`` (or ``seeds=0``)
    the training seeds, ``collect.episodes=N`` the demonstrations collected for every task;
    anything else (``algo.steps=500``) is a training override for every cell, applied after the
    variants' own (``exp.train_cli``)."""
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
        else:  # after the variants' own settings: a budget given here holds for every cell
            exp.train_cli = [*(exp.get("train_cli") or []), o]
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
        noise = ((t or {}).get("collect") or {}).get("noise", 0.0)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise ConfigError(f"{path}: tasks.{name}.collect.noise: expected a number >= 0, found {noise!r}")
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


def resume_into(exp: DictConfig, out: Path) -> list[int] | None:
    """Check that ``out`` holds this experiment (any other setting: one line naming what differs).
    Training seeds are the one setting that may change between runs into the same ``out``: its cells
    are per seed, so ``seeds=[1]`` after a run with ``seeds=[0]`` runs seed 1 and the tables pool both.
    ``exp.seeds`` becomes the union (sorted); returns the seeds to run now, None when unchanged."""
    saved = Path(out) / "experiment.yaml"
    old = [int(sd) for sd in load_yaml(saved).get("seeds") or []] if saved.is_file() else None
    new = [int(sd) for sd in exp.seeds]
    exp.seeds = old if old else new  # every other setting must match the finished cells
    refuse_changed_settings(exp, out, False, None, file="experiment.yaml")
    exp.seeds = sorted(set(exp.seeds) | set(new))
    return None if not old or old == new else new


def select(
    exp: DictConfig,
    only_tasks: list[str] | None = None,
    only_variants: list[str] | None = None,
    only_seeds: list[int] | None = None,
) -> list[tuple[str, str, int]]:
    """The cells of ``plan(exp)`` among the tasks, variants and seeds asked for (None: all); a name
    the experiment does not have stops here, in one line, before any work."""
    for flag, asked, have in (("tasks", only_tasks, exp.tasks), ("variants", only_variants, exp.variants),
                              ("seeds", only_seeds, list(exp.seeds))):  # fmt: skip
        unknown = [x for x in asked or [] if x not in have]
        if unknown:
            raise ConfigError(f"{exp._path}: --{flag} {unknown}: not in the experiment's {flag} {list(have)}")
    return [
        c
        for c in plan(exp)
        if (not only_variants or c[0] in only_variants)
        and (not only_tasks or c[1] in only_tasks)
        and (only_seeds is None or c[2] in only_seeds)
    ]


def rank_share(exp: DictConfig, cells: list[tuple[str, str, int]], rank: int, world: int) -> list[tuple[str, str, int]]:
    """The (variant, task, seed) cells of one of ``world`` ranks: whole trained models dealt round
    robin, a model and every variant re-sampled from it (``from:``) on the same rank."""
    if world <= 1:
        return cells
    models = list(dict.fromkeys((trained_by(exp, v), t, sd) for v, t, sd in cells))
    mine = {m for i, m in enumerate(models) if i % world == rank}
    return [c for c in cells if (trained_by(exp, c[0]), c[1], c[2]) in mine]


def trained_by(exp: DictConfig, variant: str) -> str:
    return str((exp.variants[variant] or {}).get("from", variant))


def cell_cfg(exp: DictConfig, variant: str, task: str, seed: int, data: str | None) -> DictConfig:
    """The full training config of the model a cell evaluates: the task's overrides, then the
    experiment's ``train:``, then the variant's own (a variant's setting wins over the file's
    common one), then the command line's (a budget for every cell), then the seed."""
    tv = exp.variants[trained_by(exp, variant)]
    overrides = [
        *exp.tasks[task].overrides,
        *(exp.get("train") or []),
        *tv.train,
        *(exp.get("train_cli") or []),
        f"seed={seed}",
    ]
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
