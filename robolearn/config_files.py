"""Where config files are found and how one is read; no composition (that is ``robolearn.config``).

A leaf module: the model side may read a file of the config folders (an encoder preset in an old
checkpoint) without importing the orchestration around configs.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robolearn.errors import ConfigError

_EXTRA_DIRS: list[Path] = []  # set by --config-dir


def config_root() -> Path:
    """The configs shipped inside the package (``robolearn/configs``; ``configs/`` in a checkout
    is a link to it)."""
    return Path(__file__).resolve().parent / "configs"


def add_config_dir(path: str | Path) -> None:
    """A user's config folder (``--config-dir``): searched before the shipped configs."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"--config-dir {p}: expected a folder of configs (<group>/<name>.yaml), found no such folder")
    _EXTRA_DIRS.insert(0, p.resolve())


def config_dirs() -> list[Path]:
    """Where ``group=name`` is looked up, first match wins: ``--config-dir`` folders, then
    ``$ROBOLEARN_CONFIGS``, then ``./configs`` of the working directory, then the shipped configs.
    A user's folder may hold only the files it adds or overrides."""
    dirs = list(_EXTRA_DIRS)
    env = os.environ.get("ROBOLEARN_CONFIGS")
    if env:
        dirs.append(Path(env))
    local = Path.cwd() / "configs"
    if local.is_dir():
        dirs.append(local)
    dirs.append(config_root())
    out: list[Path] = []
    for d in dirs:
        r = d.resolve()
        if r not in out:
            out.append(r)
    return out


def find_config(group: str, name: str) -> Path | None:
    """``<dir>/<group>/<name>.yaml`` in the first config folder that has it."""
    for d in config_dirs():
        p = d / group / f"{name}.yaml"
        if p.is_file():
            return p
    return None


def group_options(group: str) -> list[str]:
    """The names a user can pick (files starting with ``_`` are shared bases, not choices)."""
    names = {p.stem for d in config_dirs() if (d / group).is_dir() for p in (d / group).glob("*.yaml")}
    return sorted(n for n in names if not n.startswith("_"))


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
