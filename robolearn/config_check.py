"""Every option is checked before work starts, against the typed schemas of
``config_schema.py``: unknown keys (with the closest valid one), types and ranges. One line per
problem, naming the key, what was expected and what was found.

Keys of the components built from code are checked against their constructors' typed signatures
(heads, executors); keys under ``task.kwargs`` and inside ``policy.encoder`` are the env's and the
encoder builder's to check. Everywhere else an override must name a key that the composed config or
its schema has.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from typing import Any, Union, get_args, get_origin

from omegaconf import DictConfig, OmegaConf

from robolearn.config_schema import (
    ALGOS,
    PolicySchema,
    RunSchema,
    _int,
    algo_schema,
    conforms,
    dataclass_fields,
    describe,
    schema_of_executor,
    schema_of_head,
)
from robolearn.errors import ConfigError

# Paths whose keys are checked by the component they configure, not here: the env's options, and
# the encoder's per-key options (they depend on the task's observation keys).
OPEN_PATHS = ("task.kwargs", "policy.encoder.keys")
TOP_KEYS = tuple(dataclass_fields(RunSchema))


def flat_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items_ex(resolve=False) if isinstance(cfg, DictConfig) else []:
        path = f"{prefix}{k}"
        out.append(path)
        if isinstance(v, DictConfig):
            out += flat_keys(v, path + ".")
    return out


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _fields(path: str, node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema of the mapping at ``path``: ``{key: annotation}`` and whether other keys are open."""
    if path == "":
        return dataclass_fields(RunSchema), False
    if path == "algo":
        return dataclass_fields(algo_schema(str(node.get("name")))), False
    if path == "exec":
        fields, extra = schema_of_executor(str(node.get("name") or node.get("_name") or "receding"))
        return {"name": str, **fields}, extra
    if path == "policy.head":
        name = node.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"policy.head.name: expected a head name, found {_type_name(name)} {name!r}")
        fields, extra = schema_of_head(name)
        return {"name": str, **fields}, extra
    if path == "task.policy_defaults":
        return dataclass_fields(PolicySchema), False
    schema = _schema_at(path)
    if schema is not None:
        return dataclass_fields(schema), False
    return {}, True


def _schema_at(path: str) -> type | None:
    """The dataclass at a dotted path of RunSchema (``policy.encoder.rgb``), None for an open map."""
    schema: Any = RunSchema
    for part in path.split("."):
        if not dataclasses.is_dataclass(schema):
            return None
        tp = dataclass_fields(schema).get(part)
        args = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (Union, types.UnionType) else [tp]
        schema = next((a for a in args if dataclasses.is_dataclass(a)), None)
    return schema


NESTED = (
    "eval",
    "task",
    "policy",
    "algo",
    "exec",
    "policy.head",
    "task.policy_defaults",
    "policy.encoder",
    "policy.encoder.lowdim",
    "policy.encoder.rgb",
)


def _origin(path: str, cfg: dict[str, Any]) -> str:
    group = path.split(".")[0]
    name = (cfg.get(group) or {}).get("_name") if isinstance(cfg.get(group), dict) else None
    return f"{group}={name}" if name else "config"


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}?" if near else f"; expected some of {sorted(known)}"
    return ConfigError(f"{where}: unknown key {key} (robolearn reads no such option){hint}")


def _walk(path: str, node: dict[str, Any], root: dict[str, Any]) -> None:
    fields, extra = _fields(path, node)
    prefix = path + "." if path else ""
    for k, v in node.items():
        k = str(k)
        if k.startswith("_") or k == "base":  # _name, _path: bookkeeping; base: resolved inheritance
            continue
        key = prefix + k
        if k not in fields:
            if extra:
                continue
            raise _unknown(key, [prefix + f for f in fields], _origin(key, root))
        if not conforms(fields[k], v):
            whose = f" (an option of head {node.get('name')!r})" if path == "policy.head" else ""
            raise ConfigError(f"{key}: expected {describe(fields[k])}{whose}, found {_type_name(v)} {v!r}")
        if key in NESTED and isinstance(v, dict):
            _walk(key, v, root)


def validate(cfg: DictConfig) -> None:
    """The composed config against the schemas: every key known, of its type, in its range."""
    data = OmegaConf.to_container(cfg, resolve=True)
    _walk("", data, data)
    pol = data.get("policy") or {}
    n, h = pol.get("n_action_steps"), pol.get("horizon")
    if _int(n) and _int(h) and n > h:
        raise ConfigError(f"policy.n_action_steps: expected 1..horizon={h}, found {n}")


def validate_section(path: str, node: dict[str, Any]) -> None:
    """One component's options outside a composed run config (``exec`` or ``policy.head`` given to
    ``robolearn eval``), against the same schema compose uses."""
    _walk(path, dict(node), {})


def check_overrides(base: DictConfig, dotted: list[str]) -> None:
    """Each ``key=value`` names a key that ``base`` or its schema has (types and ranges are checked
    on the merged config by ``validate``); an unknown one stops here with the closest known key."""
    known = [k for k in flat_keys(base) if not k.split(".")[-1].startswith("_")]
    data = OmegaConf.to_container(base, resolve=False)
    for o in dotted:
        key, _, _ = o.partition("=")
        key = key.strip().lstrip("+")
        if any(key == p or key.startswith(p + ".") for p in OPEN_PATHS):
            continue
        node = OmegaConf.select(base, key, default="__missing__", throw_on_missing=False)
        if not (isinstance(node, str) and node == "__missing__"):
            continue
        parent, _, leaf = key.rpartition(".")
        if parent in ("",) + NESTED:
            pnode = dict(OmegaConf.select(base, parent) or {}) if parent else data
            for d in dotted:  # a name chosen on the same line picks the schema (exec.name=rtc exec.mask=hard)
                if d.partition("=")[0].strip() == f"{parent}.name":
                    pnode = {**pnode, "name": d.partition("=")[2].strip()}
            fields, extra = _fields(parent, pnode)
            if extra or leaf in fields:
                known += [f"{parent}.{f}" if parent else f for f in fields]
                continue
            known += [f"{parent}.{f}" if parent else f for f in fields]
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else "; see `robolearn list` and the group's YAML"
        raise ConfigError(f"override {o!r}: unknown key {key!r}{hint}")


__all__ = ["ALGOS", "OPEN_PATHS", "TOP_KEYS", "check_overrides", "flat_keys", "validate", "validate_section"]
