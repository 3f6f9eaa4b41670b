"""The RTC diagnostic on known answers, and catch's multimodal expert under the RTC paper's conditions."""

import numpy as np
import pytest

from robolearn.errors import ConfigError
from robolearn.eval.modality import BIMODAL, bimodality_coefficient, chunk_modality


def test_bimodality_coefficient_separates_two_modes_from_one():
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((400, 8, 2))
    two = gauss * 0.2 + np.where(rng.random(400) < 0.5, -1.0, 1.0)[:, None, None]  # two far-apart modes
    uniform = rng.uniform(-1, 1, (4000, 1))
    assert bimodality_coefficient(gauss) == pytest.approx(1 / 3, abs=0.05)
    assert bimodality_coefficient(uniform) == pytest.approx(BIMODAL, abs=0.03)
    assert bimodality_coefficient(two) > 0.85
    with pytest.raises(ValueError, match="at least 4"):
        bimodality_coefficient(gauss[:3])


class _TwoWay:
    """A stand-in policy whose chunks are +c or -c (bimodal) or c plus small noise (unimodal)."""

    device = "cpu"

    def __init__(self, bimodal: bool):
        self.bimodal = bimodal

    def predict_chunk(self, obs, generator=None):
        import torch

        n = len(obs["state"])
        z = torch.randn(n, 8, 2, generator=generator).numpy() * 0.05
        if self.bimodal:
            sign = np.where(torch.rand(n, generator=generator).numpy() < 0.5, -1.0, 1.0)
            return z + sign[:, None, None]
        return z + 1.0


def test_chunk_modality_reports_the_share_of_bimodal_states_and_the_sample_gap():
    obs = {"state": np.zeros((5, 1, 3), np.float32)}
    bi = chunk_modality(_TwoWay(True), obs, n_samples=40)
    uni = chunk_modality(_TwoWay(False), obs, n_samples=40)
    assert bi["bimodal_share"] == 1.0 and uni["bimodal_share"] == 0.0
    assert bi["sample_gap"] > 1.0 > 0.5 > uni["sample_gap"]  # ~ half the pairs cross 2*sqrt(16) apart


def test_catch_multimodal_expert_takes_two_distinct_routes_to_the_same_catch():
    from robolearn.envs import make_task

    task = make_task("catch", wander=0.0, expert="multimodal")
    expert = task.expert()
    routes, caught = {}, {}
    for mode in ("left", "right"):
        env = task.make_env()
        env.reset(seed=7)
        expert.reset(env)
        expert.set_mode(env, mode)
        xs = []
        while True:
            _, _, term, trunc, info = env.step(expert.act(env))
            xs.append(float(task._pos(env.unwrapped.data)[1][0]))
            if term or trunc:
                break
        routes[mode], caught[mode] = np.array(xs), info["is_success"]
        env.close()
    assert caught == {"left": True, "right": True}
    n = min(len(routes["left"]), len(routes["right"]))
    gap = routes["right"][:n] - routes["left"][:n]
    assert gap.max() > 0.2  # up to 2 x 0.15 m apart on the way: two strategies, not jitter
    assert abs(gap[-1]) < 0.05  # and the same catch at the end
    with pytest.raises(ConfigError, match="left"):
        expert.set_mode(env, "up")


def test_catch_without_wander_has_no_hidden_randomness():
    """With wander=0 the same seed and actions give the same episode; the default keeps the wander."""
    from robolearn.envs import make_task

    def run(task, seed):
        env = task.make_env()
        env.reset(seed=seed)
        out = [env.step(np.zeros(2, np.float32))[0]["state"] for _ in range(20)]
        env.close()
        return np.array(out)

    calm = make_task("catch", wander=0.0)
    a, b = run(calm, 3), run(calm, 3)
    np.testing.assert_array_equal(a, b)
    # the puck flies a parabola: its lateral velocity changes only by the known force
    vx = a[:, 2]
    np.testing.assert_allclose(np.diff(vx), np.diff(vx).mean(), atol=1e-6)
    wander = run(make_task("catch"), 3)[:, 2]
    assert np.abs(np.diff(np.diff(wander))).max() > 1e-3
    for bad, words in (({"wander": -0.1}, "wander"), ({"expert": "lefty"}, "multimodal")):
        with pytest.raises(ConfigError, match=words):
            make_task("catch", **bad)


def test_collect_reads_a_task_config_and_its_overrides(tmp_path):
    """`robolearn collect catch_multimodal` builds the task from its config (no wander, the
    multimodal expert); task.* overrides are checked like train's, one line when wrong."""
    import subprocess
    import sys

    from robolearn.data.replay_buffer import ReplayBuffer

    cli = [sys.executable, "-m", "robolearn", "collect"]
    args = ["catch_multimodal", "--episodes", "6", "--noise", "0.1", "--out", str(tmp_path / "d.zarr")]
    r = subprocess.run([*cli, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    buf = ReplayBuffer.open(tmp_path / "d.zarr")
    x = buf["state"][:][:, 5]  # the paddle's x
    starts = np.r_[0, buf.episode_ends[:-1]]
    early = x[starts + 12] - x[starts]  # where each episode's paddle went in its first 12 steps
    buf.close()
    assert early.max() - early.min() > 0.15  # left and right routes both appear in 6 episodes
    bad = subprocess.run([*cli, "catch", "task.kwargs.wander=-1", "--episodes", "1", "--out", str(tmp_path / "b.zarr")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "wander" in bad.stderr
    assert not (tmp_path / "b.zarr").exists()


def test_routes_of_catch_episodes_are_read_off_the_approach():
    """Mode coverage on catch: the two-route expert, forced left or right, is classified as that
    route from where its paddle waits, and the single intercept expert as "direct", on 83 of 90
    episodes (seeds 0-29; misreads happen near the walls, where the waiting side is clipped). A
    classifier with the sign flipped reads about a third right."""
    from robolearn.envs import make_task
    from robolearn.envs.dynamic import InterceptExpert, approach_offset, classify_route

    task = make_task("catch", wander=0.0, expert="multimodal")
    env = task.make_env()
    right = 0
    try:
        for seed in range(30):
            for want, expert in (("left", task.expert()), ("right", task.expert()), ("direct", InterceptExpert(task))):
                env.reset(seed=seed)
                expert.reset(env)
                if want != "direct":
                    expert.set_mode(env, want)
                offsets, done = [], False
                while not done:
                    offsets.append(approach_offset(task, env))
                    _, _, term, trunc, _ = env.step(expert.act(env))
                    done = term or trunc
                right += classify_route(offsets) == want
    finally:
        env.close()
    assert right >= 80, right
    assert classify_route([None, None]) == "direct" and classify_route([-0.2, -0.1, 0.3]) == "left"


def test_catch_routes_through_the_rollout_loop_follow_the_drawn_modes():
    """catch_routes reads each episode of a rollout: an adapter that lets the two-route expert drive
    (its modes forced per env slot) comes back with the routes it was given, in seed order."""
    from robolearn.envs import make_task
    from robolearn.eval.env_batch import EnvBatch
    from robolearn.eval.modality import catch_routes

    task = make_task("catch", wander=0.0, expert="multimodal")
    envs = [task.make_env() for _ in range(3)]
    expert, want = task.expert(), ["left", "right", "left"]

    class Drive:  # an expert adapter with the rollout's interface: reset(), act(obs_history)
        def reset(self):
            for env, mode in zip(envs, want):
                expert.reset(env)
                expert.set_mode(env, mode)

        def act(self, obs):
            return np.stack([expert.act(env) for env in envs])

    try:
        got = catch_routes(task, lambda n, w: Drive(), 3, n_envs=3, seed_start=7, venv=EnvBatch(envs))
    finally:
        for env in envs:
            env.close()
    assert [r["route"] for r in got] == want and [r["seed"] for r in got] == [7, 8, 9]
    assert all(r["success"] for r in got)  # the expert catches on either route
