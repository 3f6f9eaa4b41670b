"""Visuomotor policies end to end: a policy trained from Push-T pixels is saved, reloaded in a
fresh process (same chunks as the trained EMA weights in memory) and evaluated in the
simulator; the auxiliary target (``policy.aux_key``) learns a known answer, stays out of the
checkpoint, and bad settings stop before training with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from robolearn.config import compose, to_dict
from robolearn.data.normalizer import Normalizer
from robolearn.errors import ConfigError, DataError
from robolearn.policy import ChunkPolicy
from robolearn.spec import ObsSpec
from robolearn.train.trainer import DataBundle, train

TINY_IMAGE = [  # a small trunk and head: seconds per run on one core
    "policy.encoder.rgb.width=4",
    "policy.encoder.rgb.num_keypoints=8",
    "policy.encoder.rgb.feature_dim=16",
    "policy.head.down_dims=[16,32]",
    "policy.head.num_steps=2",
]


@pytest.fixture(scope="module")
def image_run(pusht_zarr, tmp_path_factory):
    run = tmp_path_factory.mktemp("img") / "run"
    cfg = compose(
        [
            "task=pusht_image",
            "policy=flow",
            *TINY_IMAGE,
            "policy.aux_key=keypoint",
            f"run_dir={run}",
            "algo.steps=12",
            "algo.batch_size=8",
            "algo.log_every=4",
            "algo.val_every=12",
            "algo.warmup_steps=2",
            "algo.max_episodes=12",
        ]
    )
    return cfg, run, train(cfg, run, progress=False)


def test_image_policy_reloads_in_a_fresh_process_with_the_trained_weights(image_run, pusht_zarr, tmp_path):
    """The checkpoint, loaded in another process, gives the chunk that the trained EMA weights in
    memory give (rebuilt from the resume state, not from the checkpoint), for the same
    observation and noise. Catches a checkpoint that saves the raw weights instead of the EMA, or
    drops or renames any encoder weight, or an eval crop that is random."""
    cfg, run, ckpt = image_run
    import zarr

    g = zarr.open_group(str(pusht_zarr), mode="r")
    img = g["data/img"][100:102].astype(np.uint8)[None]  # (1, To=2, 96, 96, 3)
    pos = g["data/state"][100:102, :2].astype(np.float32)[None]
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "pos.npy", pos)

    data = DataBundle(cfg, pusht_zarr)
    mem = ChunkPolicy(to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer, aux_dim=data.aux_dim)
    state = torch.load(run / "resume" / "state.pt", weights_only=True)
    mem.load_state_dict(state["ema"])
    mem.eval()
    here = mem.predict_chunk({"img": img, "agent_pos": pos}, generator=torch.Generator().manual_seed(3))
    raw = ChunkPolicy(to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer, aux_dim=data.aux_dim)
    raw.load_state_dict(state["model"])
    raw.eval()
    other = raw.predict_chunk({"img": img, "agent_pos": pos}, generator=torch.Generator().manual_seed(3))
    # EMA and raw weights differ by far more than the tolerance below: the comparison tells them apart
    assert np.abs(other - here).max() > 0.05

    code = (
        "import sys, numpy as np, torch; from robolearn.policy import ChunkPolicy;"
        "p = ChunkPolicy.load(sys.argv[1]); assert p.aux_head is None;"
        "o = {'img': np.load(sys.argv[2]), 'agent_pos': np.load(sys.argv[3])};"
        "np.save(sys.argv[4], p.predict_chunk(o, generator=torch.Generator().manual_seed(3)))"
    )
    out = tmp_path / "chunk.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(ckpt), str(tmp_path / "img.npy"), str(tmp_path / "pos.npy"), str(out)],
        check=True,
    )
    there = np.load(out)
    assert there.shape == (1, 16, 2)
    # actions in pixels (0..512); another process may use another thread count (float sums reorder)
    np.testing.assert_allclose(there, here, rtol=0, atol=1e-3)


def test_image_policy_is_evaluated_in_the_simulator_from_its_checkpoint(image_run, tmp_path):
    """`robolearn eval` on the image run, in a fresh process: a few rendered episodes, the protocol's
    seeds, metrics with one row per episode."""
    _, run, _ = image_run
    out = tmp_path / "eval"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "robolearn",
            "eval",
            str(run),
            "--episodes",
            "2",
            "--n-envs",
            "2",
            "--max-steps",
            "20",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    metrics = json.loads(next(out.rglob("metrics.json")).read_text())
    assert metrics["summary"]["episodes"] == 2 and metrics["summary"]["max_steps"] == 20
    assert sorted(e["seed"] for e in metrics["episodes"]) == [100000, 100001]
    assert all(0.0 <= e["max_score"] <= 1.0 and e["length"] <= 20 for e in metrics["episodes"])


def test_aux_loss_is_logged_and_falls(image_run):
    _, run, _ = image_run
    hist = json.loads((run / "train_history.json").read_text())
    assert all("aux_loss" in h and "head_loss" in h for h in hist)
    assert hist[0]["loss"] == pytest.approx(hist[0]["head_loss"] + hist[0]["aux_loss"], rel=1e-5)


# ---- the auxiliary target on a problem with a known answer ------------------------------------


def squares(n: int, rng: np.random.Generator, size: int = 48, sq: int = 8):
    """Two frames per sample, a bright square at a new random place in each; the target of each
    frame is its own square's centre (so a target taken from the wrong frame cannot be learned)."""
    xy = rng.integers(0, size - sq, size=(n, 2, 2))
    img = np.zeros((n, 2, size, size, 3), np.uint8)
    for i in range(n):
        for t in range(2):
            x, y = xy[i, t]
            img[i, t, y : y + sq, x : x + sq] = 255
    return img, ((xy + sq / 2) / size).astype(np.float32)


def test_aux_head_learns_where_the_square_is_in_each_frame():
    """Actions carry no information about the image (random), so only the auxiliary loss can
    teach the encoder the square's position: after 250 steps its error on held-out frames is
    well below the error of predicting the mean (observed ~0.1 of it). Catches an auxiliary
    head fed detached features, or a target aligned with the other frame or not normalized."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = {"img": ObsSpec((48, 48, 3), "uint8", "rgb")}
    cfg = {
        "obs_horizon": 2,
        "horizon": 4,
        "n_action_steps": 4,
        "aux_key": "pos",
        "aux_weight": 1.0,
        "encoder": {"rgb": {"width": 8, "num_keypoints": 8, "feature_dim": 16, "crop": None}},
        "head": {"name": "regression", "hidden": [32]},
    }
    _, y = squares(2000, rng)
    norm = Normalizer().fit({"pos": y.reshape(-1, 2), "action": rng.uniform(-1, 1, (100, 2))})
    policy = ChunkPolicy(cfg, spec, 2, norm, aux_dim=2)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(250):
        x, y = squares(32, rng)
        batch = {"obs": {"img": x}, "action": rng.uniform(-1, 1, (32, 4, 2)).astype(np.float32), "aux": y}
        out = policy.compute_loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    policy.eval()
    x, y = squares(256, np.random.default_rng(1))
    with torch.no_grad():
        feats = torch.cat(policy.encoder.features(policy._prep_obs({"img": x})), dim=-1)
        pred = norm.unnormalize("pos", policy.aux_head(feats).unflatten(-1, (2,)))
    err = (pred.numpy() - y).__abs__().mean()
    chance = np.abs(y - y.reshape(-1, 2).mean(0)).mean()
    assert err < 0.3 * chance, (err, chance)


def test_checkpoint_of_a_policy_with_an_aux_head_holds_no_aux_weights(tmp_path):
    spec = {"state": ObsSpec((3,))}
    norm = Normalizer().fit({"state": np.random.randn(50, 3), "action": np.random.randn(50, 2), "t": np.zeros((50, 4))})
    cfg = {"obs_horizon": 1, "horizon": 2, "aux_key": "t", "head": {"name": "regression"}}
    p = ChunkPolicy(cfg, spec, 2, norm, aux_dim=4)
    assert p.aux_head is not None
    p.save(tmp_path / "ck")
    from safetensors.torch import load_file

    assert not [k for k in load_file(str(tmp_path / "ck" / "model.safetensors")) if k.startswith("aux_head")]
    assert ChunkPolicy.load(tmp_path / "ck").aux_head is None


# ---- bad settings: one line, before a run directory exists -----------------------------------


@pytest.mark.parametrize(
    "override, words",
    [
        ("policy.aux_key=block_pose", ["data/block_pose", "policy.aux_key", "keypoint"]),
        ("policy.aux_key=img", ["data/img", "policy.aux_key", "low-dim", "uint8"]),
        ("policy.aux_weight=-1", ["policy.aux_weight", "number >= 0", "-1"]),
        ("policy.aux_kye=keypoint", ["policy.aux_kye", "did you mean 'policy.aux_key'"]),
    ],
)
def test_bad_aux_settings_are_one_line_before_training(pusht_zarr, tmp_path, override, words):
    run = tmp_path / "run"
    with pytest.raises((ConfigError, DataError)) as e:
        cfg = compose(["task=pusht_image", "policy=flow", f"run_dir={run}", "algo.steps=2", override])
        train(cfg, run, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not run.exists()
