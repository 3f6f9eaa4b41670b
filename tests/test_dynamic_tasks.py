"""The dynamic tasks (envs/dynamic.py): experts that succeed, also under execution noise; exact
save/restore; images; and staleness that costs success (the point of these tasks)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from robolearn.envs import make_task  # noqa: E402
from robolearn.envs.dynamic import delayed_expert_success  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402

DYNAMIC = ["cartpole", "catch"]


@pytest.mark.parametrize("name", DYNAMIC)
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_expert_succeeds(name, noise):
    assert delayed_expert_success(make_task(name), 10, noise, d=0) >= 0.9


@pytest.mark.parametrize("name,d", [("cartpole", 5), ("catch", 6)])
def test_a_stale_expert_fails_more(name, d):
    """The expert acting on the state of d steps ago (what an inference delay of d steps means for
    a policy that acts on its latest observation) loses most of its success."""
    task = make_task(name)
    fresh, stale = delayed_expert_success(task, 20, 0.1, 0), delayed_expert_success(task, 20, 0.1, d)
    assert fresh >= 0.9 and stale <= fresh - 0.4, (fresh, stale)


@pytest.mark.parametrize("name", DYNAMIC)
def test_save_restore_reproduces_the_next_observation(name):
    task = make_task(name)
    env, ex = task.make_env(), task.expert()
    try:
        env.reset(seed=3)
        ex.reset(env)
        for _ in range(7):
            env.step(ex.act(env))
        saved = task.get_state(env)
        a = np.array([0.3] * task.spec.action_dim, np.float32)
        first = [env.step(a)[0]["state"] for _ in range(5)]  # the world moves on (disturbances drawn)
        task.set_state(env, saved)
        again = [env.step(a)[0]["state"] for _ in range(5)]
        np.testing.assert_array_equal(np.stack(first), np.stack(again))
    finally:
        env.close()


@pytest.mark.parametrize("name", DYNAMIC)
def test_the_world_moves_without_the_agent(name):
    task = make_task(name)
    env = task.make_env()
    try:
        o0, _ = env.reset(seed=0)
        o1 = env.step(np.zeros(task.spec.action_dim, np.float32))[0]
        assert np.abs(o1["state"] - o0["state"]).max() > 1e-3
    finally:
        env.close()


@pytest.mark.parametrize("name", DYNAMIC)
def test_image_observations_show_the_scene(name):
    task = make_task(f"{name}_image", image_size=64)
    env, ex = task.make_env(), task.expert()
    try:
        obs, _ = env.reset(seed=1)
        assert obs["img"].shape == (64, 64, 3) and obs["img"].dtype == np.uint8 and obs["img"].std() > 5
        assert obs["agent_pos"].shape == task.spec.obs["agent_pos"].shape
        img0 = obs["img"]
        ex.reset(env)
        for _ in range(10):
            obs, *_ = env.step(ex.act(env))
        assert np.abs(obs["img"].astype(int) - img0).mean() > 0.2  # things moved, and the camera saw it
    finally:
        env.close()


def test_bad_options_are_one_line():
    for kwargs, word in [({"obs": "depth"}, "obs"), ({"image_size": 2}, "image_size"), ({"speed": 2}, "speed")]:
        with pytest.raises(ConfigError) as e:
            make_task("catch", **kwargs)
        assert word in str(e.value) and "\n" not in str(e.value)
