"""Simulated tasks by name. Modules are imported on demand so that, e.g., Push-T users never
load MuJoCo and Fetch users never load pygame."""

from __future__ import annotations

import inspect
from typing import Any

from robolearn.envs.base import Expert, ObsSpec, Task, TaskSpec
from robolearn.errors import ConfigError

_FETCH = ("fetch_reach", "fetch_push", "fetch_pick_place")
_DYNAMIC = ("cartpole", "catch")
_NAMES = (
    "pusht",
    "pusht_keypoints",
    "pusht_image",
    *_FETCH,
    *(f"{n}_image" for n in _FETCH),
    *_DYNAMIC,
    *(f"{n}_image" for n in _DYNAMIC),
)

__all__ = ["Expert", "ObsSpec", "Task", "TaskSpec", "make_task", "task_names"]


def task_names(suites: bool = False) -> list[str]:
    """The built-in tasks; with ``suites``, every ``metaworld/<env>`` too."""
    if not suites:
        return list(_NAMES)
    from robolearn.envs.suites import PREFIX, TASKS

    return [*_NAMES, *(PREFIX + t for t in TASKS)]


def make_task(name: str, **kwargs: Any) -> Task:
    """``make_task("fetch_push", obs="image", image_size=96)``. ``<task>_image`` is ``<task>``
    with ``obs="image"``, so ``make_task(task.spec.name)`` always rebuilds the same task.
    ``metaworld/<env>`` is a Meta-World v3 task (``robolearn.envs.metaworld``).
    Unknown names or options raise ConfigError."""
    if name.startswith("metaworld/"):
        from robolearn.envs.metaworld import MetaWorldTask

        base = name.removesuffix("_image")
        if base != name:
            if kwargs.get("obs", "image") != "image":
                raise ConfigError(f"task {name}: obs must be 'image', got {kwargs['obs']!r}")
            kwargs = {**kwargs, "obs": "image"}
        return MetaWorldTask(base, **_checked(name, MetaWorldTask, kwargs))
    if name not in _NAMES:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(_NAMES)}, metaworld/<env>")
    if name == "pusht_keypoints":
        if kwargs.get("obs", "keypoints") != "keypoints":
            raise ConfigError(f"task {name}: obs must be 'keypoints', got {kwargs['obs']!r}")
        from robolearn.envs.pusht import PushTTask

        return PushTTask(**_checked(name, PushTTask, {**kwargs, "obs": "keypoints"}))
    base = name.removesuffix("_image")
    if base != name:
        if kwargs.get("obs", "image") != "image":
            raise ConfigError(f"task {name}: obs must be 'image', got {kwargs['obs']!r}")
        kwargs = {**kwargs, "obs": "image"}
    if base in _DYNAMIC:
        from robolearn.envs.dynamic import CartPoleTask, CatchTask

        cls = CartPoleTask if base == "cartpole" else CatchTask
        return cls(**_checked(name, cls, kwargs))
    if base == "pusht":
        from robolearn.envs.pusht import PushTTask

        return PushTTask(**_checked(name, PushTTask, kwargs))
    from robolearn.envs.fetch import FetchTask

    return FetchTask(base, **_checked(name, FetchTask, kwargs))


def _checked(name: str, cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = [p for p in inspect.signature(cls).parameters if p != "name"]
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise ConfigError(f"task {name}: unknown option(s) {bad}; expected some of {allowed}")
    return kwargs
