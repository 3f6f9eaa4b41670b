"""Configs: YAML files in ``configs/`` composed by group, plus dotted overrides.

Why OmegaConf (and not Hydra): we want YAML files, ``a.b=c`` overrides from the command line
and a resolved config saved next to every run — OmegaConf does exactly that with one merge
call. Hydra's runtime (working-directory changes, global state, ``_target_`` instantiation)
would be a framework inside the framework; the group-selection part we need is ten lines here.

A run config has the groups ``task``, ``policy``, ``algo``, ``exec`` (each a YAML file under
``configs/<group>/<name>.yaml``) and top-level keys (``data``, ``run_dir``, ``eval``, ...).
On the command line, ``task=fetch_push`` picks a file and ``policy.head.loss=mse`` overrides
a single value. ``recipe=NAME`` (``configs/recipe/NAME.yaml``: a documented list of such
overrides, e.g. the Push-T CPU recipe) stands for its overrides, placed where it stands on the
line, so later overrides change it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robolearn.atomic import write_text
from robolearn.config_check import check_overrides, validate
from robolearn.config_files import (  # noqa: F401  (re-exported: robolearn.config is the public entry)
    add_config_dir,
    config_dirs,
    config_root,
    find_config,
    group_options,
    load_yaml,
)
from robolearn.errors import ConfigError

GROUPS = ("task", "policy", "algo", "exec")

DEFAULTS: dict[str, Any] = {
    "task": "fetch_push",
    "policy": "regression",
    "algo": "bc",
    "exec": "receding",
    "data": None,  # path of the zarr dataset (falls back to task.data)
    "run_dir": None,  # where checkpoints, logs and metrics land
    "device": "auto",  # auto | cpu | cuda
    "dist_timeout_s": 1800,  # torchrun: seconds a rank waits for the others before it stops
    "seed": 0,
    "eval": {
        "episodes": 50,
        "n_envs": 10,
        "seed_start": 100_000,
        "videos": 2,
        "workers": "auto",
        "action_noise": 0.0,
    },  # evaluation env processes: auto (when cores are free) | 0 | N
}


def load_group(group: str, name: str) -> DictConfig:
    path = Path(name) if name.endswith(".yaml") else find_config(group, name)
    if path is None and group == "task" and name.startswith("metaworld/"):
        return _suite_task(name)
    if path is None or not path.is_file():
        where = path or f"{group}/{name}.yaml in " + ", ".join(str(d) for d in config_dirs())
        raise ConfigError(
            f"{group}={name}: no file {where}; choose one of: {', '.join(group_options(group)) or '(none)'}"
        )
    cfg = load_yaml(path)
    parent = cfg.pop("base", None)  # `base: NAME`: this file's keys on top of <group>/NAME.yaml
    if parent is not None:
        if str(parent) == path.stem:
            raise ConfigError(f"{path}: key 'base': expected another file of group {group}, found itself")
        cfg = OmegaConf.merge(load_group(group, str(parent)), cfg)
    cfg["_name"] = path.stem
    return cfg


def _suite_task(name: str) -> DictConfig:
    """``task=metaworld/<env>[_image]``: the suite's template with the env's name and data path
    filled in (one template for the 50 tasks, never 50 copied files)."""
    from robolearn.envs.suites import PREFIX, check_name

    env = name.removeprefix(PREFIX)
    image = env.endswith("_image")
    check_name(env.removesuffix("_image"))
    cfg = load_group("task", "metaworld/_base_image" if image else "metaworld/_base")
    cfg.name = name
    cfg.data = f"data/{name}.zarr"
    cfg["_name"] = name
    return cfg


def compose(overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> DictConfig:
    """Defaults <- base <- group files chosen by ``group=name`` <- dotted overrides."""
    overrides = expand_recipes(list(overrides or []))
    choice = dict(DEFAULTS)
    if base:
        choice.update({k: v for k, v in base.items() if k in GROUPS and isinstance(v, str)})
    dotted = []
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override {o!r}: expected key=value")
        k, v = o.split("=", 1)
        if k in GROUPS:
            choice[k] = v
        else:
            dotted.append(o)
    cfg = OmegaConf.create({k: v for k, v in DEFAULTS.items() if k not in GROUPS})
    for g in GROUPS:
        cfg[g] = load_group(g, str(choice[g]))
    # A task may carry policy defaults that suit it (e.g. a shorter chunk for 50-step tasks).
    task_policy = cfg.task.get("policy_defaults")
    if task_policy:
        cfg.policy = OmegaConf.merge(cfg.policy, task_policy)
    if base:
        cfg = OmegaConf.merge(
            cfg, OmegaConf.create({k: v for k, v in base.items() if not (k in GROUPS and isinstance(v, str))})
        )
    check_overrides(cfg, dotted)  # unknown keys stop here, with the closest valid key
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotted))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override in {dotted}: {str(e).splitlines()[0]}") from None
    _resolve_encoder_preset(cfg)
    try:
        OmegaConf.to_container(cfg, resolve=True)  # every ${...} resolves, or one line naming its key
        validate(cfg)  # every key known, typed and in range (config_schema.py)
    except OmegaConfBaseException as e:  # e.g. an interpolation that cannot resolve
        key = getattr(e, "full_key", None)
        raise ConfigError(
            f"config{f' key {key!r}' if key else ''}: expected a value or an interpolation that resolves, "
            f"found {str(e).splitlines()[0]}"
        ) from None
    return cfg


def _resolve_encoder_preset(cfg: DictConfig) -> None:
    """``policy.encoder.preset=NAME`` becomes the preset's keys under the given ones, here, when the
    config is composed: the saved config and every checkpoint then say what the encoder is, and the
    model side never reads config files."""
    enc = cfg.policy.get("encoder")
    if not isinstance(enc, DictConfig) or not enc.get("preset"):
        return
    name = str(enc.preset)
    path = find_config("policy/encoder", name)
    if path is None:
        have = ", ".join(group_options("policy/encoder")) or "(none)"
        raise ConfigError(f"policy.encoder.preset={name}: no file policy/encoder/{name}.yaml; choose one of: {have}")
    own = OmegaConf.create({k: v for k, v in enc.items() if k != "preset"})
    cfg.policy.encoder = OmegaConf.merge(load_yaml(path), own)


def expand_recipes(overrides: list[str], depth: int = 0) -> list[str]:
    """Replace each ``recipe=NAME`` by the overrides listed in ``configs/recipe/NAME.yaml``
    (a recipe may start from another)."""
    if depth > 8:
        raise ConfigError("recipe: expected recipes to end within 8 levels, found a cycle")
    out: list[str] = []
    for o in overrides:
        k, _, v = o.partition("=")
        if k.strip() != "recipe":
            out.append(o)
            continue
        path = Path(v) if v.endswith(".yaml") else find_config("recipe", v)
        if path is None or not path.is_file():
            raise ConfigError(
                f"recipe={v}: no file {path or 'recipe/' + v + '.yaml'}; choose one of: "
                f"{', '.join(group_options('recipe')) or '(none)'}"
            )
        items = load_yaml(path).get("overrides")
        if not OmegaConf.is_list(items) or not all(isinstance(i, str) and "=" in i for i in items):
            raise ConfigError(f"{path}: key 'overrides': expected a list of key=value strings, found {items!r}")
        out.extend(expand_recipes([str(i) for i in items], depth + 1))
    return out


# keys that say where or how a run executes, not what it learns: resuming with others is fine
RUN_ENV_KEYS = ("device", "dist_timeout_s", "eval.videos", "eval.workers", "_path", "run_dir")  # where, not what


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def changed_settings(cfg: DictConfig, saved_path: str | Path) -> list[str]:
    """What differs between ``cfg`` and a run directory's saved ``config.yaml``, one
    ``key: saved -> now`` string per key (empty when there is no saved config)."""
    saved_path = Path(saved_path)
    if not saved_path.is_file():
        return []
    saved = to_dict(load_yaml(saved_path))
    old, new = _flat(saved), _flat(to_dict(cfg))
    # an option added by a newer robolearn, at its shipped default, is not a change the user made
    defaults = _flat(DEFAULTS)
    for group in ("algo", "policy", "exec", "task"):
        name = (saved.get(group) or {}).get("_name") if isinstance(saved.get(group), dict) else None
        if name:
            with contextlib.suppress(ConfigError):  # the group file is gone: every difference counts
                defaults.update(_flat({group: to_dict(load_group(group, str(name)))}))
    new_default = {k for k in set(new) - set(old) if k in defaults and new[k] == defaults[k]}
    keys = sorted((set(old) | set(new)) - new_default)
    return [
        f"{k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}"
        for k in keys
        if k not in RUN_ENV_KEYS and old.get(k) != new.get(k)
    ]


def refuse_changed_settings(
    cfg: DictConfig, run_dir: str | Path, allowed: bool, flag: str | None, file: str = "config.yaml"
) -> None:
    """Re-running a command in an existing run directory (or experiment output, ``file`` =
    experiment.yaml) resumes it; with other settings that would silently mix two runs, so it
    stops and says what differs (unless ``allowed``; ``flag`` None: there is no way to allow it)."""
    diff = changed_settings(cfg, Path(run_dir) / file)
    if diff and not allowed:
        shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
        if file == "config.yaml":
            what, where = "a run", "run_dir"
        else:
            what, where = "an experiment", "--out (its finished cells were made with those settings)"
        raise ConfigError(
            f"{run_dir}: holds {what} with other settings ({shown}); choose a new {where}"
            + (f", or add {flag} to resume it with these" if flag else "")
        )


def to_dict(cfg: DictConfig | dict) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def save_config(cfg: DictConfig | dict, path: str | Path) -> None:
    """The config as YAML (human), written atomically. Interpolations such as
    ``${oc.env:VAR}`` stay as written, so an environment variable's value (a secret, a private
    path) never lands on disk; they resolve again when the file is read."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    write_text(path, OmegaConf.to_yaml(node, resolve=False))
