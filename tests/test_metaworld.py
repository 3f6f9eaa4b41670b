"""Meta-World as a task family and as a suite experiment.

The simulator tests need the optional `metaworld` package (pip install --no-deps metaworld==3.1.1
scipy) and skip with that reason without it; names, configs and the suite's expansion are checked
everywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robolearn.config import compose
from robolearn.envs import make_task
from robolearn.envs.suites import MT10, PREFIX, TASKS
from robolearn.errors import ConfigError
from robolearn.experiments import load_experiment

try:
    import metaworld  # noqa: F401

    HAVE_MW = True
except ImportError:
    HAVE_MW = False
needs_mw = pytest.mark.skipif(
    not HAVE_MW, reason="metaworld is not installed (pip install --no-deps metaworld==3.1.1 scipy)"
)


# --- names and configs (no simulator) ---------------------------------------------------------


def test_unknown_task_names_its_close_matches_in_one_line():
    for make in (lambda: compose(["task=metaworld/pick-plac-v3"]), lambda: make_task("metaworld/pick-plac-v3")):
        with pytest.raises(ConfigError) as e:
            make()
        msg = str(e.value)
        assert "\n" not in msg and "metaworld/pick-place-v3" in msg and "close matches" in msg


def test_a_task_config_is_the_template_filled_in_for_the_env():
    cfg = compose(["task=metaworld/door-open-v3"])
    assert cfg.task.name == "metaworld/door-open-v3" and cfg.task.data == "data/metaworld/door-open-v3.zarr"
    assert list(cfg.task.obs_keys) == ["state"] and cfg.policy.horizon == 8  # policy_defaults reach the policy
    img = compose(["task=metaworld/door-open-v3_image"])
    assert list(img.task.obs_keys) == ["img", "agent_pos"] and img.task.kwargs.obs == "image"


def test_a_suite_expands_into_one_collecting_task_per_env(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        "suite: {preset: MT10, obs: image, collect: {episodes: 7}}\n"
        "tasks: {reach-v3: {overrides: [task=metaworld/reach-v3], collect: {episodes: 3}}}\n"
        "variants: {reg: {train: [policy=regression]}}\n"
    )
    exp = load_experiment(p, ["collect.episodes=5"])
    assert list(exp.tasks) == list(MT10)
    assert list(exp.tasks["push-v3"].overrides) == ["task=metaworld/push-v3_image"]
    assert exp.tasks["push-v3"].collect.episodes == 5 and exp.tasks["push-v3"].collect.until_kept
    assert list(exp.tasks["reach-v3"].overrides) == ["task=metaworld/reach-v3"]  # the file's own entry wins


@pytest.mark.parametrize(
    "suite, words",
    [
        ("{preset: MT11}", ["suite.preset", "MT10", "MT11"]),
        ("{tasks: [reach-v3, pushh-v3]}", ["pushh-v3", "push-v3"]),
        ("{preset: MT10, tasks: [reach-v3]}", ["exactly one of"]),
        ("{preset: MT10, obs: depth}", ["suite.obs", "depth"]),
        ("{preset: MT10, camera: top}", ["suite.camera", "unknown key"]),
    ],
)
def test_bad_suites_are_one_line_errors(tmp_path, suite, words):
    p = tmp_path / "s.yaml"
    p.write_text(f"suite: {suite}\nvariants: {{reg: {{train: [policy=regression]}}}}\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_missing_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld now raises ImportError
    monkeypatch.delitem(sys.modules, "metaworld.env_dict", raising=False)
    task = make_task("metaworld/reach-v3")  # names and specs need no simulator
    with pytest.raises(ConfigError, match="pip install --no-deps metaworld"):
        task.make_env()


@needs_mw
def test_the_name_list_is_meta_worlds_own():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3

    assert list(TASKS) == list(ALL_V3_ENVIRONMENTS) and list(MT10) == list(MT10_V3)


# --- the simulator ------------------------------------------------------------------------------


@needs_mw
@pytest.mark.parametrize("name", ["pick-place-v3", "door-open-v3"])
def test_scripted_expert_succeeds_and_sees_the_goal(name):
    """pick-place needs the goal in the observation: with Meta-World's cached partially observable
    space, step() clips it to zero and this expert never succeeds."""
    from robolearn.algos.collect import audit_expert

    task = make_task(PREFIX + name)
    env = task.make_env()
    obs, _ = env.reset(seed=5)
    obs, *_ = env.step(np.zeros(4, np.float32))
    assert np.allclose(obs["state"][-3:], env.u._target_pos, atol=1e-6) and np.abs(obs["state"][-3:]).sum() > 0
    env.close()
    r = audit_expert(task, n_episodes=2, seed_start=0)
    assert r["successes"] == 2 and r["mean_length"] < 300


@needs_mw
def test_reset_is_seeded_and_seeds_differ():
    env = make_task("metaworld/push-v3").make_env()
    a = [env.reset(seed=s)[0]["state"].copy() for s in (1, 2, 1)]
    env.close()
    other = make_task("metaworld/push-v3").make_env()  # another env object: same layout for seed 1
    b = other.reset(seed=1)[0]["state"]
    other.close()
    assert np.array_equal(a[0], a[2]) and np.array_equal(a[0], b)
    assert not np.allclose(a[0][-3:], a[1][-3:])  # the goal moves with the seed


@needs_mw
def test_chunk_labels_near_the_episode_end_stop_at_it():
    """DAgger labels a state a few steps before Meta-World's 500-step limit with an expert chunk of
    H = 8: the roll-out stops where the episode does (Meta-World raises on a step past it), the rest
    of the chunk repeats its last action, and the env is restored to the labelled state."""
    from robolearn.algos.labelers import ScriptedLabeler

    task = make_task("metaworld/reach-v3")
    env = task.make_env()
    env.reset(seed=0)
    for _ in range(497):
        env.step(np.zeros(4, np.float32))
    before = env.get_obs()["state"]
    chunk = ScriptedLabeler(task, horizon=8).chunk(env)
    after = env.get_obs()["state"]
    env.close()
    assert chunk.shape == (8, 4) and np.array_equal(chunk[3:], np.repeat(chunk[2:3], 5, axis=0))
    assert np.array_equal(before, after)


@needs_mw
def test_save_restore_reproduces_the_next_observations_exactly():
    """Restoring mid-episode and replaying the same actions gives bit-identical observations,
    including the frame-stacked previous frame (restoring physics alone gets it wrong)."""
    task = make_task("metaworld/pick-place-v3")
    env = task.make_env()
    env.reset(seed=3)
    expert = task.expert()
    for _ in range(25):
        env.step(expert.act(env))
    state, at_save = task.get_state(env), env.get_obs()["state"]
    acts, first = [], []
    for _ in range(10):
        acts.append(expert.act(env))
        first.append(env.step(acts[-1])[0]["state"])
    for _ in range(15):  # wander off, then come back
        env.step(np.random.default_rng(0).uniform(-1, 1, 4).astype(np.float32))
    task.set_state(env, state)
    assert np.array_equal(env.get_obs()["state"], at_save)
    again = [env.step(a)[0]["state"] for a in acts]
    env.close()
    for x, y in zip(first, again):
        assert np.array_equal(x, y)


@needs_mw
def test_image_observations_render_the_scene():
    env = make_task("metaworld/reach-v3_image").make_env()
    obs, _ = env.reset(seed=0)
    img = obs["img"]
    obs2, *_ = env.step(np.array([1.0, 0, 0, 0], np.float32))
    env.close()
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8 and img.std() > 20
    assert np.abs(obs2["img"].astype(int) - img).sum() > 0  # the arm moved in the picture
    assert np.array_equal(obs["agent_pos"], obs["state"][:4])


@needs_mw
def test_fast_rendering_draws_the_same_scene_without_smoothing():
    """render_quality=fast changes the renderer, not the scene: the picture of the same state stays
    within a few levels on average of the full one, yet differs (the settings took effect)."""
    frames = {}
    for q in ("full", "fast"):
        env = make_task("metaworld/reach-v3_image", render_quality=q).make_env()
        frames[q] = env.reset(seed=0)[0]["img"].astype(int)
        env.close()
    diff = np.abs(frames["full"] - frames["fast"])
    assert 0 < diff.mean() < 6, diff.mean()
    with pytest.raises(ConfigError, match="render_quality must be one of"):
        make_task("metaworld/reach-v3_image", render_quality="quick")


@needs_mw
def test_collect_train_and_eval_end_to_end(tmp_path):
    """CLI: collect 3 kept demos, train a tiny regression policy, evaluate it on disjoint seeds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    data, run = tmp_path / "d.zarr", tmp_path / "run"
    cli = [sys.executable, "-m", "robolearn"]
    subprocess.run([*cli, "collect", "metaworld/button-press-v3", "--episodes", "3", "--until-kept",
                    "--out", str(data)], env=env, check=True, capture_output=True)  # fmt: skip
    from robolearn.data.replay_buffer import ReplayBuffer

    buf = ReplayBuffer.open(data)
    assert buf.n_episodes == 3 and buf["state"].shape[1] == 39 and buf.attrs["task"] == "metaworld/button-press-v3"
    buf.close()
    subprocess.run([*cli, "train", "task=metaworld/button-press-v3", f"data={data}", "policy=regression",
                    "algo.steps=60", "algo.log_every=20", "algo.val_every=60", "algo.ckpt_every=60",
                    "eval.workers=0", f"run_dir={run}"], env=env, check=True, capture_output=True)  # fmt: skip
    subprocess.run([*cli, "eval", str(run), "--episodes", "2", "--n-envs", "2", "--out", str(tmp_path / "ev")],
                       env=env, check=True, capture_output=True, text=True)  # fmt: skip
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["summary"]["episodes"] == 2 and [e["seed"] for e in m["episodes"]] == [100000, 100001]
    assert all(1 <= e["length"] <= 500 for e in m["episodes"])


@needs_mw
def test_two_processes_split_a_suite_and_the_table_pools_them(tmp_path):
    """Two ranks of one suite run finish disjoint cells; the results table has every task and the
    suite mean over both."""
    exp = tmp_path / "s.yaml"
    exp.write_text(
        "name: s\nsuite: {tasks: [reach-v3, button-press-v3], collect: {episodes: 2}}\nseeds: [0]\n"
        "train: [algo.steps=20, algo.log_every=10, algo.val_every=20, algo.ckpt_every=20, device=cpu]\n"
        "eval: {episodes: 2, n_envs: 2}\nvariants: {reg: {train: [policy=regression]}}\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "robolearn", "ablate", str(exp), "--out", str(out)]
    base = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl", "WORLD_SIZE": "2"}
    procs = [subprocess.Popen(cmd, env={**base, "RANK": str(r)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for r in (0, 1)]  # fmt: skip
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    trained = sorted(p.parent.parent.name for p in out.glob("train/reg/*/s0/train_summary.json"))
    assert trained == ["button-press-v3", "reach-v3"]
    md = (out / "results.md").read_text()
    assert "| reach-v3 | 2 / " in md and "| button-press-v3 | 2 / " in md and "(2 tasks)" in md
    rows = [r for r in json.loads((out / "results.json").read_text())]
    assert sorted(r["task"] for r in rows) == ["button-press-v3", "reach-v3"]


def test_suite_table_means_over_tasks_and_pools_episodes():
    from robolearn.experiments.report import suite_markdown, suite_rows

    row = {"variant": "a", "episodes": 50}
    agg = [
        {**row, "task": "t1", "success": 1.0, "success_lo": 0.9, "success_hi": 1.0, "successes": 50},
        {**row, "task": "t2", "success": 0.2, "success_lo": 0.1, "success_hi": 0.3, "successes": 10},
    ]
    (row,) = suite_rows(agg)
    assert row["success"] == pytest.approx(0.6) and row["tasks"] == 2
    assert row["success_lo"] < 0.6 < row["success_hi"] and row["success_hi"] - row["success_lo"] < 0.2  # 100 episodes
    md = suite_markdown(agg, {"t1": "10 / 12"})
    assert "| t1 | 10 / 12 | 1.00 [0.90, 1.00] |" in md and "**0.600**" in md


def test_expert_audit_tool_flags_weak_experts():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from expert_audit import markdown

    rec = lambda t, n, s: {"task": t, "noise": n, "success": s, "success_ci95": [s - 0.1, s]}  # noqa: E731
    md = markdown([rec("a", 0.0, 0.96), rec("a", 0.1, 0.5), rec("b", 0.0, 0.8), rec("b", 0.1, 0.9)], [0.0, 0.1])
    lines = {line.split(" | ")[0]: line for line in md.splitlines()}
    assert "expert < 90%" in lines["| b"] and "expert <" not in lines["| a"]  # judged on the noiseless expert
