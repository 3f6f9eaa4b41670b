"""Every option is checked before work starts: unknown keys (with the closest valid one), types
and ranges. One line per problem, naming the key, what was expected and what was found.

Keys a builder validates itself (head, encoder and executor options, task kwargs) may be added
freely under those paths; everywhere else an override must name a key that the composed config
has. Types follow the shipped value (an int stays an int: ``algo.steps=20.7`` or ``=true`` is an
error); ranges are the table below.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robolearn.errors import ConfigError

# Paths whose keys are checked by the component they configure (heads, encoders, executors, tasks).
OPEN_PATHS = ("policy.head", "policy.encoder", "exec", "task.kwargs", "task.policy_defaults")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rule(test: Callable[[Any], bool], expected: str, nullable: bool = False):
    def check(v) -> str | None:
        if v is None and nullable:
            return None
        return None if test(v) else expected + (" (or null)" if nullable else "")

    return check


POS_INT = _rule(lambda v: _int(v) and v >= 1, "a positive int")
NONNEG_INT = _rule(lambda v: _int(v) and v >= 0, "an int >= 0")
POS_NUM = _rule(lambda v: _num(v) and v > 0, "a number > 0")
NONNEG_NUM = _rule(lambda v: _num(v) and v >= 0, "a number >= 0")
UNIT = _rule(lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]")
UNIT_OPEN = _rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)")


def one_of(*names: str):
    return _rule(lambda v: v in names, "one of " + " | ".join(names))


RULES: dict[str, Callable[[Any], str | None]] = {
    "seed": NONNEG_INT,
    "device": _rule(
        lambda v: isinstance(v, str) and (v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())),
        "auto | cpu | cuda | cuda:N",
    ),
    "dist_timeout_s": POS_NUM,
    "eval.episodes": POS_INT,
    "eval.n_envs": POS_INT,
    "eval.seed_start": NONNEG_INT,
    "eval.videos": NONNEG_INT,
    "eval.action_noise": _rule(
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 10,
        "a number >= 0 (std of execution noise, in half action ranges)",
    ),
    "eval.workers": _rule(lambda v: v == "auto" or (_int(v) and v >= 0), "auto or an int >= 0"),
    "policy.obs_horizon": POS_INT,
    "policy.horizon": POS_INT,
    "policy.n_action_steps": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "policy.normalizer": one_of("minmax", "gaussian"),
    "policy.aux_key": _rule(lambda v: isinstance(v, str) and bool(v.strip()), "a dataset key name", nullable=True),
    "policy.aux_weight": NONNEG_NUM,
    "algo.steps": POS_INT,
    "algo.batch_size": POS_INT,
    "algo.lr": POS_NUM,
    "algo.fused_optimizer": _rule(lambda v: isinstance(v, bool), "true or false"),
    "algo.weight_decay": NONNEG_NUM,
    "algo.betas": _rule(
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v),
        "two numbers in [0, 1)",
    ),
    "algo.warmup_steps": NONNEG_INT,
    "algo.ema_decay": UNIT_OPEN,
    "algo.grad_clip": POS_NUM,
    "algo.val_fraction": UNIT_OPEN,
    "algo.log_every": POS_INT,
    "algo.val_every": POS_INT,
    "algo.ckpt_every": POS_INT,
    "algo.max_episodes": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "algo.eval_every": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "algo.eval_last_k": POS_INT,
    "algo.rounds": NONNEG_INT,
    "algo.demo_episodes": POS_INT,
    "algo.episodes_per_round": POS_INT,
    "algo.labels_per_round": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "algo.max_rollouts_per_round": POS_INT,
    "algo.beta": UNIT,
    "algo.beta_schedule": one_of("constant", "linear", "exponential"),
    "algo.beta_decay": UNIT,
    "algo.labels": one_of("chunk", "step"),
    "algo.retrain": one_of("scratch", "warm"),
    "algo.warm_steps": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "algo.heldout_episodes": NONNEG_INT,
    "algo.eval_episodes": _rule(lambda v: _int(v) and v >= 1, "a positive int", nullable=True),
    "algo.noise_init": NONNEG_NUM,
    "algo.noise_kind": one_of("full", "diag", "isotropic"),
    "algo.noise_scale": NONNEG_NUM,
    "algo.noise_max": _rule(lambda v: _num(v) and v > 0, "a number > 0", nullable=True),
    "algo.method": one_of("gail", "airl"),
    "algo.divergence": one_of("forward_kl", "reverse_kl", "js", "chi2"),
    "algo.env_steps_per_round": _rule(lambda v: _int(v) and v >= 1, "a positive int (the RL budget per round)"),
    "algo.disc_updates": POS_INT,
    "algo.disc_batch": POS_INT,
    "algo.disc_rounds": _rule(lambda v: _int(v) and v >= 0, "an int >= 0", nullable=True),
    "algo.disc_lr": POS_NUM,
    "algo.grad_penalty": NONNEG_NUM,
    "algo.spectral_norm": _rule(lambda v: isinstance(v, bool), "true or false"),
    "algo.disc_chunk": POS_INT,
    "algo.gamma": UNIT_OPEN,
    "algo.ppo_epochs": POS_INT,
    "algo.ppo_lr": POS_NUM,
    "algo.threshold": POS_NUM,
    "algo.release": UNIT,
    "algo.min_takeover": NONNEG_INT,
}


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


def check_overrides(base: DictConfig, dotted: list[str]) -> None:
    """Each ``key=value`` names a key ``base`` has (outside OPEN_PATHS) with a value of its type."""
    known = [k for k in flat_keys(base) if not k.split(".")[-1].startswith("_")]
    for o in dotted:
        key, _, raw = o.partition("=")
        key = key.strip().lstrip("+")
        if any(key == p or key.startswith(p + ".") for p in OPEN_PATHS):
            continue
        node = OmegaConf.select(base, key, default="__missing__", throw_on_missing=False)
        if isinstance(node, str) and node == "__missing__":
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else "; see `robolearn list` and the group's YAML"
            raise ConfigError(f"override {o!r}: unknown key {key!r}{hint}")
        # an interpolation (${...}) resolves only in the whole config: compose checks it there
        new = OmegaConf.select(OmegaConf.from_dotlist([o]), key, throw_on_resolution_failure=False)
        if node is None or new is None or isinstance(node, DictConfig):
            continue
        ok = (
            (_int(node) and _int(new))
            or (isinstance(node, float) and _num(new))
            or (isinstance(node, bool) and isinstance(new, bool))
            or (isinstance(node, str) and isinstance(new, str))
            or (OmegaConf.is_list(node) and OmegaConf.is_list(new))
        )
        if not ok and key not in RULES:  # RULES decide for keys with several legal types
            raise ConfigError(
                f"override {o!r}: {key} expected a value of type {_type_name(node)} (like {node!r}), "
                f"found {_type_name(new)} {raw!r}"
            )


def check_values(cfg: DictConfig) -> None:
    """Ranges of the known keys of a composed config (from YAML files and overrides alike)."""
    for key, rule in RULES.items():
        v = OmegaConf.select(cfg, key, default="__absent__", throw_on_missing=False)
        if isinstance(v, str) and v == "__absent__":
            continue
        v = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        problem = rule(v)
        if problem:
            raise ConfigError(f"{key}: expected {problem}, found {_type_name(v)} {v!r}")
    pol = cfg.get("policy")
    if pol is not None:
        n, h = pol.get("n_action_steps"), pol.get("horizon")
        if _int(n) and _int(h) and n > h:
            raise ConfigError(f"policy.n_action_steps: expected 1..horizon={h}, found {n}")


# Keys a group's files may hold outside OPEN_PATHS: every key some shipped file of the group has
# (bases included). A key no shipped file knows is a typo or a leftover that nothing would read.
_SHIPPED_KEYS: dict[str, set[str]] = {}
TOP_KEYS = ("data", "run_dir", "device", "dist_timeout_s", "seed", "eval", "task", "policy", "algo", "exec")


def shipped_keys(group: str) -> set[str]:
    if group not in _SHIPPED_KEYS:
        from robolearn.config_files import config_root, load_yaml

        keys: set[str] = {"_name", "base"}
        for p in (config_root() / group).rglob("*.yaml"):
            keys |= {str(k) for k in load_yaml(p)}
        _SHIPPED_KEYS[group] = keys
    return _SHIPPED_KEYS[group]


def check_group_keys(cfg: DictConfig) -> None:
    """Every key of the composed groups (from shipped files, a user's files and overrides) is one
    that robolearn reads: one line naming the group, the key and the closest known one."""
    for k in cfg:
        if str(k) not in TOP_KEYS and not str(k).startswith("_"):
            near = difflib.get_close_matches(str(k), TOP_KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; expected some of {list(TOP_KEYS)}"
            raise ConfigError(f"config: unknown top-level key {str(k)!r}{hint}")
    for group in ("task", "policy", "algo"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        known = shipped_keys(group)
        for k in node:
            if str(k) in known or any(f"{group}.{k}" == p for p in OPEN_PATHS):
                continue
            near = difflib.get_close_matches(str(k), sorted(known - {"_name", "base"}), n=1, cutoff=0.6)
            hint = f"; did you mean {group}.{near[0]}?" if near else ""
            raise ConfigError(
                f"{group}={node.get('_name', '?')}: unknown key {group}.{k} (no robolearn {group} config has it){hint}"
            )
