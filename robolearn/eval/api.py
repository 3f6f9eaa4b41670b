"""Evaluation from Python, as `robolearn eval` does it: ``robolearn.evaluate(run_or_ckpt, ...)``.

A run directory or a checkpoint folder; the executor the run was evaluated with in training
(``exec`` of its config.yaml) unless one is named; ``head.KEY=VALUE`` / ``exec.KEY=VALUE``
overrides (a head's sampling options, an executor's options); metrics.json (and videos) in
``out`` (default: the run's ``eval/<executor>``). The CLI only parses flags and calls these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robolearn.errors import ConfigError, DataError


def resolve_checkpoint(run_or_ckpt: str | Path) -> Path:
    """A run directory means its ``checkpoints/last``; anything else is taken as a checkpoint."""
    p = Path(run_or_ckpt)
    return p / "checkpoints" / "last" if (p / "checkpoints" / "last").is_dir() else p


def checkpoint_task(policy, max_steps: int | None = None):
    """The task a checkpoint was trained on, optionally with another episode step limit."""
    from robolearn.envs import make_task

    t = policy.meta.get("task")
    if not isinstance(t, dict) or not t.get("name"):
        raise DataError(
            f"{getattr(policy, 'path', 'checkpoint')}/config.json: key 'task.name' expected the task the policy was "
            f"trained on (written by robolearn train), found {'no task' if t is None else repr(t)[:80]}; evaluate "
            "it from Python with evaluate_policy(policy, make_task(NAME), ...)"
        )
    kwargs = dict(t.get("kwargs") or {})
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    return make_task(t["name"], **kwargs)


def run_executor(ckpt: Path) -> dict | None:
    """The executor a checkpoint's run evaluated with during training (``exec`` of the run's
    config.yaml, e.g. the Push-T recipe's ``stride: 2``), or None for a checkpoint outside a run."""
    cfg_file = ckpt.parent.parent / "config.yaml"
    if ckpt.parent.name != "checkpoints" or not cfg_file.is_file():
        return None
    from omegaconf import OmegaConf

    from robolearn.config_files import load_yaml

    try:
        ex = OmegaConf.to_container(load_yaml(cfg_file).get("exec"), resolve=True)
    except Exception:
        return None  # an unreadable run config: the checkpoint alone still evaluates
    if not isinstance(ex, dict) or "name" not in ex:
        return None
    return {str(k): v for k, v in ex.items() if k != "_name"}


def split_overrides(overrides: list[str] | tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``head.KEY=VALUE`` (or ``policy.head.KEY=...``) -> head options; anything else
    (``KEY=VALUE`` or ``exec.KEY=VALUE``) -> executor options. Values are YAML scalars."""
    import yaml

    head, execs = {}, {}
    for o in overrides:
        k, sep, v = o.partition("=")
        if not sep:
            raise ConfigError(f"override {o!r}: expected key=value")
        if (hk := k.removeprefix("policy.")).startswith("head."):
            head[hk.removeprefix("head.")] = yaml.safe_load(v)
        else:
            execs[k.removeprefix("exec.")] = yaml.safe_load(v)
    return head, execs


def executor_configs(ckpt: Path, names: str | None, exec_overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The executor configs to evaluate: ``names`` (comma-separated ``configs/exec`` files), or
    the run's own executor, or receding horizon; each with the overrides on top."""
    from robolearn.config import load_group
    from robolearn.config_check import validate_section

    if names is None and (trained := run_executor(ckpt)) is not None:
        out = [{**trained, **exec_overrides}]
    else:
        out = []
        for name in (names or "receding").split(","):
            cfg = {k: v for k, v in dict(load_group("exec", name.strip())).items() if k != "_name"}
            out.append({**cfg, **exec_overrides})
    for cfg in out:
        validate_section("exec", cfg)  # the schema compose checks `exec` with: unknown keys, types
    return out


def out_dir(out: Path) -> Path:
    """Where an evaluation writes: a directory, new or existing; never over a file of the user's."""
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"--out {out}: expected a directory for metrics and videos, found a file at {p}")
    return out


def check_counts(**counts: tuple[int, int]) -> None:
    """``name=(value, minimum)``: one line for the first count below its minimum."""
    for flag, (value, minimum) in counts.items():
        if value < minimum:
            raise ConfigError(f"--{flag.replace('_', '-')}: expected an integer >= {minimum}, found {value}")


def _head_name(ckpt: Path) -> str | None:
    import json

    try:
        return str(json.loads((ckpt / "config.json").read_text())["policy"]["head"]["name"])
    except Exception:
        return None  # no readable checkpoint config: ChunkPolicy.load says what is wrong with it


def load_policy(ckpt: Path, head: dict[str, Any] | None = None):
    from robolearn.config_check import validate_section
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import pick_device

    name = _head_name(ckpt) if head else None
    if name:  # the types of the head's typed signature, as compose checks policy.head (names: at load)
        from robolearn.config_schema import schema_of_head

        fields, _ = schema_of_head(name)
        validate_section("policy.head", {"name": name, **{k: v for k, v in head.items() if k in fields}})

    return ChunkPolicy.load(ckpt, device=pick_device("auto"), head_overrides=head or None)


def evaluate(
    run_or_ckpt: str | Path,
    episodes: int = 50,
    n_envs: int = 10,
    seed_start: int = 100_000,
    videos: int = 2,
    exec: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path | None = None,
    action_noise: float = 0.0,
    max_steps: int | None = None,
    dist=None,
) -> dict[str, Any] | None:
    """Evaluate a run or checkpoint in its task's simulator; returns the metrics summary (None on
    ranks other than 0 under torchrun) and writes ``out/metrics.json``."""
    check_counts(episodes=(episodes, 1), n_envs=(n_envs, 1), videos=(videos, 0), seed_start=(seed_start, 0))
    if max_steps is not None:
        check_counts(max_steps=(max_steps, 1))
    if not 0 <= action_noise < 10:
        raise ConfigError(f"--action-noise: expected a number >= 0 (std in half action ranges), found {action_noise}")
    ckpt = resolve_checkpoint(run_or_ckpt)
    head, exec_overrides = split_overrides(overrides)
    execs = executor_configs(ckpt, exec, exec_overrides)
    if len(execs) > 1:
        raise ConfigError("several executors given: add --delays (e.g. --delays 0) to compare them")
    where = out_dir(Path(out) if out else ckpt.parent.parent / "eval" / execs[0].get("name", "exec"))
    return evaluate_checkpoint(
        ckpt, execs[0], where, episodes, n_envs, seed_start, videos, dist, action_noise, head, max_steps
    )


def evaluate_checkpoint(
    ckpt: Path,
    exec_cfg: dict[str, Any],
    where: Path,
    episodes: int,
    n_envs: int,
    seed_start: int,
    videos: int,
    dist=None,
    action_noise: float = 0.0,
    head: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> dict[str, Any] | None:
    """One checkpoint, one executor config, options already checked: what ``evaluate`` and
    ``robolearn train --eval-episodes`` both run."""
    from robolearn.eval.rollout import evaluate_policy

    policy = load_policy(ckpt, head)
    m = evaluate_policy(
        policy,
        checkpoint_task(policy, max_steps),
        exec_cfg,
        where,
        n_episodes=episodes,
        n_envs=n_envs,
        seed_start=seed_start,
        n_videos=videos,
        dist=dist,
        action_noise=action_noise,
    )
    if m is not None:
        m["metrics_file"] = str(Path(where) / "metrics.json")
    return m
