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
MULTIMODAL = {"cartpole": {"expert": "multimodal"}, "catch": {"expert": "multimodal", "wander": 0.0}}


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


@pytest.mark.parametrize("name,multimodal", [(n, False) for n in DYNAMIC] + [("cartpole", True)])
def test_save_restore_reproduces_the_next_observation(name, multimodal):
    task = make_task(name, **(MULTIMODAL[name] if multimodal else {}))
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
    for name in DYNAMIC:  # an unknown strategy names the ones there are
        with pytest.raises(ConfigError, match="multimodal") as e:
            make_task(name, expert="zigzag")
        assert "zigzag" in str(e.value) and "\n" not in str(e.value)


def test_cartpole_multimodal_expert_balances_on_two_distinct_tracks():
    """One seed, each side forced: the pole stays up both times while the carts end about 1 m apart
    (two strategies, not jitter); the single expert stays near the centre."""
    task = make_task("cartpole", expert="multimodal")
    ends, ok = {}, {}
    for mode in ("left", "right"):
        env, ex = task.make_env(), task.expert()
        try:
            env.reset(seed=5)
            ex.reset(env)
            ex.set_mode(env, mode)
            while True:
                _, _, term, trunc, info = env.step(ex.act(env))
                if term or trunc:
                    break
            ends[mode], ok[mode] = float(env.unwrapped.data.qpos[0]), info["is_success"]
        finally:
            env.close()
    assert ok == {"left": True, "right": True}
    assert ends["left"] < -0.35 and ends["right"] > 0.35, ends
    single = make_task("cartpole")
    env, ex = single.make_env(), single.expert()
    try:
        env.reset(seed=5)
        for _ in range(200):
            env.step(ex.act(env))
        assert abs(env.unwrapped.data.qpos[0]) < 0.1
    finally:
        env.close()


def test_cartpole_multimodal_expert_tolerates_the_sweeps_staleness():
    """The paper's condition: fed the state of 4 steps ago, with the agent's 0.1 noise, the
    multimodal expert still balances (the single, stiffer LQR loses about half: 0.44 on 100 seeds)."""
    assert delayed_expert_success(make_task("cartpole", expert="multimodal"), 10, 0.1, 4) == 1.0
