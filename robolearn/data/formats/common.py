"""Helpers every format module shares: optional imports, feature names to zarr keys, summaries."""

from __future__ import annotations

from typing import Any

from robolearn.errors import ConfigError, DataError


def need(module: str, extra: str):
    """Import an optional dependency, or one line saying which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"this conversion needs the '{module}' package: pip install 'robolearn[{extra}]'") from None


def safe_key(name: str, taken: set[str]) -> str:
    """A zarr key for a feature name: LeRobot's ``observation.`` / ``observation.images.``
    prefixes dropped, other dots and slashes to underscores (``observation.state`` -> ``state``,
    ``observation.images.top`` -> ``top``, ``next.reward`` -> ``next_reward``); the full
    name is kept (underscored) where the short one is taken."""
    short = name
    for prefix in ("observation.images.", "observation.image.", "observation."):
        if short.startswith(prefix) and len(short) > len(prefix):
            short = short[len(prefix) :]
            break
    for cand in (short, name):
        key = cand.replace(".", "_").replace("/", "_")
        if key not in taken:
            return key
    raise DataError(f"feature {name!r}: its key {key!r} is taken by another feature")


def summary_line(s: dict[str, Any]) -> str:
    keys = ", ".join(f"{k} {tuple(v)}" for k, v in s["shapes"].items())
    return f"{s['episodes']} episodes, {s['frames']} frames -> {s['path']}; keys: {keys}"
