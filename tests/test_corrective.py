"""Corrective labels without an expert (robolearn correct): exact on problems with known answers,
trusted only where a learned model is accurate, end to end on a real simulator."""

import os
import subprocess
import sys

import numpy as np
import pytest

from robolearn.algos.corrective import audit, corrective_samples, keep_labels
from robolearn.dynamics import cross_fit, fit_dynamics
from robolearn.envs.toy import (
    OFF,
    ON_ACTION,
    RECOVER,
    ChainMDP,
    TabularLearner,
    closed_form_costs,
    exact_cost,
    train_dagger,
)


def test_true_dynamics_labels_on_the_chain_are_the_experts_recovery():
    """Demonstrations never leave the chain; perturbing a demonstrated state knocks it off, and the
    action that brings it back onto the demonstrated next state is the expert's RECOVER. BC on
    the demos plus these labels has DAgger's cost eps*H, BC alone the quadratic one."""
    H, eps, n = 40, 0.01, 3
    mdp = ChainMDP(H)
    states, actions = np.ones((n * H, 1)), np.full((n * H, 1), float(ON_ACTION))
    ends = np.arange(1, n + 1) * H

    def step(S, A):
        return ChainMDP.step(S[:, 0] > 0.5, A[:, 0].astype(int)).astype(float)[:, None]

    samples = corrective_samples(
        states,
        actions,
        ends,
        step,
        n_samples=30,
        noise=0.0,
        horizon=1,
        obs_horizon=1,
        bounds=(np.zeros(1), np.ones(1)),
        rng=np.random.default_rng(0),
        perturb=lambda s, rng: np.zeros(1),  # off the chain
        candidates=np.array([[0.0], [1.0]]),
    )
    assert all(s["action"][0, 0] == RECOVER and s["error"][0] == 0 for s in samples)
    demo_obs = np.tile(np.arange(H), n)
    bc = TabularLearner(eps).fit(demo_obs, actions[:, 0].astype(int))
    corrected = TabularLearner(eps).fit(
        np.concatenate([demo_obs, np.full(len(samples), OFF)]),
        np.concatenate([actions[:, 0].astype(int), [int(s["action"][0, 0]) for s in samples]]),
    )
    costs = closed_form_costs(eps, H)
    assert exact_cost(mdp, bc) == pytest.approx(costs["bc_never_recovers"])
    assert exact_cost(mdp, corrected) == pytest.approx(costs["dagger_recovers"])
    dagger, _ = train_dagger(mdp, eps, n_demos=n, rounds=2, rollouts_per_round=400)
    assert exact_cost(mdp, corrected) == pytest.approx(exact_cost(mdp, dagger))


A_LIN = np.array([[1.0, 0.1], [0.0, 1.0]])  # a double integrator, dt = 0.1
B_LIN = np.array([[0.005], [0.1]])


def _linear_demos(n_eps=20, T=30, seed=0):
    rng = np.random.default_rng(seed)
    S, U, ends = [], [], []
    for _ in range(n_eps):
        x = rng.uniform(-1, 1, 2)
        for _ in range(T):
            u = np.clip(-np.array([2.0, 2.5]) @ x, -1, 1)[None]
            S.append(x)
            U.append(u)
            x = A_LIN @ x + B_LIN @ u
        ends.append(len(S))
    return np.array(S), np.array(U), np.array(ends)


def test_true_dynamics_labels_on_a_linear_system_solve_the_least_squares_problem():
    S, U, ends = _linear_demos()
    scale = S.std(0) + 1e-6
    samples = corrective_samples(
        S,
        U,
        ends,
        lambda s, a: s @ A_LIN.T + a @ B_LIN.T,
        n_samples=50,
        noise=0.05,
        horizon=4,
        obs_horizon=1,
        bounds=(-np.ones(1), np.ones(1)),
        rng=np.random.default_rng(1),
        n_candidates=64,
        iters=6,
    )
    for smp in samples:
        t, s_c = smp["t"][0], smp["state"][0]
        Bn = B_LIN / scale[:, None]
        best = np.linalg.lstsq(Bn, (S[t + 1] - A_LIN @ s_c) / scale, rcond=None)[0]
        best = np.clip(best, -1, 1)
        assert abs(smp["action"][0, 0] - best[0]) < 0.02
        chunk = smp["chunk"][0]  # (obs_horizon, H, A): the one frame's chunk
        assert chunk.shape == (4, 1) and chunk[0, 0] == smp["action"][0, 0]
        end = ends[np.searchsorted(ends, t, side="right")]
        np.testing.assert_array_equal(chunk[1:, 0], U[np.minimum(np.arange(t + 1, t + 4), end - 1), 0])


def test_audit_executes_labels_in_the_true_system():
    S, U, ends = _linear_demos()
    true = lambda s, a: s @ A_LIN.T + a @ B_LIN.T  # noqa: E731
    biased = lambda s, a: s @ A_LIN.T + a @ B_LIN.T + np.array([0.0, 0.05])  # noqa: E731  a wrong model
    kw = dict(n_samples=40, noise=0.05, horizon=4, obs_horizon=1, bounds=(-np.ones(1), np.ones(1)), n_candidates=64)
    good = corrective_samples(S, U, ends, true, rng=np.random.default_rng(1), **kw)
    bad = corrective_samples(S, U, ends, biased, rng=np.random.default_rng(1), **kw)
    # audited by the system that searched them, the errors are the search's own
    np.testing.assert_allclose(audit(true, good, S), [g["error"].max() for g in good], rtol=1e-9)
    # the wrong model's labels look as good to it as the true ones, and fail in the real system
    assert np.median([b["error"].max() for b in bad]) < 2 * np.median([g["error"].max() for g in good]) + 0.05
    assert np.median(audit(true, bad, S)) > 5 * np.median(audit(true, good, S))
    assert audit(true, [], S).shape == (0,)


def test_learned_dynamics_fits_a_linear_system_and_untrusted_labels_are_rejected():
    rng = np.random.default_rng(0)
    s, a = rng.uniform(-1, 1, (4000, 2)), rng.uniform(-1, 1, (4000, 1))
    nxt = s @ A_LIN.T + a @ B_LIN.T
    model = fit_dynamics(s[:3000], a[:3000], nxt[:3000], steps=2000, hidden=(64, 64))
    err = (model.predict(s[3000:], a[3000:]) - nxt[3000:]) / nxt.std(0)
    assert np.sqrt(np.mean(err**2)) < 0.05
    # half the episodes come from another region, where the "system" is noise: no model can predict
    # it there, and cross-fitting (each transition predicted by the model that did not see it) shows it
    S, U, ends = _linear_demos(n_eps=40)
    nxt = S @ A_LIN.T + U @ B_LIN.T
    ep = np.repeat(np.arange(40), 30)
    wild = ep % 2 == 1
    S[wild] += 4.0
    nxt[wild] = 4.0 + rng.normal(size=(wild.sum(), 2))
    models, fold = cross_fit(S, U, nxt, ep, steps=2000, hidden=(64, 64))
    pred = np.where((fold == 0)[:, None], models[0].predict(S, U), models[1].predict(S, U))
    heldout = np.sqrt(np.mean(((pred - nxt) / S[~wild].std(0)) ** 2, axis=-1))
    assert np.median(heldout[~wild]) < 0.3 < 1.0 < np.median(heldout[wild])
    samples = [{"t": np.array([t]), "error": np.array([0.0])} for t in range(len(S))]
    kept = keep_labels(samples, threshold=1.0, heldout=heldout, trust=0.3)
    kept_t = np.array([k["t"][0] for k in kept])
    assert len(kept_t) > 0.3 * (~wild).sum() and wild[kept_t].mean() < 0.05


# ---- end to end on catch ---------------------------------------------------------------------
def _cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "robolearn", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def catch_demos(tmp_path_factory):
    d = tmp_path_factory.mktemp("catch")
    r = _cli("collect", "catch", "--episodes", "10", "--out", str(d / "demos.zarr"), cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "demos.zarr"


def test_correct_on_catch_with_the_simulator(catch_demos, tmp_path):
    from robolearn.data.replay_buffer import ReplayBuffer
    from robolearn.envs import make_task

    out = tmp_path / "corrected.zarr"
    r = _cli("correct", "catch", "--data", str(catch_demos), "--out", str(out), "--samples", "30", "--horizon", "8",
             cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "kept" in r.stdout
    buf, demos = ReplayBuffer.open(out), ReplayBuffer.open(catch_demos)
    info = buf.attrs["corrective"]
    assert buf.n_episodes == demos.n_episodes + info["kept"] and info["kept"] >= 15
    d = buf.load(["state", "action", "action_chunk", "corrective", "label_error"])
    assert d["action_chunk"].shape[1:] == (8, 2)
    gen = np.flatnonzero(d["corrective"] == 1)
    assert len(gen) == 2 * info["kept"] and d["label_error"][gen].max() < 0.1
    # a kept label, executed from its perturbed state, lands within its error of a demonstrated next state
    task = make_task("catch")
    env = task.make_env()
    env.reset(seed=0)
    demo = demos.load(["state"])["state"].astype(np.float64)
    scale = demo.std(0) + 1e-6
    for i in gen[:6]:
        task.set_correction_state(env, d["state"][i].astype(np.float64))
        env.step(d["action"][i])
        reached = task.correction_state(env)
        best = np.sqrt(np.mean(((demo - reached) / scale) ** 2, axis=-1)).min()
        assert best <= d["label_error"][i] + 1e-3
    env.close()
    # provenance: each corrective episode names its demonstration; training splits over the
    # demonstrations exactly as for the demos alone, and a corrective episode follows its source
    from types import SimpleNamespace

    from robolearn.data.dataset import train_val_split
    from robolearn.train.data import split_episodes

    src = np.asarray(buf.attrs["derived"]["source_episode"])
    assert buf.attrs["derived"]["demo_episodes"] == demos.n_episodes and len(src) == info["kept"]
    assert src.min() >= 0 and src.max() < demos.n_episodes
    algo = SimpleNamespace(max_episodes=None, val_mask=None, val_fraction=0.2)
    train, val = split_episodes(buf, buf.n_episodes, algo, 3, out)
    demo_train, demo_val = train_val_split(demos.n_episodes, 0.2, seed=3)
    assert list(val) == list(demo_val) and set(demo_train) <= set(train)
    kept_derived = train[train >= demos.n_episodes] - demos.n_episodes
    assert set(src[kept_derived]) <= set(demo_train) and len(kept_derived) == np.isin(src, demo_train).sum()
    # the demonstrations' stored chunks and masks are exactly their training windows
    from robolearn.data.sampler import WindowSampler

    dm = buf.load(["action_chunk_mask"])["action_chunk_mask"]
    n_demo = int(demos.episode_ends[-1])
    win = WindowSampler(d, demos.episode_ends, obs_keys=["state"], action_key="action", obs_horizon=2, horizon=8)
    w = win.sample(np.arange(len(win)))
    np.testing.assert_array_equal(d["action_chunk"][win.t], w["action"])
    np.testing.assert_array_equal(dm[win.t], w["action_mask"])
    assert len(win) == n_demo and not dm[:n_demo].all() and dm[n_demo:, 0].all()
    # training reads the stored chunks
    t = _cli("train", "task=catch", f"data={out}", "algo.chunk_key=action_chunk", "policy=regression",
             "algo.steps=20", "algo.batch_size=16", "algo.ckpt_every=20", "algo.val_every=20",
             f"run_dir={tmp_path / 'run'}", cwd=tmp_path)  # fmt: skip
    assert t.returncode == 0, t.stderr[-1500:]


def test_correct_on_catch_with_learned_dynamics(catch_demos, tmp_path):
    from robolearn.data.replay_buffer import ReplayBuffer

    out = tmp_path / "ccil.zarr"
    r = _cli("correct", "catch", "--data", str(catch_demos), "--out", str(out), "--dynamics", "learned",
             "--samples", "30", "--horizon", "8", "--threshold", "0.5", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = ReplayBuffer.open(out).attrs["corrective"]
    assert info["dynamics"] == "learned" and 0 < info["kept"] <= 30 and info["heldout_error_median"] > 0
    # the model's labels were executed in the simulator: reported for kept (and rejected) ones
    assert 0 <= info["sim_within_threshold_kept"] <= 1 and info["sim_error_median_kept"] > 0
    assert "checked in the simulator" in r.stdout


@pytest.mark.parametrize(
    "args,words",
    [
        (["fetch_reach"], ["fetch_reach", "correction_states"]),
        (["catch", "--noise", "0"], ["--noise"]),
        (["catch", "--samples", "0"], ["--samples"]),
        (["catch", "--dynamics", "imagined"], ["--dynamics"]),
        (["catch", "--threshold", "-1"], ["--threshold"]),
    ],
)
def test_bad_input_is_one_line(catch_demos, tmp_path, args, words):
    r = _cli("correct", *args, "--data", str(catch_demos), "--out", str(tmp_path / "o.zarr"), cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert all(w in r.stderr for w in words), r.stderr
    assert not (tmp_path / "o.zarr").exists()


def test_a_dataset_without_the_state_key_is_one_line(tmp_path):
    from robolearn.data.replay_buffer import ReplayBuffer

    p = tmp_path / "other.zarr"
    b = ReplayBuffer.create(p)
    b.add_episode({"obs": np.zeros((5, 3), np.float32), "action": np.zeros((5, 2), np.float32)})
    r = _cli("correct", "catch", "--data", str(p), "--out", str(tmp_path / "o.zarr"), cwd=tmp_path)
    assert r.returncode == 2 and "data/state" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_audit_measures_how_far_executed_labels_land_from_the_demonstration():
    """The simulator check of learned labels, on a step with a known answer (s' = s + a): a label
    that reaches the demonstrated next state scores 0, one that overshoots by d in one of two
    dims scores d / std / sqrt(2), and a sample is scored by its worst step."""
    from robolearn.algos.corrective import audit

    states = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0], [4.0, 6.0]])
    scale = states.std(0) + 1e-6
    step = lambda s, a: s + a  # noqa: E731
    exact = {"t": np.array([0, 1]), "state": states[[0, 1]], "action": states[[1, 2]] - states[[0, 1]]}
    off = {
        "t": np.array([0, 2]),
        "state": states[[0, 2]],
        "action": states[[1, 3]] - states[[0, 2]] + [[0.0, 0.0], [0.5, 0.0]],
    }
    err = audit(step, [exact, off], states)
    assert err[0] == pytest.approx(0.0, abs=1e-9)
    assert err[1] == pytest.approx(0.5 / scale[0] / np.sqrt(2))
