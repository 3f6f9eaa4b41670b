"""Typed schemas of every config group: what each key is, its type and its range.

One dataclass per component whose options robolearn reads from YAML (the run's top level, ``eval``,
``policy``, ``task`` and one per algorithm); the components built from code (heads, executors) have
their schema in their constructor's typed signature, read from the same registry that builds them
(``schema_of_executor``, ``schema_of_head``), so an option is declared once, where it is used.

A field's type is a Python annotation; a range is ``Annotated[T, Rule(test, "what it must be")]``.
The shipped YAML files hold the values; a schema holds no defaults (a key a file leaves out keeps
the default of the code that reads it). ``config_check.validate`` walks a composed config against
these and stops at the first problem with one line naming the key, what was expected and what was
found.
"""

import dataclasses
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from robolearn.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """A range (or other test) on a value that already has the field's type."""

    test: Callable[[Any], bool]
    expected: str


class Open(dict):
    """A mapping whose keys belong to the component it configures (checked when it is built)."""


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


PosInt = Annotated[int, Rule(lambda v: v >= 1, "a positive int")]
NonNegInt = Annotated[int, Rule(lambda v: v >= 0, "an int >= 0")]
PosNum = Annotated[float, Rule(lambda v: v > 0, "a number > 0")]
NonNegNum = Annotated[float, Rule(lambda v: v >= 0, "a number >= 0")]
Unit = Annotated[float, Rule(lambda v: 0 <= v <= 1, "a number in [0, 1]")]
UnitOpen = Annotated[float, Rule(lambda v: 0 <= v < 1, "a number in [0, 1)")]
Name = Annotated[str, Rule(lambda v: bool(v.strip()), "a non-empty name")]
Device = Annotated[
    str,
    Rule(
        lambda v: v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()),
        "auto | cpu | cuda | cuda:N",
    ),
]


# ---------------------------------------------------------------- the groups read from YAML


@dataclass
class EvalSchema:
    episodes: PosInt
    n_envs: PosInt
    seed_start: NonNegInt
    videos: NonNegInt
    workers: Annotated[int | str, Rule(lambda v: v == "auto" or (_int(v) and v >= 0), "auto or an int >= 0")]
    action_noise: Annotated[
        float, Rule(lambda v: 0 <= v < 10, "a number >= 0 (std of execution noise, in half action ranges)")
    ]


@dataclass
class LowdimEncoderSchema:
    hidden: list[int] | None  # MLP layers per low-dim key ([]: the raw values)
    out_dim: PosInt | None


@dataclass
class RgbEncoderSchema:
    backbone: Name  # a registered image trunk (encoders/image.py, @register_trunk)
    width: PosInt
    pool: Literal["spatial_softmax", "avg"]
    num_keypoints: PosInt
    feature_dim: PosInt
    crop: float | int | list[int] | None  # a fraction, pixels or [h, w] (checked against the camera size)
    color_jitter: float | Open
    share_backbone: bool


@dataclass
class EncoderSchema:
    lowdim: LowdimEncoderSchema | None
    rgb: RgbEncoderSchema | None
    keys: Open | None  # per observation key (they depend on the task): checked when the encoder is built
    token_dim: PosInt
    output: Literal["vector", "tokens", "both"]
    preset: str | None  # resolved into the keys above when the config is composed


@dataclass
class PolicySchema:
    obs_horizon: PosInt  # To: observation frames the policy sees
    horizon: PosInt  # H: actions per chunk
    n_action_steps: PosInt | None  # executed per chunk by receding horizon
    normalizer: Literal["minmax", "gaussian"]
    aux_key: Annotated[str, Rule(lambda v: bool(v.strip()), "a dataset key name")] | None
    aux_weight: NonNegNum
    head: Open  # the head's constructor checks its options (schema_of_head: the typed signature)
    encoder: EncoderSchema


@dataclass
class TaskSchema:
    name: Name
    kwargs: Open  # the env's constructor options
    data: str | None  # its demonstrations (a zarr store)
    obs_keys: list[str] | None  # dataset entries (null: the task's own)
    action_key: str
    policy_defaults: Open | None  # policy keys that suit the task (checked as policy keys)


@dataclass
class BCSchema:
    name: Name
    steps: PosInt
    batch_size: PosInt
    lr: PosNum
    weight_decay: NonNegNum
    fused_optimizer: bool
    betas: Annotated[list[float], Rule(lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)")]
    warmup_steps: NonNegInt
    ema_decay: UnitOpen
    grad_clip: PosNum
    val_fraction: UnitOpen
    log_every: PosInt
    val_every: PosInt
    ckpt_every: PosInt
    max_episodes: PosInt | None
    eval_every: PosInt | None
    eval_last_k: PosInt
    chunk_key: str | None
    val_mask: str | None


@dataclass
class InteractiveSchema(BCSchema):
    rounds: NonNegInt
    demo_episodes: PosInt
    episodes_per_round: PosInt
    labels_per_round: PosInt | None
    max_rollouts_per_round: PosInt
    keep_failed_demos: bool
    expert: Name  # scripted | path to a teacher checkpoint
    labels: Literal["chunk", "step"]
    retrain: Literal["scratch", "warm"]
    warm_steps: PosInt | None
    heldout_episodes: NonNegInt
    eval_episodes: PosInt | None


@dataclass
class DAggerSchema(InteractiveSchema):
    beta: Unit
    beta_schedule: Literal["constant", "linear", "exponential"]
    beta_decay: Unit


@dataclass
class DARTSchema(InteractiveSchema):
    noise_init: NonNegNum
    noise_kind: Literal["full", "diag", "isotropic"]
    noise_scale: NonNegNum
    noise_max: PosNum | None


@dataclass
class HGDAggerSchema(InteractiveSchema):
    threshold: PosNum
    release: Unit
    min_takeover: NonNegInt


@dataclass
class AdversarialSchema:
    name: Name
    method: Literal["gail", "airl"]
    divergence: Literal["forward_kl", "reverse_kl", "js", "chi2"]
    rounds: Annotated[int, Rule(lambda v: v >= 1, "a positive int (rounds of PPO and critic updates)")]
    env_steps_per_round: Annotated[int, Rule(lambda v: v >= 1, "a positive int (the RL budget per round)")]
    disc_updates: PosInt
    disc_rounds: NonNegInt | None
    disc_batch: PosInt
    disc_lr: PosNum
    disc_hidden: list[int]
    grad_penalty: NonNegNum
    spectral_norm: bool
    disc_chunk: PosInt
    gamma: UnitOpen
    ppo_epochs: PosInt
    ppo_lr: PosNum
    policy_hidden: list[int]
    log_std_init: float
    steps: PosInt  # behaviour-cloning warm start
    batch_size: PosInt
    lr: PosNum


@dataclass
class ExpertSchema:
    name: Name  # expert: the task's scripted expert evaluated as an experiment cell (nothing trained)


ALGOS: dict[str, type] = {
    "bc": BCSchema,
    "dagger": DAggerSchema,
    "dart": DARTSchema,
    "hg_dagger": HGDAggerSchema,
    "gail": AdversarialSchema,
    "airl": AdversarialSchema,
    "expert": ExpertSchema,
}


@dataclass
class RunSchema:
    data: str | None  # the zarr dataset (falls back to task.data)
    run_dir: str | None
    device: Device
    dist_timeout_s: PosNum
    seed: NonNegInt
    eval: EvalSchema
    task: TaskSchema
    policy: PolicySchema
    algo: Open  # one of ALGOS, chosen by algo.name
    exec: Open  # the executor's typed signature, chosen by exec.name


def algo_schema(name: str) -> type:
    if name not in ALGOS:
        raise ConfigError(f"algo.name: expected one of {' | '.join(ALGOS)}, found {name!r}")
    return ALGOS[name]


# ------------------------------------------------- the components built from code: their signatures


def signature_fields(fn: Callable, skip: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
    """A callable's keyword options as a schema: ``{name: annotation}`` and whether it also takes
    ``**options`` (then keys outside the signature are passed on and checked further down)."""
    hints = get_type_hints(fn, include_extras=True)
    fields, extra = {}, False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = True
        elif p.name not in skip and p.kind not in (p.VAR_POSITIONAL,):
            fields[p.name] = hints.get(p.name, Any)
    return fields, extra


def schema_of_executor(name: str) -> tuple[dict[str, Any], bool]:
    from robolearn.execution.base import load_executors

    executors = load_executors()
    if name not in executors:
        raise ConfigError(f"exec.name: unknown executor {name!r}; choose one of {sorted(executors)}")
    return signature_fields(executors[name].__init__, ("self", "policy", "n_envs", "generator"))


def schema_of_head(name: str) -> tuple[dict[str, Any], bool]:
    from robolearn.heads.base import head_class

    return signature_fields(head_class(name).__init__, ("self", "cond_dim", "horizon", "action_dim"))


def dataclass_fields(schema: type) -> dict[str, Any]:
    hints = get_type_hints(schema, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


# ---------------------------------------------------------------- checking one value


def describe(tp: Any) -> str:
    """What a value of annotation ``tp`` must be, in words."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return args[1].expected if isinstance(args[1], Rule) else describe(args[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(describe(a) for a in inner))
        return text + (" (or null)" if len(inner) < len(args) else "")
    if origin is Literal:
        return "one of " + " | ".join(str(a) for a in args)
    if origin in (list, tuple):
        plural = {int: "ints", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(args[0], describe(args[0]))}" if args else "a list"
    if dataclasses.is_dataclass(tp) or tp is Open or origin is dict:
        return "a mapping of options"
    return {int: "an int", float: "a number", bool: "true or false", str: "a string"}.get(tp, "a value")


def conforms(tp: Any, v: Any) -> bool:
    """Whether ``v`` (a plain Python value) has annotation ``tp``, ranges included."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return True
    if origin is Annotated:
        return conforms(args[0], v) and all(r.test(v) for r in args[1:] if isinstance(r, Rule))
    if origin in (Union, types.UnionType):
        return any(conforms(a, v) for a in args)
    if tp is type(None):
        return v is None
    if origin is Literal:
        return any(v == a and type(v) is type(a) for a in args)
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(v, (list, tuple)) and (not args or all(conforms(args[0], x) for x in v))
    if dataclasses.is_dataclass(tp) or tp is Open or origin is dict or tp is dict:
        return isinstance(v, dict)
    if tp is int:
        return _int(v)
    if tp is float:
        return _num(v)
    if tp is bool:
        return isinstance(v, bool)
    if tp is str:
        return isinstance(v, str)
    return True  # an annotation this checker does not model: the component checks it
