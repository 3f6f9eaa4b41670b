"""Tasks in envs/: observations match their specs, experts solve the Fetch tasks, saved
simulator states replay bit for bit, and Push-T agrees with the human dataset."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from robolearn.envs import make_task, task_names  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402

FETCH = ["fetch_reach", "fetch_push", "fetch_pick_place"]


def _mid_action(task) -> np.ndarray:
    return ((task.spec.action_low + task.spec.action_high) / 2).astype(np.float32)


def _check_obs(obs: dict, spec) -> None:
    assert set(obs) == set(spec.obs), (set(obs), set(spec.obs))
    for k, s in spec.obs.items():
        assert obs[k].shape == s.shape, (k, obs[k].shape, s.shape)
        assert obs[k].dtype == np.dtype(s.dtype), (k, obs[k].dtype, s.dtype)


def _run_expert(task, env, expert, seed: int, noise: float = 0.0, rng=None) -> tuple[bool, list[np.ndarray]]:
    """One episode; returns (success, gripper/observation trace)."""
    obs, _ = env.reset(seed=seed)
    expert.reset(env)
    trace = [obs["state"]]
    for _ in range(task.spec.max_steps):
        a = expert.act(env)
        assert a.shape == (4,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
        if noise:
            a = np.clip(a + rng.normal(size=4) * noise, -1, 1).astype(np.float32)
        obs, _, term, trunc, info = env.step(a)
        trace.append(obs["state"])
        if info["is_success"]:
            return True, trace
        if term or trunc:
            break
    return False, trace


def test_unknown_task_and_option_are_config_errors():
    with pytest.raises(ConfigError, match="fetch_push"):  # the message lists the known tasks
        make_task("fetch_pusher")
    with pytest.raises(ConfigError, match="image_sz"):
        make_task("fetch_push", image_sz=64)
    with pytest.raises(ConfigError, match="obs"):
        make_task("pusht", obs="depth")
    with pytest.raises(ConfigError, match="multimodal"):
        make_task("fetch_reach", expert="multimodal")


@pytest.mark.parametrize("name", task_names())
def test_observations_match_spec(name):
    task = make_task(name)
    again = make_task(task.spec.name)  # the spec name rebuilds the same task
    assert again.spec.name == task.spec.name and again.spec.obs == task.spec.obs
    env = task.make_env()
    try:
        assert isinstance(env.observation_space, gym.spaces.Dict)
        obs, info = env.reset(seed=0)
        _check_obs(obs, task.spec)
        assert env.observation_space.contains(obs)
        assert isinstance(info["is_success"], bool) and isinstance(info["score"], float)
        obs, _, _, _, info = env.step(_mid_action(task))
        _check_obs(obs, task.spec)
        assert isinstance(info["is_success"], bool) and isinstance(info["score"], float)
        assert env.render() is None  # videos only from render=True envs
    finally:
        env.close()


def test_fetch_image_mode_option_and_size():
    task = make_task("fetch_push", obs="image", image_size=64)
    assert task.spec.obs["img"].shape == (64, 64, 3) and task.spec.obs["img"].kind == "rgb"
    env = task.make_env(render=True)
    try:
        obs, _ = env.reset(seed=1)
        _check_obs(obs, task.spec)
        img0 = obs["img"]
        assert img0.std() > 10  # a real scene, not a blank buffer
        np.testing.assert_allclose(obs["agent_pos"][:3], obs["state"][:3])
        np.testing.assert_allclose(obs["goal"], obs["state"][-3:])
        for _ in range(5):
            obs, *_ = env.step(np.array([1, 0, 0, 0], np.float32))
        assert np.abs(obs["img"].astype(int) - img0).mean() > 0.5  # the moving arm is visible
        frame = env.render()
        assert frame.shape == (task.render_size, task.render_size, 3) and frame.dtype == np.uint8
    finally:
        env.close()


@pytest.mark.parametrize("name,kind", [(n, "scripted") for n in FETCH] + [("fetch_push", "multimodal")])
def test_fetch_expert_succeeds(name, kind):
    task = make_task(name, expert=kind)
    env, expert = task.make_env(), task.expert()
    wins = sum(_run_expert(task, env, expert, seed)[0] for seed in range(5))
    assert wins >= 4, f"{name}/{kind}: {wins}/5"


@pytest.mark.parametrize("name", ["fetch_push", "fetch_pick_place"])
def test_fetch_expert_tolerates_action_noise(name):
    task = make_task(name)
    env, expert = task.make_env(), task.expert()
    rng = np.random.default_rng(0)
    wins = sum(_run_expert(task, env, expert, seed, noise=0.2, rng=rng)[0] for seed in range(10, 15))
    assert wins >= 4, f"{name} with noise 0.2: {wins}/5"


def test_multimodal_push_expert_has_distinct_modes():
    task = make_task("fetch_push", expert="multimodal")
    env, expert = task.make_env(), task.expert()
    drawn = set()
    for _ in range(20):
        env.reset(seed=0)
        expert.reset(env)
        drawn.add(expert.mode(env))
    assert drawn == set(expert.modes) and len(drawn) >= 2
    differ = 0
    for seed in range(4):
        paths = []
        for mode in expert.modes:  # same start, each mode forced
            obs, _ = env.reset(seed=seed)
            expert.set_mode(env, mode)
            grip = [obs["state"][:2]]
            for _ in range(8):
                obs, *_ = env.step(expert.act(env))
                grip.append(obs["state"][:2])
            paths.append(np.array(grip))
        differ += np.abs(paths[0] - paths[1]).max() > 0.05
    assert differ >= 3, f"the modes took the same path in {4 - differ}/4 episodes"


def _replays_exactly(task, env, actions_fn, warmup: int, n: int) -> None:
    for _ in range(warmup):
        env.step(actions_fn())
    state = task.get_state(env)
    acts = [actions_fn() for _ in range(n)]
    first = [env.step(a) for a in acts]
    for _ in range(3):  # wander off, then come back
        env.step(actions_fn())
    task.set_state(env, state)
    again = [env.step(a) for a in acts]
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(first, again):
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k], err_msg=k)
        assert (r1, te1, tr1, i1["score"]) == (r2, te2, tr2, i2["score"])


@pytest.mark.parametrize("name", FETCH)
def test_fetch_set_state_reproduces_trajectory(name):
    task = make_task(name)
    env, expert = task.make_env(), task.expert()
    env.reset(seed=7)
    expert.reset(env)
    rng = np.random.default_rng(0)
    noisy = lambda: np.clip(expert.act(env) + rng.normal(size=4) * 0.2, -1, 1).astype(np.float32)  # noqa: E731
    _replays_exactly(task, env, noisy, warmup=8, n=12)


def test_fetch_set_state_restores_time_limit_and_works_across_envs():
    task = make_task("fetch_pick_place", obs="image")
    a, b = task.make_env(), task.make_env()
    try:
        a.reset(seed=3)
        for _ in range(task.spec.max_steps - 2):
            a.step(np.array([0.1, 0, 0, 1], np.float32))
        state = task.get_state(a)
        b.reset(seed=11)
        task.set_state(b, state)
        np.testing.assert_array_equal(b.get_obs()["img"], a.get_obs()["img"])  # goal marker moved too
        for env in (a, b):
            _, _, _, trunc1, _ = env.step(np.zeros(4, np.float32))
            _, _, _, trunc2, _ = env.step(np.zeros(4, np.float32))
            assert (trunc1, trunc2) == (False, True)
    finally:
        a.close()
        b.close()


def test_fetch_image_and_state_modes_share_physics():
    ts, ti = make_task("fetch_pick_place"), make_task("fetch_pick_place", obs="image")
    e1, e2 = ts.make_env(), ti.make_env(render=True)
    expert = ts.expert()
    try:
        o1, _ = e1.reset(seed=5)
        o2, _ = e2.reset(seed=5)
        for _ in range(20):
            np.testing.assert_array_equal(o1["state"], o2["state"])
            a = expert.act(e1)
            o1, *_ = e1.step(a)
            o2, *_ = e2.step(a)
            e2.render()
    finally:
        e2.close()


def test_fetch_vector_env():
    task = make_task("fetch_push")
    venv = gym.vector.SyncVectorEnv([task.make_env for _ in range(2)])
    obs, info = venv.reset(seed=[0, 1])
    assert obs["state"].shape == (2, *task.spec.obs["state"].shape)
    obs, _, _, _, info = venv.step(np.zeros((2, 4), np.float32))
    assert info["is_success"].dtype == bool and info["score"].shape == (2,)
    venv.close()


def test_pusht_set_state_reproduces_trajectory_through_contacts():
    task = make_task("pusht")
    env = task.make_env()
    env.reset(seed=3)
    u = env.unwrapped
    rng = np.random.default_rng(0)
    push = lambda: (np.array(u.block.position) + rng.normal(size=2) * 20).astype(np.float32)  # noqa: E731
    _replays_exactly(task, env, push, warmup=15, n=12)
    assert u.n_contact_points > 0 or any(np.abs(u.block.velocity) > 0)  # the block was actually pushed


def test_pusht_image_set_state_and_render():
    task = make_task("pusht_image")
    env = task.make_env(render=True)
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.array([256, 256], np.float32))
    state = task.get_state(env)
    img = env.get_obs()["img"]
    env.step(np.array([100, 400], np.float32))
    task.set_state(env, state)
    np.testing.assert_array_equal(env.get_obs()["img"], img)
    frame = env.render()
    assert frame.shape == (task.render_size, task.render_size, 3) and frame.dtype == np.uint8
    assert task.expert() is None


def test_pusht_reset_to_state_is_exact():
    task = make_task("pusht")
    env = task.make_env()
    s = np.array([100.0, 400.0, 300.0, 200.0, 2.5], np.float32)  # far apart: nothing touches
    obs, info = task.reset_to_state(env, s)
    np.testing.assert_allclose(obs["state"], s, atol=1e-4)
    goal = np.array([300.0, 100.0, 256.0, 256.0, np.pi / 4], np.float32)
    _, info = task.reset_to_state(env, goal)
    assert info["score"] > 0.999 and info["is_success"]


def _pusht_zarr():
    path = os.environ.get("ROBOLEARN_PUSHT_ZARR")
    if not path:
        pytest.skip("set ROBOLEARN_PUSHT_ZARR to the Push-T zarr to run the dataset replay check")
    import zarr

    return zarr.open_group(path, mode="r")


def test_pusht_replays_first_dataset_episode():
    """The dataset's state is the env's state: from the first recorded state, the recorded
    actions reproduce the recorded states (float32 precision), and the render matches the
    recorded image."""
    g = _pusht_zarr()
    end = int(g["meta/episode_ends"][0])
    states, actions = g["data/state"][:end], g["data/action"][:end]
    task = make_task("pusht")
    env = task.make_env()
    obs, _ = task.reset_to_state(env, states[0])
    np.testing.assert_allclose(obs["state"], states[0], atol=1e-4)
    errs = []
    for t in range(end - 1):
        obs, *_ = env.step(actions[t])
        d = obs["state"] - states[t + 1]
        d[4] = (d[4] + np.pi) % (2 * np.pi) - np.pi
        errs.append(np.abs(d).max())
    assert max(errs) < 1e-2, f"replay drifted by {max(errs):.3g} (first bad step {np.argmax(np.array(errs) > 1e-2)})"
    if "img" in g["data"]:
        timg = make_task("pusht_image")
        ienv = timg.make_env()
        for t in (0, end // 2):
            obs, _ = timg.reset_to_state(ienv, states[t])
            diff = np.abs(obs["img"].astype(np.float32) - np.asarray(g["data/img"][t], np.float32)).mean()
            assert diff < 1.0, f"frame {t}: mean abs pixel difference {diff:.2f}"
