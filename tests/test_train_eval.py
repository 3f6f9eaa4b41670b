"""End to end on a real simulator: collect -> train -> reload in a fresh process -> evaluate."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robolearn.algos.collect import collect
from robolearn.config import compose
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import train


@pytest.fixture(scope="module")
def reach_data(tmp_path_factory) -> Path:
    from robolearn.envs import make_task

    out = tmp_path_factory.mktemp("data") / "reach.zarr"
    s = collect(make_task("fetch_reach", obs="state"), 30, out, progress=False)
    assert s["episodes_kept"] >= 25
    return out


@pytest.fixture(scope="module")
def trained(reach_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    cfg = compose(
        [
            "task=fetch_reach",
            f"data={reach_data}",
            f"run_dir={run}",
            "algo.steps=400",
            "algo.log_every=20",
            "algo.val_every=200",
            "algo.ckpt_every=200",
            "algo.warmup_steps=20",
            "algo.batch_size=64",
            "algo.lr=1e-3",
        ]
    )
    return cfg, run, train(cfg, run, progress=False)


def test_training_lowers_the_loss(trained):
    _, run, _ = trained
    hist = json.loads((run / "train_history.json").read_text())
    first = np.mean([h["loss"] for h in hist[:3]])
    last = np.mean([h["loss"] for h in hist[-3:]])
    assert last < 0.5 * first, (first, last)
    assert (run / "config.yaml").exists() and (run / "loss.png").exists() and list((run / "tb").iterdir())


def test_checkpoint_reloads_identically_in_a_fresh_process(trained, tmp_path):
    _, _, ckpt = trained
    policy = ChunkPolicy.load(ckpt)
    obs = np.random.default_rng(0).normal(size=(3, policy.obs_horizon, 13)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    here = policy.predict_chunk({"state": obs})
    code = (
        "import sys, numpy as np; from robolearn.policy import ChunkPolicy;"
        "p = ChunkPolicy.load(sys.argv[1]); o = np.load(sys.argv[2]);"
        "np.save(sys.argv[3], p.predict_chunk({'state': o}))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(ckpt), str(tmp_path / "obs.npy"), str(tmp_path / "out.npy")], check=True
    )
    there = np.load(tmp_path / "out.npy")
    assert there.shape == (3, policy.horizon, 4)
    np.testing.assert_array_equal(here, there)


def test_resume_continues_from_the_last_checkpoint(reach_data, tmp_path):
    base = [
        "task=fetch_reach",
        f"data={reach_data}",
        f"run_dir={tmp_path}",
        "algo.log_every=10",
        "algo.ckpt_every=50",
        "algo.val_every=50",
        "algo.warmup_steps=5",
        "algo.batch_size=32",
    ]
    train(compose(base + ["algo.steps=50"]), tmp_path, progress=False)
    # same run dir, longer schedule: picks up at step 50 instead of starting over
    cfg = compose(base + ["algo.steps=100"])
    train(cfg, tmp_path, progress=False)
    hist = json.loads((tmp_path / "train_history.json").read_text())
    steps = [h["step"] for h in hist]
    assert steps == sorted(set(steps)) and steps[-1] == 100 and 50 in steps


def test_evaluation_writes_metrics(trained, tmp_path):
    from robolearn.envs import make_task
    from robolearn.eval.rollout import evaluate_policy

    cfg, _, ckpt = trained
    policy = ChunkPolicy.load(ckpt)
    m = evaluate_policy(
        policy,
        make_task("fetch_reach", obs="state"),
        {"name": "receding"},
        tmp_path,
        n_episodes=6,
        n_envs=3,
        n_videos=1,
        progress=False,
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["summary"]["episodes"] == 6 and len(saved["episodes"]) == 6
    assert [e["seed"] for e in saved["episodes"]] == list(range(100_000, 100_006))
    # the summary is computed from the episodes written, not merely plausible
    from robolearn.eval.metrics import wilson_interval

    k = sum(bool(e["success"]) for e in saved["episodes"])
    assert m["success_rate"] == k / 6
    assert m["success_ci95"] == list(wilson_interval(k, 6)) == saved["summary"]["success_ci95"]
    assert m["mean_max_score"] == pytest.approx(np.mean([e["max_score"] for e in saved["episodes"]]))
    assert list((tmp_path / "videos").glob("*.mp4"))


def test_same_seed_same_training(reach_data, tmp_path):
    """Fixed seeds: two short runs give bit-identical weights on CPU."""
    outs = []
    for i in range(2):
        cfg = compose(
            [
                "task=fetch_reach",
                f"data={reach_data}",
                "algo.steps=20",
                "algo.log_every=10",
                "algo.ckpt_every=20",
                "algo.val_every=20",
                "algo.batch_size=32",
            ]
        )
        outs.append(ChunkPolicy.load(train(cfg, tmp_path / str(i), progress=False)))
    for (k, a), (_, b) in zip(outs[0].state_dict().items(), outs[1].state_dict().items()):
        assert torch.equal(a, b), k


def test_wilson_interval_known_values():
    from robolearn.eval.metrics import wilson_interval

    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and abs(hi - 0.0370) < 1e-3  # 3.7%: the "rule of three" neighbourhood
    lo, hi = wilson_interval(100, 100)
    assert hi == 1.0 and abs(lo - 0.9630) < 1e-3
    lo, hi = wilson_interval(5, 10)
    assert abs(lo - 0.2366) < 1e-3 and abs(hi - 0.7634) < 1e-3


def test_rollout_stops_stepping_an_env_whose_episode_ended():
    """Envs end at different steps (Push-T terminates on success): each episode's length is its
    own, the ended env is never stepped again, the others run on."""
    import gymnasium as gym

    from robolearn.envs import make_task
    from robolearn.eval.rollout import rollout

    reach = make_task("fetch_reach", obs="state")
    made: list = []

    class EndsAt(gym.Wrapper):
        def __init__(self, env, k):
            super().__init__(env)
            self.k, self.t, self.steps_after_end = k, 0, 0

        def reset(self, **kw):
            self.t = 0
            return self.env.reset(**kw)

        def step(self, a):
            if self.t >= self.k:
                self.steps_after_end += 1
            self.t += 1
            obs, r, term, trunc, info = self.env.step(a)
            return obs, r, term or self.t >= self.k, trunc, {**info, "is_success": 0.0}

    class Task:
        spec = reach.spec

        def make_env(self, render=False):
            made.append(EndsAt(reach.make_env(), k=3 + 4 * len(made)))
            return made[-1]

    class Still:
        def reset(self):
            pass

        def act(self, obs):
            return np.zeros((len(obs["state"]), 4), np.float32)

    recs = rollout(lambda n, w: Still(), Task(), n_episodes=3, n_envs=3, progress=False)
    assert [r["length"] for r in recs] == [3, 7, 11]
    assert [e.steps_after_end for e in made] == [0, 0, 0]


def test_a_trained_policy_succeeds_in_closed_loop_where_an_untrained_one_fails(trained, tmp_path):
    """Closed loop, not just a falling loss: 400 steps of BC on 30 expert demos solve FetchReach on
    unseen seeds; the same network before training does not."""
    from robolearn.envs import make_task
    from robolearn.eval.rollout import evaluate_policy

    _, _, ckpt = trained
    task = make_task("fetch_reach", obs="state")
    kw = dict(n_episodes=20, n_envs=10, n_videos=0, progress=False)
    m = evaluate_policy(ChunkPolicy.load(ckpt), task, {"name": "receding"}, tmp_path / "a", **kw)
    untrained = ChunkPolicy.load(ckpt)
    for p in untrained.head.parameters():  # the trained normalizer and encoder, a head that knows nothing
        torch.nn.init.normal_(p, std=0.02)
    u = evaluate_policy(untrained, task, {"name": "receding"}, tmp_path / "b", **kw)
    assert m["success_rate"] >= 0.8, m["success_rate"]
    assert u["success_rate"] <= 0.3, u["success_rate"]
