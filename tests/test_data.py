"""Data layer: zarr round trip, window sampling with edge padding, Push-T, normalizer, crash safety."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from robolearn.data import (
    Normalizer,
    ReplayBuffer,
    WindowSampler,
    describe,
    load_dataset,
    parse_obs_key,
    resolve_obs_keys,
    train_val_split,
)
from robolearn.data.sampler import to_torch
from robolearn.errors import ConfigError, DataError


def episode(i: int, T: int) -> dict[str, np.ndarray]:
    """Values encode (episode, step) so every gathered row can be traced back to its source."""
    t = np.arange(T, dtype=np.float32)
    return {
        "obs": np.stack([np.full(T, i, np.float32), t], axis=1),
        "action": np.stack([i * 1000 + t * 10 + d for d in range(3)], axis=1).astype(np.float32),
    }


def make(path: Path, lengths=(3, 1, 4)) -> ReplayBuffer:
    buf = ReplayBuffer.create(path)
    for i, T in enumerate(lengths):
        buf.add_episode(episode(i, T))
    return buf


def reference_window(ends, e, t, To, H):
    """A deliberately naive per-item version of the window definition, to check the tables against."""
    s = ends[e - 1] if e else 0
    end = ends[e]
    obs = [max(s + t + j, s) for j in range(1 - To, 1)]
    act = [min(s + t + h, end - 1) for h in range(H)]
    return obs, [s + t + j >= s for j in range(1 - To, 1)], act, [s + t + h < end for h in range(H)]


def test_write_reopen_sample_round_trip(tmp_path):
    path = tmp_path / "d.zarr"
    make(path).attrs.update({"task": "toy", "seeds": [0, 1, 2], "noise": 0.1})
    buf = ReplayBuffer.open(path)
    assert buf.n_episodes == 3 and buf.n_steps == 8 and sorted(buf.keys) == ["action", "obs"]
    assert buf.episode_ends.tolist() == [3, 4, 8] and buf.episode_lengths.tolist() == [3, 1, 4]
    assert buf.episode_slice(2) == slice(4, 8)
    assert dict(buf.attrs) == {"task": "toy", "seeds": [0, 1, 2], "noise": 0.1}
    for i, T in enumerate((3, 1, 4)):
        for k, v in buf.get_episode(i).items():
            np.testing.assert_array_equal(v, episode(i, T)[k])

    arrays = buf.load(["obs", "action"])
    s = WindowSampler(arrays, buf.episode_ends, ["obs"], "action", obs_horizon=3, horizon=4)
    assert len(s) == 8
    b = s.sample(np.arange(8))
    assert b["obs"]["obs"].shape == (8, 3, 2) and b["action"].shape == (8, 4, 3) and b["action"].dtype == np.float32
    # Hand-computed: episode 0 (rows 0..2) at t=0 repeats its first frame, its chunk runs off the end.
    np.testing.assert_array_equal(b["obs"]["obs"][0], [[0, 0], [0, 0], [0, 0]])
    assert b["obs_mask"][0].tolist() == [False, False, True]
    np.testing.assert_array_equal(b["action"][0, :, 0], [0, 10, 20, 20])
    assert b["action_mask"][0].tolist() == [True, True, True, False]
    # Episode 1 has a single step: everything is that step, only the first action is real.
    np.testing.assert_array_equal(b["obs"]["obs"][3], [[1, 0]] * 3)
    np.testing.assert_array_equal(b["action"][3, :, 0], [1000] * 4)
    assert b["action_mask"][3].tolist() == [True, False, False, False]
    # Episode 2, last step t=3: full history, chunk = last action repeated.
    np.testing.assert_array_equal(b["obs"]["obs"][7], [[2, 1], [2, 2], [2, 3]])
    assert b["obs_mask"][7].all()
    np.testing.assert_array_equal(b["action"][7, :, 1], [2031] * 4)
    # And every window against the naive definition.
    ends = buf.episode_ends
    w = 0
    for e, T in enumerate((3, 1, 4)):
        for t in range(T):
            oi, om, ai, am = reference_window(ends, e, t, 3, 4)
            np.testing.assert_array_equal(b["obs"]["obs"][w], arrays["obs"][oi])
            np.testing.assert_array_equal(b["action"][w], arrays["action"][ai])
            assert b["obs_mask"][w].tolist() == om and b["action_mask"][w].tolist() == am
            w += 1


def test_created_store_is_zarr3_chunked_compressed(tmp_path):
    path = tmp_path / "d.zarr"
    make(path, lengths=(50, 60))
    assert json.loads((path / "zarr.json").read_text())["zarr_format"] == 3
    g = zarr.open_group(str(path), mode="r")
    for k in ("obs", "action"):
        a = g[f"data/{k}"]
        assert a.metadata.zarr_format == 3
        assert a.chunks[1:] == a.shape[1:]  # chunked along time only
        assert len(a.compressors) >= 1
    assert g["meta/episode_ends"].dtype == np.int64
    assert ReplayBuffer.open(path).zarr_format == 3


def test_selected_episodes_and_random_batches(tmp_path):
    buf = make(tmp_path / "d.zarr", lengths=(3, 1, 4, 2))
    arrays = buf.load(buf.keys)
    s = WindowSampler(arrays, buf.episode_ends, ["obs"], "action", 2, 3, episodes=np.array([1, 3]))
    assert len(s) == 3
    b = s.sample(np.arange(3))
    assert b["obs"]["obs"][:, -1, 0].tolist() == [1, 3, 3]  # only episodes 1 and 3 appear
    g1, g2 = s.random_batch(16, np.random.default_rng(5)), s.random_batch(16, np.random.default_rng(5))
    np.testing.assert_array_equal(g1["action"], g2["action"])
    tb = to_torch(s.random_batch(4, np.random.default_rng(0)), torch.device("cpu"))
    assert isinstance(tb["action"], torch.Tensor) and tb["action"].dtype == torch.float32
    assert tb["action_mask"].dtype == torch.bool and tb["obs"]["obs"].shape == (4, 2, 2)


def test_images_become_uint8_and_lazy_matches_memory(tmp_path):
    path = tmp_path / "img.zarr"
    buf = ReplayBuffer.create(path)
    rng = np.random.default_rng(0)
    for T in (5, 3):
        img = rng.integers(0, 256, size=(T, 6, 5, 3)).astype(np.float32)  # Push-T stores 0..255 floats
        buf.add_episode(
            {
                "img": img,
                "state": rng.normal(size=(T, 4)).astype(np.float32),
                "action": rng.normal(size=(T, 2)).astype(np.float32),
            }
        )
    raw = zarr.open_group(str(path), mode="r")["data/img"][:]
    spec = ["img", "pos=state[1:3]", "last=state[-1]"]
    buf_m, mem = load_dataset(path, spec, in_memory=True)
    _, lazy = load_dataset(path, spec, in_memory=False)
    assert mem["img"].dtype == np.uint8 and lazy["img"].dtype == np.uint8
    np.testing.assert_array_equal(mem["img"], raw.astype(np.uint8))
    np.testing.assert_array_equal(mem["pos"], buf_m.load(["state"])["state"][:, 1:3])
    assert mem["last"].shape == (8, 1)
    np.testing.assert_array_equal(resolve_obs_keys(buf_m, ["p=state[1:3]"])["p"], mem["pos"])
    with pytest.raises(ConfigError, match="state"):
        resolve_obs_keys(buf_m, ["p=state[9:12]"])  # selects no column
    keys = ["img", "pos", "last"]
    sm = WindowSampler(mem, buf_m.episode_ends, keys, "action", 2, 4)
    sl = WindowSampler(lazy, buf_m.episode_ends, keys, "action", 2, 4)
    idx = np.random.default_rng(1).integers(0, 8, size=20)
    bm, bl = sm.sample(idx), sl.sample(idx)
    for k in keys:
        np.testing.assert_array_equal(bm["obs"][k], bl["obs"][k])
    np.testing.assert_array_equal(bm["action"], bl["action"])
    assert bm["obs"]["img"].dtype == np.uint8
    mem_buf = ReplayBuffer.open(path, in_memory=True)
    assert isinstance(mem_buf["img"], np.ndarray) and mem_buf["img"].dtype == np.uint8
    assert mem_buf.get_episode(1)["img"].shape == (3, 6, 5, 3)


def test_parse_obs_key():
    assert parse_obs_key("state") == ("state", "state", None)
    assert parse_obs_key("agent_pos=state[0:2]") == ("agent_pos", "state", slice(0, 2))
    assert parse_obs_key(" x = state[ 3 ] ") == ("x", "state", slice(3, 4))
    assert parse_obs_key("y=state[2:]") == ("y", "state", slice(2, None))


def test_append_reopened_store_and_in_memory_append(tmp_path):
    path = tmp_path / "d.zarr"
    make(path, lengths=(2, 3))
    buf = ReplayBuffer.open(path, mode="a", in_memory=True)
    buf.add_episode(episode(2, 4))
    assert buf.n_episodes == 3 and buf["obs"].shape == (9, 2)
    again = ReplayBuffer.open(path)
    np.testing.assert_array_equal(again.get_episode(2)["action"], episode(2, 4)["action"])
    np.testing.assert_array_equal(again.load(["obs"])["obs"], buf["obs"])


def test_create_refuses_to_overwrite_and_protects_other_files(tmp_path):
    path = tmp_path / "d.zarr"
    make(path, lengths=(2,))
    with pytest.raises(DataError, match="already exists"):
        ReplayBuffer.create(path)
    assert ReplayBuffer.open(path).n_episodes == 1
    ReplayBuffer.create(path, overwrite=True).add_episode(episode(0, 5))
    assert ReplayBuffer.open(path).n_steps == 5
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(DataError, match="refusing"):
        ReplayBuffer.create(precious, overwrite=True)
    assert (precious / "chapter1.tex").exists()


CRASH = textwrap.dedent("""
    import os, sys
    import numpy as np
    from robolearn.data.replay_buffer import ReplayBuffer
    buf = ReplayBuffer.open(sys.argv[1], mode="a")
    ReplayBuffer._commit = lambda self, end: os._exit(17)  # die after the data write, before episode_ends
    T = 7
    buf.add_episode({"obs": np.full((T, 2), -5, np.float32), "action": np.full((T, 3), -5, np.float32)})
""")


def test_crash_between_data_write_and_episode_ends_leaves_valid_dataset(tmp_path):
    path = tmp_path / "d.zarr"
    make(path, lengths=(3, 4))
    r = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 17, r.stderr
    raw = zarr.open_group(str(path), mode="r")
    assert raw["data/obs"].shape[0] == 14  # the partial episode's rows really are on disk
    buf = ReplayBuffer.open(path)
    assert buf.n_episodes == 2 and buf.n_steps == 7
    assert buf.load(["obs"])["obs"].shape == (7, 2)
    for i, T in enumerate((3, 4)):
        np.testing.assert_array_equal(buf.get_episode(i)["obs"], episode(i, T)["obs"])
    # Appending after the crash overwrites the leftovers.
    buf = ReplayBuffer.open(path, mode="a")
    buf.add_episode(episode(2, 2))
    buf = ReplayBuffer.open(path)
    assert buf.episode_ends.tolist() == [3, 7, 9]
    assert zarr.open_group(str(path), mode="r")["data/obs"].shape[0] == 9
    np.testing.assert_array_equal(buf.get_episode(2)["obs"], episode(2, 2)["obs"])
    assert not (buf.load(["obs"])["obs"] == -5).any()


def test_ends_grown_but_never_written_is_an_interrupted_append(tmp_path):
    """The other crash point: episode_ends resized (metadata) but its chunk not yet written."""
    path = tmp_path / "d.zarr"
    make(path, lengths=(3, 4))
    ends = zarr.open_group(str(path), mode="r+")["meta/episode_ends"]
    ends.resize((3,))  # the new element reads as the fill value
    buf = ReplayBuffer.open(path, mode="a")
    assert buf.episode_ends.tolist() == [3, 7]
    buf.add_episode(episode(2, 5))
    assert ReplayBuffer.open(path).episode_ends.tolist() == [3, 7, 12]


def test_crash_during_first_episode(tmp_path):
    path = tmp_path / "d.zarr"
    ReplayBuffer.create(path)
    r = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 17, r.stderr
    with pytest.raises(DataError, match="0 episodes"):
        ReplayBuffer.open(path)
    buf = ReplayBuffer.open(path, mode="a")
    buf.add_episode({"other": np.ones((2, 1), np.float32), "action": np.ones((2, 3), np.float32)})
    assert ReplayBuffer.open(path).keys == ["action", "other"]


def test_train_val_split_by_episode():
    tr, va = train_val_split(20, 0.25, seed=3)
    assert len(va) == 5 and len(tr) == 15
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(20))
    tr2, va2 = train_val_split(20, 0.25, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, train_val_split(20, 0.25, seed=4)[1])
    assert len(train_val_split(5, 0.0, seed=0)[1]) == 0
    assert len(train_val_split(2, 0.9, seed=0)[0]) == 1  # keeps at least one training episode


def test_describe_summarises(tmp_path):
    path = tmp_path / "d.zarr"
    make(path, lengths=(3, 1, 4)).attrs["task"] = "toy"
    text = describe(path)
    assert "episodes: 3" in text and "steps: 8" in text and "1 / 2.7 / 4" in text
    assert "obs" in text and "action" in text and "toy" in text and "zarr format 3" in text
    assert "min [0 0]" in text and "max [2 3]" in text  # obs column ranges: episode id, step


# -- normalizer ------------------------------------------------------------------------------------
def test_normalizer_round_trip_constant_dims_and_save_load(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(500, 4)).astype(np.float32)
    x[:, 2] = 7.25  # constant dimension
    kp = rng.uniform(-5, 5, size=(500, 3, 2)).astype(np.float32)
    norm = Normalizer().fit(
        {"action": x, "kp": kp, "state": x}, {"action": "minmax", "kp": "minmax", "state": "gaussian"}
    )
    assert norm.keys == ["action", "kp", "state"]
    t = torch.from_numpy(x)
    y = norm.normalize("action", t)
    assert torch.allclose(y.amin(0)[[0, 1, 3]], torch.tensor(-1.0)) and torch.allclose(
        y.amax(0)[[0, 1, 3]], torch.tensor(1.0)
    )
    assert (y[:, 2] == 0).all()
    g = norm.normalize("state", t)
    assert torch.allclose(g.mean(0)[[0, 1, 3]], torch.zeros(3), atol=1e-4)
    assert torch.allclose(g.std(0, unbiased=False)[[0, 1, 3]], torch.ones(3), atol=1e-4)
    for k in ("action", "state"):
        back = norm.unnormalize(k, norm.normalize(k, t))
        assert torch.allclose(back, t, atol=1e-5)
        assert (norm.unnormalize(k, torch.randn(10, 4))[:, 2] == 7.25).all()  # constant comes back exactly
    # any leading shape: (B, H, A) and (B, To, 3, 2)
    chunk = t[:24].reshape(2, 3, 4, 4)
    torch.testing.assert_close(norm.normalize("action", chunk), y[:24].reshape(2, 3, 4, 4))
    kpt = torch.from_numpy(kp[:8]).reshape(2, 4, 3, 2)
    assert norm.normalize("kp", kpt).abs().max() <= 1.0 + 1e-6
    norm.save(tmp_path / "n.safetensors")
    loaded = Normalizer.load(tmp_path / "n.safetensors")
    assert loaded.modes == norm.modes
    for k, v in (("action", t), ("state", t), ("kp", kpt)):
        assert torch.equal(loaded.normalize(k, v), norm.normalize(k, v))
        assert torch.equal(loaded.unnormalize(k, v), norm.unnormalize(k, v))
    assert set(norm.state_dict()) >= {"action__center", "action__scale"}
    moved = loaded.to(torch.float64)
    assert moved.action__center.dtype == torch.float64  # buffers follow .to(), so they follow the device too


def test_normalizer_rejects_unknown_key_and_shape(tmp_path):
    norm = Normalizer().fit({"action": np.arange(12, dtype=np.float32).reshape(6, 2)})
    with pytest.raises(DataError, match="'state'"):
        norm.normalize("state", torch.zeros(2))
    with pytest.raises(DataError, match=r"trailing shape \(2,\)"):
        norm.normalize("action", torch.zeros(4, 3))
    with pytest.raises(DataError, match="no.safetensors"):
        Normalizer.load(tmp_path / "no.safetensors")


# -- the real Push-T demonstrations ---------------------------------------------------------------
def test_pusht_opens_and_windows_equal_raw_slices(pusht_zarr):
    """Skipped (by the conftest fixture) unless ROBOLEARN_PUSHT_ZARR points at the dataset."""
    PUSHT = str(pusht_zarr)
    raw = zarr.open_group(PUSHT, mode="r")
    ends = raw["meta/episode_ends"][:]
    buf, arrays = load_dataset(PUSHT, ["state", "agent_pos=state[0:2]"], in_memory=True)
    assert buf.n_episodes == len(ends) == 206 and buf.n_steps == ends[-1]
    assert buf.zarr_format == 2
    To, H = 2, 16
    s = WindowSampler(arrays, buf.episode_ends, ["state", "agent_pos"], "action", To, H)
    assert len(s) == ends[-1]
    state, action = raw["data/state"][:], raw["data/action"][:]
    starts = np.concatenate([[0], ends[:-1]])
    # first and last steps of some episodes (padding at both ends) plus random interior steps
    picks = [(e, 0) for e in (0, 17, 205)] + [(e, ends[e] - starts[e] - 1) for e in (0, 99, 205)]
    rng = np.random.default_rng(0)
    picks += [(int(e), int(rng.integers(0, ends[e] - starts[e]))) for e in rng.integers(0, 206, 10)]
    idx = np.array([starts[e] + t for e, t in picks])  # all episodes selected: window index = global step
    b = s.sample(idx)
    for w, (e, t) in enumerate(picks):
        s0, e0 = starts[e], ends[e]
        g = s0 + t
        exp_obs = state[max(g - 1, s0) : g + 1]
        if g == s0:
            exp_obs = np.concatenate([state[s0 : s0 + 1], exp_obs])
        exp_act = action[g : min(g + H, e0)]
        n_real = len(exp_act)
        exp_act = np.concatenate([exp_act, np.repeat(action[e0 - 1 : e0], H - n_real, axis=0)])
        np.testing.assert_array_equal(b["obs"]["state"][w], exp_obs)
        np.testing.assert_array_equal(b["obs"]["agent_pos"][w], exp_obs[:, :2])
        np.testing.assert_array_equal(b["action"][w], exp_act)
        assert b["action_mask"][w].tolist() == [True] * n_real + [False] * (H - n_real)
        assert b["obs_mask"][w].tolist() == [g > s0, True]
    # images: lazily read, uint8, equal to the stored floats
    _, lazy = load_dataset(PUSHT, ["img"], in_memory=False)
    si = WindowSampler(lazy, buf.episode_ends, ["img"], "action", To, H)
    bi = si.sample(idx[:4])
    assert bi["obs"]["img"].dtype == np.uint8 and bi["obs"]["img"].shape == (4, To, 96, 96, 3)
    img = raw["data/img"]
    for w in range(4):
        g = idx[w]
        rows = [max(g - 1, starts[picks[w][0]]), g]
        np.testing.assert_array_equal(
            bi["obs"]["img"][w], img.get_orthogonal_selection((np.array(rows),)).astype(np.uint8)
        )


def test_create_killed_midway_leaves_no_half_made_store(tmp_path, monkeypatch):
    """The empty store is built beside its path and renamed: a create that dies after the first
    metadata file leaves nothing at the path, and the next create succeeds (and tidies up)."""
    import robolearn.data.replay_buffer as rb

    real = rb.zarr.create_group

    def dies_after_the_root(*a, **k):
        real(*a, **k)
        raise KeyboardInterrupt  # as if killed between the root's and the arrays' metadata

    monkeypatch.setattr(rb.zarr, "create_group", dies_after_the_root)
    with pytest.raises(KeyboardInterrupt):
        ReplayBuffer.create(tmp_path / "d.zarr")
    monkeypatch.setattr(rb.zarr, "create_group", real)
    assert not (tmp_path / "d.zarr").exists()
    ReplayBuffer.create(tmp_path / "d.zarr").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_open_or_create_recovers_a_store_that_never_held_anything(tmp_path):
    """A store an older version began and was killed in (metadata only) is made again; a damaged
    store that holds data is reported, never replaced."""
    zarr.create_group(str(tmp_path / "half.zarr"), zarr_format=3)
    with pytest.raises(DataError, match="key 'data'"):
        ReplayBuffer.open(tmp_path / "half.zarr", mode="a")
    buf = ReplayBuffer.open_or_create(tmp_path / "half.zarr")
    buf.add_episode({"action": np.zeros((3, 2), np.float32)})
    buf.close()
    assert ReplayBuffer.open(tmp_path / "half.zarr").n_episodes == 1
    damaged = tmp_path / "damaged.zarr"
    zarr.create_group(str(damaged), zarr_format=3)
    (damaged / "c0").write_bytes(b"someone's data")
    with pytest.raises(DataError, match="key 'data'"):
        ReplayBuffer.open_or_create(damaged)
    assert (damaged / "c0").read_bytes() == b"someone's data"
    ReplayBuffer.open_or_create(tmp_path / "half.zarr").close()  # a failed open kept no lock behind


def test_collect_append_records_every_collection(tmp_path):
    from robolearn.algos.collect import collect
    from robolearn.envs import make_task

    task = make_task("fetch_reach")
    out = tmp_path / "d.zarr"
    collect(task, 3, out, seed_start=0, progress=False)
    collect(task, 2, out, seed_start=50, noise=0.1, append=True, progress=False)
    attrs = dict(ReplayBuffer.open(out).attrs)
    runs = attrs["collections"]
    assert [(r["seed_start"], r["seed_end"], r["episodes_run"], r["noise"]) for r in runs] == [
        (0, 3, 3, 0.0),
        (50, 52, 2, 0.1),
    ]
    assert all(r["episodes_kept"] <= r["episodes_run"] and r["started"] for r in runs)
    assert attrs["episodes_run"] == 5 and attrs["seed_start"] == 0 and attrs["noise"] == "mixed (see collections)"
    with pytest.raises(ConfigError, match="fetch_push"):
        collect(make_task("fetch_push"), 1, out, append=True, progress=False)
