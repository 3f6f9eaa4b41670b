"""Typed schemas (config_schema.py): every shipped file conforms, each algorithm has its own keys,
heads and executors are checked against their constructors' typed signatures when the config is
composed (not only when they are built), and the small type language says what it checks."""

from typing import Annotated, Literal

import pytest

from robolearn.config import compose, group_options
from robolearn.config_schema import (
    ALGOS,
    BCSchema,
    PosInt,
    Rule,
    conforms,
    dataclass_fields,
    describe,
    schema_of_executor,
    schema_of_head,
)
from robolearn.errors import ConfigError


@pytest.mark.parametrize("group", ["task", "policy", "algo", "exec", "recipe"])
def test_every_shipped_file_conforms_to_its_schema(group):
    """A schema that lost a field the YAML has (or typed it wrongly) fails here."""
    for name in group_options(group):
        compose([f"{group}={name}"])
    compose(["task=metaworld/reach-v3_image", "policy=diffusion", "algo=dart", "exec=bid"])


def test_each_algorithm_has_its_own_keys():
    """One merged algo schema would let `beta` (DAgger's mixing) through on BC, where nothing reads it."""
    assert compose(["algo=dagger", "algo.beta=0.3"]).algo.beta == 0.3
    with pytest.raises(ConfigError, match=r"unknown key 'algo.beta'"):
        compose(["algo=bc", "algo.beta=0.3"])
    with pytest.raises(ConfigError, match=r"algo.noise_kind"):
        compose(["algo=dagger", "algo.noise_kind=full"])  # DART's option
    assert set(dataclass_fields(ALGOS["dart"])) > set(dataclass_fields(BCSchema))  # interactive runs train BC
    with pytest.raises(ConfigError, match=r"algo.name: expected one of bc \| dagger"):
        compose(["algo.name=ppo"])


@pytest.mark.parametrize(
    "overrides, words",
    [
        (
            ["policy=flow", "policy.head.num_steps=2.5"],
            ["policy.head.num_steps: expected an int", "head 'flow'", "found float 2.5"],
        ),
        (["policy=flow", "policy.head.init_noise=7"], ["policy.head.init_noise: expected a string", "found int 7"]),
        (["policy=regression", "policy.head.hiden=[8]"], ["unknown key 'policy.head.hiden'", "policy.head.hidden"]),
        (["exec=rtc", "exec.mask=3"], ["exec.mask: expected a string, found int 3"]),
        (["exec=rtc", "exec.maks=soft"], ["unknown key 'exec.maks'", "exec.mask"]),
        (["exec=ensemble", "exec.s=2"], ["unknown key 'exec.s'"]),  # ensemble has no execution horizon
        (["exec=rtc", "exec.s=2.5"], ["exec.s: expected an int (or null), found float 2.5"]),
        (["task.policy_defaults.horizn=3"], ["unknown key 'task.policy_defaults.horizn'", "horizon"]),
        (["task=pusht_image", "policy.encoder.rgb.pool=max"], ["policy.encoder.rgb.pool: expected one of"]),
        (["policy.encoder.rgb.widht=32"], ["unknown key 'policy.encoder.rgb.widht'", "policy.encoder.rgb.width"]),
        (["policy.encoder.output=seq"], ["policy.encoder.output: expected one of vector | tokens | both"]),
    ],
)
def test_component_options_are_checked_on_compose(overrides, words):
    """Before, `policy.head` and `exec` were open maps: these passed composition and failed (or not)
    only when the model or the executor was built, after data loading."""
    with pytest.raises(ConfigError) as e:
        compose(overrides)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_signature_schemas_come_from_the_registries():
    fields, extra = schema_of_executor("rtc")
    assert {"s", "delay", "mask", "control_hz"} <= set(fields) and not extra
    fields, extra = schema_of_head("flow")
    assert fields["num_steps"] is int and extra  # flow passes **options on to its denoiser builder
    assert conforms(fields["num_steps"], 3) and not conforms(fields["num_steps"], 3.0)


def test_the_type_language():
    opt = PosInt | None
    assert conforms(opt, None) and conforms(opt, 4) and not conforms(opt, 0) and not conforms(opt, True)
    assert describe(opt) == "a positive int (or null)"
    lit = Literal["chunk", "step"]
    assert conforms(lit, "step") and not conforms(lit, "steps") and describe(lit) == "one of chunk | step"
    pair = Annotated[list[float], Rule(lambda v: len(v) == 2, "two numbers")]
    assert conforms(pair, [0.9, 1]) and not conforms(pair, [0.9]) and not conforms(pair, [0.9, "a"])
    assert conforms(float, 3) and not conforms(int, 3.0) and not conforms(str, None)
    assert describe(list[int]) == "a list of ints"
    assert conforms(int | None, None) and not conforms(int | None, 2.5) and describe(int | None) == "an int (or null)"
