"""Configs: YAML files in ``configs/`` composed by group, plus dotted overrides.

Why OmegaConf (and not Hydra): we want YAML files, ``a.b=c`` overrides from the command line
and a resolved config saved next to every run — OmegaConf does exactly that with one merge
call. Hydra's runtime (working-directory changes, global state, ``_target_`` instantiation)
would be a framework inside the framework; the group-selection part we need is ten lines here.

A run config has the groups ``task``, ``policy``, ``algo``, ``exec`` (each a YAML file under
``configs/<group>/<name>.yaml``) and top-level keys (``data``, ``run_dir``, ``eval``, ...).
On the command line, ``task=fetch_push`` picks a file and ``policy.head.loss=mse`` overrides
a single value.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robolearn.errors import ConfigError

GROUPS = ("task", "policy", "algo", "exec")

DEFAULTS: dict[str, Any] = {
    "task": "fetch_push",
    "policy": "regression",
    "algo": "bc",
    "exec": "receding",
    "data": None,          # path of the zarr dataset (falls back to task.data)
    "run_dir": None,       # where checkpoints, logs and metrics land
    "device": "auto",      # auto | cpu | cuda
    "seed": 0,
    "eval": {"episodes": 50, "n_envs": 10, "seed_start": 100_000, "videos": 2,
             "workers": "auto"},  # evaluation env processes: auto (when cores are free) | 0 | N
}


def config_root() -> Path:
    env = os.environ.get("ROBOLEARN_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "configs"


def group_options(group: str) -> list[str]:
    d = config_root() / group
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_yaml(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml errors: one line is enough
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(cfg).__name__}")
    return cfg


def load_group(group: str, name: str) -> DictConfig:
    path = Path(name) if name.endswith(".yaml") else config_root() / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{group}={name}: no file {path}; choose one of: {', '.join(group_options(group)) or '(none)'}")
    cfg = load_yaml(path)
    cfg["_name"] = path.stem
    return cfg


def compose(overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> DictConfig:
    """Defaults <- base <- group files chosen by ``group=name`` <- dotted overrides."""
    overrides = list(overrides or [])
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
        cfg = OmegaConf.merge(cfg, OmegaConf.create({k: v for k, v in base.items() if not (k in GROUPS and isinstance(v, str))}))
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotted))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override in {dotted}: {str(e).splitlines()[0]}") from None
    return cfg


def to_dict(cfg: DictConfig | dict) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def save_config(cfg: DictConfig | dict, path: str | Path) -> None:
    """Resolved config, written atomically as YAML (human) — JSON copies go with checkpoints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg))))
    os.replace(tmp, path)


def write_json(obj: Any, path: str | Path) -> None:
    """Atomic JSON write: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")  # per process: writers never share a tmp
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
