"""DAgger / HG-DAgger / DART on real Fetch simulators: labels, gating, noise, accounting, faults."""

import json
import os
import sys

import numpy as np
import pytest
import torch

from robolearn.algos.acting import CHUNK_KEY, ExpertActs, Gated, Mixture, run_episode
from robolearn.algos.dagger import beta_at, run_dagger
from robolearn.algos.dart import noise_from_errors, run_dart
from robolearn.algos.labelers import ScriptedLabeler, TeacherLabeler
from robolearn.config import compose, to_dict
from robolearn.data.normalizer import Normalizer
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.envs import make_task
from robolearn.errors import ConfigError
from robolearn.policy import ChunkPolicy
from robolearn.spec import ObsSpec
from robolearn.train.trainer import DataBundle
from tests.procs import kill_when

H = 8  # the Fetch tasks' chunk length (configs/task/fetch_*.yaml policy_defaults)
SMALL = [
    "algo.demo_episodes=6",
    "algo.episodes_per_round=4",
    "algo.steps=100",
    "algo.batch_size=64",
    "algo.warmup_steps=10",
    "algo.log_every=50",
    "algo.ckpt_every=100",
    "algo.heldout_episodes=3",
    "eval.episodes=4",
    "eval.n_envs=2",
    "device=cpu",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two shared cores: a second torch thread only fights the simulator (4x slower training here)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def push():
    return make_task("fetch_push", obs="state")


@pytest.fixture(scope="module")
def random_policy(push):
    """An untrained policy: a learner that strays, so the expert has work to do."""
    torch.manual_seed(0)
    cfg = compose(["task=fetch_push"])
    rng = np.random.default_rng(0)
    norm = Normalizer().fit({"state": rng.normal(size=(100, 28)), "action": rng.uniform(-1, 1, (100, 4))})
    return ChunkPolicy(to_dict(cfg.policy), {"state": ObsSpec((28,))}, 4, norm).eval()


def _episode(task, labeler, actor, seed=3, rng_seed=0, chunk=True, policy=None):
    env = task.make_env()
    try:
        return run_episode(
            task,
            env,
            labeler,
            seed,
            actor,
            np.random.default_rng(rng_seed),
            chunk,
            policy,
            {"name": "receding"},
            torch.Generator().manual_seed(0),
        )
    finally:
        env.close()


def test_chunk_label_is_the_experts_own_future(push):
    """Rolling the expert from a restored state gives exactly what it did next; labelling
    leaves the rollout itself untouched."""
    lab = ScriptedLabeler(push, H)
    (fast,), _ = _episode(push, lab, ExpertActs())  # chunks read off the trajectory
    (rolled,), st = _episode(push, lab, ExpertActs(noise=0.0))  # chunks rolled at every state
    assert st["label_sim_steps"] == (H - 1) * len(rolled["action"])
    np.testing.assert_array_equal(fast["state"], rolled["state"])
    np.testing.assert_allclose(fast[CHUNK_KEY], rolled[CHUNK_KEY], atol=1e-6)
    T = len(rolled["action"])
    assert T > H
    for t in range(T):
        k = min(H, T - t)
        np.testing.assert_allclose(rolled[CHUNK_KEY][t, :k], rolled["action"][t : t + k], atol=1e-6)


def test_mixture_labels_belong_to_the_visited_states(push, random_policy):
    lab = ScriptedLabeler(push, H)
    (ep,), st = _episode(push, lab, Mixture(beta=0.5), policy=random_policy)
    n = len(ep["action"])
    assert st["labels"] == st["env_steps"] == n
    frac = ep["expert_acted"].mean()
    assert 0.2 < frac < 0.8, frac
    acted = ep["expert_acted"] == 1
    np.testing.assert_array_equal(ep["exec_action"][acted], ep["action"][acted])
    assert np.abs(ep["exec_action"][~acted] - ep["action"][~acted]).max() > 0.1
    np.testing.assert_array_equal(ep[CHUNK_KEY][:, 0], ep["action"])
    # replay the executed actions from the same seed: every stored label is the expert's at that state
    env = push.make_env()
    obs, _ = env.reset(seed=3)
    for t in range(n):
        np.testing.assert_array_equal(obs["state"], ep["state"][t])
        np.testing.assert_allclose(lab.chunk(env), ep[CHUNK_KEY][t], atol=1e-6)
        obs, *_ = env.step(ep["exec_action"][t])
    env.close()


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_beta_extremes(push, random_policy, beta):
    (ep,), _ = _episode(push, ScriptedLabeler(push, H), Mixture(beta=beta), policy=random_policy, chunk=False)
    assert CHUNK_KEY not in ep
    assert np.all(ep["expert_acted"] == int(beta))


def test_hg_dagger_stores_only_takeovers(push, random_policy):
    lab = ScriptedLabeler(push, H)
    segs, st = _episode(push, lab, Gated(threshold=0.5, release=0.5, min_takeover=2), policy=random_policy)
    assert segs and st["labels"] == sum(len(s["action"]) for s in segs) <= st["env_steps"] == st["queries"]
    for s in segs:
        assert np.all(s["expert_acted"] == 1)
        np.testing.assert_array_equal(s["exec_action"], s["action"])
    none, st = _episode(push, lab, Gated(threshold=1e9, release=0.5, min_takeover=4), policy=random_policy)
    assert none == [] and st["labels"] == 0 and st["env_steps"] > 0


def test_beta_schedules():
    from omegaconf import OmegaConf

    a = OmegaConf.create({"beta": 0.8, "rounds": 5, "beta_decay": 0.5})
    assert [beta_at(r, OmegaConf.merge(a, {"beta_schedule": "constant"})) for r in (1, 3)] == [0.8, 0.8]
    lin = [beta_at(r, OmegaConf.merge(a, {"beta_schedule": "linear"})) for r in range(1, 6)]
    np.testing.assert_allclose(lin, [0.8, 0.6, 0.4, 0.2, 0.0])
    exp = [beta_at(r, OmegaConf.merge(a, {"beta_schedule": "exponential"})) for r in range(1, 4)]
    np.testing.assert_allclose(exp, [0.8, 0.4, 0.2])


def test_dart_noise_is_the_error_covariance(push):
    cov = np.array([[0.04, 0.03, 0, 0], [0.03, 0.04, 0, 0], [0, 0, 0.01, 0], [0, 0, 0, 0]])
    L, std = noise_from_errors(cov, "full")
    np.testing.assert_allclose(L @ L.T, cov, atol=1e-12)
    assert std == pytest.approx(np.sqrt(np.trace(cov) / 4))
    D, _ = noise_from_errors(cov, "diag")
    np.testing.assert_allclose(np.diag(D), np.sqrt(np.diag(cov)))
    capped, _ = noise_from_errors(cov * 100, "full", max_std=0.5)
    assert np.sqrt(np.max(np.diag(capped @ capped.T))) == pytest.approx(0.5)
    # the executed action is exactly clip(label + L z), z drawn from the rollout's generator
    (ep,), _ = _episode(push, ScriptedLabeler(push, H), ExpertActs(noise=L), rng_seed=7)
    rng = np.random.default_rng(7)
    want = np.stack([np.clip(a + L @ rng.standard_normal(4), -1, 1) for a in ep["action"]])
    np.testing.assert_allclose(ep["exec_action"], want, atol=1e-6)
    assert np.abs(ep["exec_action"] - ep["action"]).max() > 0.05


def test_teacher_labels_are_its_predicted_chunks(push, random_policy):
    teacher = TeacherLabeler(random_policy, H)
    (ep,), st = _episode(push, teacher, ExpertActs())
    assert st["label_sim_steps"] == 0
    s = ep["state"]
    hist = np.stack([np.concatenate([s[:1], s[:-1]]), s], axis=1)  # To=2, first frame repeated
    want = random_policy.predict_chunk({"state": hist})
    np.testing.assert_allclose(ep[CHUNK_KEY], want, atol=1e-5)
    np.testing.assert_allclose(ep["exec_action"], np.clip(want[:, 0], -1, 1), atol=1e-5)


# ---- whole runs on FetchReach -----------------------------------------------------------------
@pytest.fixture(scope="module")
def dagger_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("dagger")
    cfg = compose(["algo=dagger", "task=fetch_reach", f"run_dir={run}", "algo.rounds=2", *SMALL])
    return run, run_dagger(cfg, run, progress=False)


def test_dagger_run_grows_the_dataset_and_keeps_the_ledger(dagger_run):
    run, prog = dagger_run
    rows = prog["history"]
    assert [r["round"] for r in rows] == [0, 1, 2] and prog["completed_round"] == 2
    labels = [r["expert_labels"] for r in rows]
    assert labels[0] < labels[1] < labels[2]
    assert all(np.isfinite(r["offpolicy_mse"]) and np.isfinite(r["onpolicy_mse"]) for r in rows)
    assert rows[1]["beta"] == 0.5 and rows[2]["beta"] == 0.25
    buf = ReplayBuffer.open(run / "data.zarr")
    d = buf.load(["round", "rollout", CHUNK_KEY, "action"])
    assert buf.n_steps == labels[-1]
    assert set(np.unique(d["round"])) == {0, 1, 2}
    assert len(np.unique(d["rollout"])) == buf.n_episodes  # one stored episode per rollout
    np.testing.assert_array_equal(d[CHUNK_KEY][:, 0], d["action"])
    csv = (run / "ledger.csv").read_text().splitlines()
    assert len(csv) == 4 and csv[0].startswith("method,seed,round,expert_labels")
    assert (run / "ledger.png").stat().st_size > 0


def test_chunk_bundle_trains_on_stored_chunks(dagger_run):
    run, _ = dagger_run
    cfg = compose(["algo=dagger", "task=fetch_reach", "algo.chunk_key=action_chunk", *SMALL])
    b = DataBundle(cfg, run / "data.zarr")
    rng = np.random.default_rng(0)
    batch = b.batch(b.train, 32, np.random.default_rng(0))
    t = b.train.t[rng.integers(0, len(b.train), size=32)]
    np.testing.assert_array_equal(batch["action"], b.chunks[t])
    assert batch["action"].shape == (32, H, 4) and batch["action_mask"].all()


def test_teacher_student_run(dagger_run, tmp_path):
    """DAgger with a trained policy as the expert (what makes DAgger possible on Push-T)."""
    run, prog = dagger_run
    teacher = run / prog["checkpoints"]["2"]  # stored relative to the run dir
    cfg = compose(
        [
            "algo=dagger",
            "task=fetch_reach",
            f"run_dir={tmp_path}",
            "algo.rounds=1",
            f"algo.expert={teacher}",
            "algo.keep_failed_demos=true",
            *SMALL,
        ]
    )
    out = run_dagger(cfg, tmp_path, progress=False)
    assert out["completed_round"] == 1 and out["history"][-1]["label_sim_steps"] == 0


def test_dart_run_sets_noise_from_the_learner_error(tmp_path):
    cfg = compose(
        ["algo=dart", "task=fetch_reach", f"run_dir={tmp_path}", "algo.rounds=1", "algo.noise_max=10", *SMALL]
    )
    prog = run_dart(cfg, tmp_path, progress=False)
    r0, r1 = prog["history"]
    cov = np.asarray(r0["error_cov"])
    assert r1["noise_std"] == pytest.approx(np.sqrt(np.trace(cov) / len(cov)))
    assert r1["noise_std"] > 0 and r0["noise_std"] == 0.0
    d = ReplayBuffer.open(tmp_path / "data.zarr").load(["round", "action", "exec_action"])
    noisy = d["round"] == 1
    assert np.all(d["action"][~noisy] == d["exec_action"][~noisy])
    assert np.abs(d["action"][noisy] - d["exec_action"][noisy]).max() > 0


def test_killed_run_resumes_from_the_last_completed_round(tmp_path):
    """SIGKILL in the middle of round 1's collection: the dataset still opens, the run picks up
    at round 1 with round 0 untouched, and round 1 ends with exactly its rollouts (none twice)."""
    args = [
        "algo=dagger",
        "task=fetch_reach",
        f"run_dir={tmp_path}",
        "algo.rounds=1",
        *SMALL,
        "algo.episodes_per_round=60",
    ]
    env = {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}
    sidecar = tmp_path / "round_01" / "collect.json"

    def mid_round() -> bool:
        try:
            return sidecar.exists() and len(json.loads(sidecar.read_text() or "{}")) >= 5
        except json.JSONDecodeError:
            return False

    kill_when([sys.executable, "-m", "robolearn.algos.interactive", *args], env, mid_round, timeout=120)
    before = json.loads((tmp_path / "progress.json").read_text())
    assert before["completed_round"] == 0
    buf = ReplayBuffer.open(tmp_path / "data.zarr")  # valid, with part of round 1 in it
    partial = buf.load(["round"])["round"]
    assert (partial == 1).any()

    prog = run_dagger(compose(args), tmp_path, progress=False)
    assert [r["round"] for r in prog["history"]] == [0, 1]
    assert prog["history"][0] == before["history"][0]  # round 0 was not redone
    d = ReplayBuffer.open(tmp_path / "data.zarr").load(["round", "rollout"])
    ids = np.unique(d["rollout"][d["round"] == 1])
    assert len(ids) == 60 and ids.min() == 100_000 and ids.max() == 100_059
    assert prog["history"][1]["rollouts"] == 60


def test_a_store_left_half_made_by_a_kill_is_recreated_on_resume(tmp_path):
    """A launch killed while it created data.zarr / heldout.zarr (zarr metadata written, no
    array yet: what an older robolearn left behind) used to stop every later launch with
    "key 'data' expected a zarr group"; the same command now starts those stores again."""
    import zarr

    for name in ("data.zarr", "heldout.zarr"):
        zarr.create_group(str(tmp_path / name), zarr_format=3)
    args = ["algo=dagger", "task=fetch_reach", f"run_dir={tmp_path}", "algo.rounds=0", *SMALL]
    prog = run_dagger(compose(args), tmp_path, progress=False)
    assert [r["round"] for r in prog["history"]] == [0]
    assert ReplayBuffer.open(tmp_path / "data.zarr").n_episodes == 6  # the demonstrations of round 0
    assert ReplayBuffer.open(tmp_path / "heldout.zarr").n_episodes == 3


@pytest.mark.parametrize(
    "task, words",
    [
        ("fetch_push", ["algo.expert=", "'state'", "task's shape", "teacher's (13,)"]),  # same key, another shape
        ("pusht_keypoints", ["algo.expert=", "the teacher observes", "['state'] missing"]),  # keys it lacks
    ],
)
def test_a_teacher_that_does_not_fit_the_students_task_is_one_line_before_any_rollout(
    dagger_run, tmp_path, task, words
):
    run, prog = dagger_run
    teacher = run / prog["checkpoints"]["2"]  # a fetch_reach policy (state (13,), 4-D actions)
    cfg = compose(["algo=dagger", f"task={task}", f"run_dir={tmp_path / 'r'}", "algo.rounds=1",
                   f"algo.expert={teacher}", *SMALL])  # fmt: skip
    with pytest.raises(ConfigError) as e:
        run_dagger(cfg, tmp_path / "r", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not (tmp_path / "r" / "data.zarr").exists()
