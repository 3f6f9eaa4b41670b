"""Other tools' formats: LeRobot v3.0 / v2.1 and robomimic hdf5 datasets written here by hand
after the published layouts (not by robolearn's own writer) convert to zarr with every array
intact; zarr -> LeRobot v3.0 -> zarr round-trips (images within the codec's loss); bad input
gives one line and leaves nothing behind."""

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="the LeRobot extra (pyarrow) is not installed")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av", reason="the LeRobot extra (PyAV) is not installed")
h5py = pytest.importorskip("h5py", reason="the robomimic extra (h5py) is not installed")

from robolearn.data.formats import convert, detect  # noqa: E402
from robolearn.data.replay_buffer import ReplayBuffer  # noqa: E402
from robolearn.errors import DataError  # noqa: E402

LENGTHS = [7, 12, 5]
CAMS = {"observation.images.top": (32, 48), "observation.images.wrist": (16, 16)}


def _episodes(seed=0):
    rng = np.random.default_rng(seed)
    eps = []
    for t in LENGTHS:
        ep = {
            "observation.state": rng.normal(size=(t, 6)).astype(np.float32),
            "action": rng.normal(size=(t, 3)).astype(np.float32),
            "next.reward": rng.random(size=(t, 1)).astype(np.float32),
        }
        for cam, (h, w) in CAMS.items():
            # smooth images (the codec keeps them nearly exact): a gradient plus a moving bar
            yy, xx = np.mgrid[0:h, 0:w]
            frames = []
            for i in range(t):
                img = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 40 * (i % 5))], -1)
                frames.append(img.astype(np.uint8))
            ep[cam] = np.stack(frames)
        eps.append(ep)
    return eps


def _mp4(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": "10"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _features(video: bool) -> dict:
    f = {
        "observation.state": {"dtype": "float32", "shape": [6], "names": None},
        "action": {"dtype": "float32", "shape": [3], "names": None},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        **{
            k: {"dtype": "int64", "shape": [1], "names": None}
            for k in ("frame_index", "episode_index", "index", "task_index")
        },
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    }
    if video:
        for cam, (h, w) in CAMS.items():
            f[cam] = {
                "dtype": "video",
                "shape": [h, w, 3],
                "names": ["height", "width", "channels"],
                "info": {"video.fps": 10, "video.codec": "h264"},
            }
    return f


def _rows(eps, first_index=0):
    cols = {
        k: []
        for k in (
            "observation.state",
            "action",
            "next.reward",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        )
    }
    idx = first_index
    for e, ep in enumerate(eps):
        for i in range(len(ep["action"])):
            cols["observation.state"].append(ep["observation.state"][i].tolist())
            cols["action"].append(ep["action"][i].tolist())
            cols["next.reward"].append(float(ep["next.reward"][i, 0]))
            cols["timestamp"].append(i / 10)
            cols["frame_index"].append(i)
            cols["episode_index"].append(e)
            cols["index"].append(idx)
            cols["task_index"].append(0)
            idx += 1
    return pa.table(
        {
            "observation.state": pa.array(cols["observation.state"], type=pa.list_(pa.float32(), 6)),
            "action": pa.array(cols["action"], type=pa.list_(pa.float32(), 3)),
            "next.reward": pa.array(cols["next.reward"], type=pa.float32()),
            "timestamp": pa.array(cols["timestamp"], type=pa.float32()),
            **{k: pa.array(cols[k], type=pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")},
        }
    )


def write_lerobot_v3(root: Path, eps, video: bool = True) -> None:
    """A LeRobot v3.0 dataset: one data file, one video file per camera, episodes metadata."""
    n = sum(len(e["action"]) for e in eps)
    info = {
        "codebase_version": "v3.0",
        "robot_type": "test",
        "total_episodes": len(eps),
        "total_frames": n,
        "total_tasks": 1,
        "chunks_size": 1000,
        "fps": 10,
        "splits": {"train": f"0:{len(eps)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if video else None,
        "features": _features(video),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(_rows(eps), root / "data" / "chunk-000" / "file-000.parquet")
    ends = np.cumsum([len(e["action"]) for e in eps])
    starts = ends - [len(e["action"]) for e in eps]
    ep_cols = {
        "episode_index": list(range(len(eps))),
        "tasks": [["push the block"]] * len(eps),
        "length": [len(e["action"]) for e in eps],
        "data/chunk_index": [0] * len(eps),
        "data/file_index": [0] * len(eps),
        "dataset_from_index": starts.tolist(),
        "dataset_to_index": ends.tolist(),
    }
    if video:
        for cam in CAMS:
            _mp4(root / "videos" / cam / "chunk-000" / "file-000.mp4", np.concatenate([e[cam] for e in eps]))
            ep_cols[f"videos/{cam}/chunk_index"] = [0] * len(eps)
            ep_cols[f"videos/{cam}/file_index"] = [0] * len(eps)
            ep_cols[f"videos/{cam}/from_timestamp"] = (starts / 10).tolist()
            ep_cols[f"videos/{cam}/to_timestamp"] = (ends / 10).tolist()
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(ep_cols), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(
        pa.table({"task_index": [0], "__index_level_0__": ["push the block"]}), root / "meta" / "tasks.parquet"
    )


def write_lerobot_v21(root: Path, eps) -> None:
    """A LeRobot v2.1 dataset: a parquet and an mp4 per episode and camera, jsonl metadata."""
    info = {
        "codebase_version": "v2.1",
        "robot_type": "test",
        "total_episodes": len(eps),
        "fps": 10,
        "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": _features(True),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "push the block"}) + "\n")
    (root / "meta" / "episodes.jsonl").write_text(
        "".join(
            json.dumps({"episode_index": i, "tasks": ["push the block"], "length": len(e["action"])}) + "\n"
            for i, e in enumerate(eps)
        )
    )
    (root / "data" / "chunk-000").mkdir(parents=True)
    first = 0
    for i, e in enumerate(eps):
        t = _rows([e], first)
        t = t.set_column(t.column_names.index("episode_index"), "episode_index", pa.array([i] * len(e["action"])))
        pq.write_table(t, root / "data" / "chunk-000" / f"episode_{i:06d}.parquet")
        first += len(e["action"])
        for cam in CAMS:
            _mp4(root / "videos" / "chunk-000" / cam / f"episode_{i:06d}.mp4", e[cam])


def _check(store: Path, eps, video: bool = True) -> None:
    buf = ReplayBuffer.open(store)
    assert list(buf.episode_lengths) == LENGTHS
    for i, e in enumerate(eps):
        got = buf.get_episode(i)
        np.testing.assert_array_equal(got["state"], e["observation.state"])
        np.testing.assert_array_equal(got["action"], e["action"])
        np.testing.assert_array_equal(got["next_reward"], e["next.reward"])
        if video:
            for cam, key in (("observation.images.top", "top"), ("observation.images.wrist", "wrist")):
                assert got[key].shape == e[cam].shape and got[key].dtype == np.uint8
                err = np.abs(got[key].astype(int) - e[cam]).mean(axis=(1, 2, 3))  # yuv420p at 16 px: a few levels
                assert err.max() < 8.0, err
                # frames are the episode's own, in order: each is nearest its original, not a neighbour
                blue = got[key][..., 2].astype(float).mean(axis=(1, 2))
                np.testing.assert_allclose(blue, e[cam][..., 2].mean(axis=(1, 2)), atol=6)
    assert buf.attrs["tasks"] == ["push the block"]
    assert buf.attrs["key_map"]["observation.state"] == "state"


@pytest.mark.parametrize("video", [True, False])
def test_lerobot_v3_to_zarr(tmp_path, video):
    eps = _episodes()
    write_lerobot_v3(tmp_path / "le", eps, video=video)
    assert detect(tmp_path / "le") == "lerobot"
    s = convert(tmp_path / "le", tmp_path / "out.zarr", progress=False)
    assert s["episodes"] == 3 and s["frames"] == sum(LENGTHS)
    _check(tmp_path / "out.zarr", eps, video)
    assert not (tmp_path / "out.zarr.partial").exists()


def test_lerobot_v21_to_zarr(tmp_path):
    eps = _episodes(1)
    write_lerobot_v21(tmp_path / "le", eps)
    convert(tmp_path / "le", tmp_path / "out.zarr", progress=False)
    _check(tmp_path / "out.zarr", eps)


def test_resize_on_conversion(tmp_path):
    write_lerobot_v3(tmp_path / "le", _episodes())
    convert(tmp_path / "le", tmp_path / "out.zarr", image_size=24, progress=False)
    buf = ReplayBuffer.open(tmp_path / "out.zarr")
    assert buf["top"].shape[1:] == (24, 24, 3) and buf["wrist"].shape[1:] == (24, 24, 3)


def write_robomimic(path: Path, eps, masks=None, bad_demo=None) -> None:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1})
        data.attrs["total"] = sum(len(e["action"]) for e in eps)
        for i, e in enumerate(eps):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(e["action"])
            g.create_dataset("actions", data=e["action"])
            g.create_dataset("rewards", data=e["next.reward"][:, 0])
            g.create_dataset("dones", data=np.eye(1, len(e["action"]), len(e["action"]) - 1)[0].astype(np.int64))
            g.create_dataset(
                "obs/robot0_eef_pos",
                data=e["observation.state"][:, :3] if i != bad_demo else e["observation.state"][:-1, :3],
            )
            g.create_dataset("obs/agentview_image", data=e["observation.images.wrist"])
        for name, demos in (masks or {}).items():
            f.create_dataset(f"mask/{name}", data=np.array([d.encode() for d in demos]))


def test_robomimic_to_zarr_keeps_demo_order_and_masks(tmp_path):
    eps = _episodes() + _episodes(2)[:1]  # demo_0 .. demo_3
    # demo order is numeric: write 4 demos and name one demo_10 to check demo_2 < demo_10
    write_robomimic(tmp_path / "d.hdf5", eps, masks={"train": ["demo_0", "demo_1", "demo_3"], "valid": ["demo_2"]})
    with h5py.File(tmp_path / "d.hdf5", "a") as f:
        f.move("data/demo_3", "data/demo_10")
        del f["mask/train"]
        f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_1", b"demo_10"]))
    assert detect(tmp_path / "d.hdf5") == "robomimic"
    s = convert(tmp_path / "d.hdf5", tmp_path / "out.zarr", progress=False)
    buf = ReplayBuffer.open(tmp_path / "out.zarr")
    assert list(buf.episode_lengths) == [len(e["action"]) for e in eps]
    assert buf.attrs["demos"] == ["demo_0", "demo_1", "demo_2", "demo_10"]
    assert buf.attrs["masks"] == {"train": [0, 1, 3], "valid": [2]}
    for i, e in enumerate(eps):
        got = buf.get_episode(i)
        np.testing.assert_array_equal(got["action"], e["action"])
        np.testing.assert_array_equal(got["robot0_eef_pos"], e["observation.state"][:, :3])
        np.testing.assert_array_equal(got["agentview_image"], e["observation.images.wrist"])
        np.testing.assert_array_equal(got["reward"][:, 0], e["next.reward"][:, 0])
    assert s["masks"] == {"train": 3, "valid": 1}


def test_round_trip_zarr_lerobot_zarr(tmp_path):
    rng = np.random.default_rng(3)
    buf = ReplayBuffer.create(tmp_path / "a.zarr")
    buf.attrs.update({"task": "fetch_push", "fps": 25})
    originals = []
    for t in (9, 4, 13):
        yy, xx = np.mgrid[0:32, 0:32]
        img = np.stack([np.stack([xx * 8, yy * 8, np.full_like(xx, 10 * i)], -1) for i in range(t)]).astype(np.uint8)
        ep = {
            "state": rng.normal(size=(t, 5)).astype(np.float32),
            "action": rng.normal(size=(t, 2)).astype(np.float32),
            "img": img,
            "wrist": img[:, ::-1].copy(),
        }
        buf.add_episode(ep)
        originals.append(ep)
    convert(tmp_path / "a.zarr", tmp_path / "le", progress=False)
    info = json.loads((tmp_path / "le" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 25 and info["total_frames"] == 26
    assert info["features"]["observation.images.img"]["dtype"] == "video"
    assert (tmp_path / "le" / "videos" / "observation.images.wrist" / "chunk-000" / "file-000.mp4").is_file()
    stats = json.loads((tmp_path / "le" / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(
        stats["observation.state"]["mean"],
        np.concatenate([e["state"] for e in originals]).mean(0),
        rtol=1e-5,
        atol=1e-6,
    )
    convert(tmp_path / "le", tmp_path / "b.zarr", progress=False)
    back = ReplayBuffer.open(tmp_path / "b.zarr")
    assert sorted(back.keys) == ["action", "img", "state", "wrist"]
    for i, e in enumerate(originals):
        got = back.get_episode(i)
        np.testing.assert_array_equal(got["state"], e["state"])
        np.testing.assert_array_equal(got["action"], e["action"])
        for k in ("img", "wrist"):
            mse = np.mean((got[k].astype(float) - e[k]) ** 2)
            psnr = 10 * np.log10(255**2 / max(mse, 1e-12))
            assert psnr > 35, f"episode {i} {k}: PSNR {psnr:.1f} dB"


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("missing_video", "video file missing"),
        ("frame_count", "expected 12 frames"),
        ("version", "codebase_version"),
        ("info_json", "expected JSON"),
        ("row_count", "expected 12 frames"),
    ],
)
def test_lerobot_bad_input_is_one_line_and_leaves_nothing(tmp_path, breakage, match):
    root = tmp_path / "le"
    eps = _episodes()
    write_lerobot_v21(root, eps)
    if breakage == "missing_video":
        (root / "videos" / "chunk-000" / "observation.images.top" / "episode_000001.mp4").unlink()
    elif breakage == "frame_count":
        _mp4(
            root / "videos" / "chunk-000" / "observation.images.top" / "episode_000001.mp4",
            eps[1]["observation.images.top"][:9],
        )
    elif breakage == "version":
        info = json.loads((root / "meta" / "info.json").read_text())
        (root / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v9.9"}))
    elif breakage == "info_json":
        (root / "meta" / "info.json").write_text("{not json")
    elif breakage == "row_count":
        lines = (root / "meta" / "episodes.jsonl").read_text().splitlines()
        lines[1] = json.dumps({"episode_index": 1, "tasks": ["push the block"], "length": 12})
        pq.write_table(_rows([eps[1]]).slice(0, 10), root / "data" / "chunk-000" / "episode_000001.parquet")
    with pytest.raises(DataError, match=match) as e:
        convert(root, tmp_path / "out.zarr", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.zarr.partial").exists()


def test_robomimic_bad_input(tmp_path):
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(DataError, match="key 'data'"):
        convert(tmp_path / "empty.hdf5", tmp_path / "a.zarr", progress=False)
    with h5py.File(tmp_path / "nodemos.hdf5", "w") as f:
        f.create_group("data").create_group("mask_like")
    with pytest.raises(DataError, match=r"nodemos.hdf5: key 'data': expected demo_<i> groups, found \['mask_like'\]"):
        convert(tmp_path / "nodemos.hdf5", tmp_path / "n.zarr", progress=False)
    write_robomimic(tmp_path / "bad.hdf5", _episodes(), bad_demo=1)
    with pytest.raises(DataError, match=r"data/demo_1: key 'obs/robot0_eef_pos': expected 12 rows"):
        convert(tmp_path / "bad.hdf5", tmp_path / "b.zarr", progress=False)
    assert not list(tmp_path.glob("*.zarr*"))


def test_existing_destination_is_refused(tmp_path):
    write_robomimic(tmp_path / "d.hdf5", _episodes())
    (tmp_path / "out.zarr").mkdir()
    (tmp_path / "out.zarr" / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="destination exists"):
        convert(tmp_path / "d.hdf5", tmp_path / "out.zarr", progress=False)
    assert (tmp_path / "out.zarr" / "mine.txt").read_text() == "keep me"


def test_val_mask_from_a_converted_robomimic_dataset_is_the_validation_split(tmp_path):
    from robolearn.config import compose
    from robolearn.train.trainer import DataBundle

    write_robomimic(tmp_path / "d.hdf5", _episodes(), masks={"valid": ["demo_1"], "train": ["demo_0", "demo_2"]})
    convert(tmp_path / "d.hdf5", tmp_path / "d.zarr", progress=False)
    cfg = compose(
        ["task=fetch_reach", "task.obs_keys=[robot0_eef_pos]", f"data={tmp_path / 'd.zarr'}", "algo.val_mask=valid"]
    )
    data = DataBundle(cfg, tmp_path / "d.zarr")
    assert list(data.val.episodes) == [1] and list(data.train.episodes) == [0, 2]


def test_export_writes_every_feature_shape_as_lerobot_declares_it(tmp_path):
    """LeRobot reads a parquet column through ``get_hf_features_from_features``: shape (1,) is a
    plain value, (d,) a fixed-size list, (r, c) ``Array2D`` (nested lists). A matrix written as a
    flat list, or a (1,) key as a one-element list, fails to cast there (what LeRobot 0.4.4
    reported for Push-T's ``keypoint`` and ``n_contacts``); robolearn's own reader accepts all of
    them, so this checks the arrow types themselves, then the values back."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer.create(tmp_path / "a.zarr")
    eps = []
    for t in (5, 7):
        ep = {
            "action": rng.normal(size=(t, 2)).astype(np.float32),
            "state": rng.normal(size=(t, 5)).astype(np.float32),
            "keypoint": rng.normal(size=(t, 9, 2)).astype(np.float32),
            "n_contacts": rng.integers(0, 3, size=(t, 1)).astype(np.float32),
            "cube": rng.normal(size=(t, 2, 3, 4)).astype(np.float32),
        }
        buf.add_episode(ep)
        eps.append(ep)
    buf.close()
    convert(tmp_path / "a.zarr", tmp_path / "le", progress=False)
    table = pq.read_table(next((tmp_path / "le" / "data").rglob("*.parquet")))
    info = json.loads((tmp_path / "le" / "meta" / "info.json").read_text())["features"]
    t = {name: table.schema.field(name).type for name in table.column_names}

    def nesting(typ) -> list[str]:  # "list" per variable-size level, "fixed[n]" per fixed one, then the value
        out = []
        while pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
            out.append(f"fixed[{typ.list_size}]" if pa.types.is_fixed_size_list(typ) else "list")
            typ = typ.value_type
        return [*out, str(typ)]

    assert nesting(t["observation.n_contacts"]) == ["float"] and info["observation.n_contacts"]["shape"] == [1]
    assert nesting(t["observation.state"]) == ["fixed[5]", "float"]
    assert nesting(t["observation.keypoint"]) == ["list", "list", "float"]
    assert info["observation.keypoint"]["shape"] == [9, 2]
    assert nesting(t["observation.cube"]) == ["list", "list", "list", "float"]
    row = table.column("observation.keypoint")[6].as_py()  # frame 1 of episode 1
    np.testing.assert_array_equal(np.array(row, np.float32), eps[1]["keypoint"][1])
    convert(tmp_path / "le", tmp_path / "b.zarr", progress=False)
    back = ReplayBuffer.open(tmp_path / "b.zarr")
    for i, e in enumerate(eps):
        got = back.get_episode(i)
        for k in ("keypoint", "n_contacts", "cube", "state"):
            np.testing.assert_array_equal(got[k], e[k])


@pytest.mark.parametrize(
    "feature, words",
    [
        ({"dtype": "string", "shape": [1], "names": None}, ["features.observation.language", "'string'", "dtype"]),
        ({"dtype": "float32", "shape": [0, 2], "names": None}, ["features.observation.language", "[0, 2]"]),
    ],
)
def test_a_feature_robolearn_cannot_store_is_one_line_before_writing(tmp_path, feature, words):
    root = tmp_path / "le"
    write_lerobot_v21(root, _episodes())
    info = json.loads((root / "meta" / "info.json").read_text())
    info["features"]["observation.language"] = feature
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DataError) as e:
        convert(root, tmp_path / "out.zarr", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.zarr.partial").exists()


@pytest.mark.skipif(
    not os.environ.get("ROBOLEARN_LEROBOT_PYTHON"),
    reason="ROBOLEARN_LEROBOT_PYTHON is not set to a Python with lerobot (its own venv: lerobot pins torch < 2.11)",
)
def test_the_real_lerobot_reads_every_feature_shape_of_the_export():
    """tools/lerobot_roundtrip.py: LeRobotDataset loads the export, windows with delta_timestamps,
    batches with a DataLoader, and gives back every low-dim value exactly."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [
            sys.executable,
            str(root / "tools" / "lerobot_roundtrip.py"),
            "--lerobot-python",
            os.environ["ROBOLEARN_LEROBOT_PYTHON"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| ") and "exact" in ln]
    assert len(rows) == 5, r.stdout  # action, cube (2,3,4), keypoint (9,2), n_contacts (1,), state


@pytest.mark.skipif(
    not os.environ.get("ROBOLEARN_ROBOMIMIC_PYTHON"),
    reason="ROBOLEARN_ROBOMIMIC_PYTHON is not set to a Python with the robomimic package (its own venv)",
)
def test_the_real_robomimic_reader_sees_what_robolearn_converts():
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [
            sys.executable,
            str(root / "tools" / "robomimic_roundtrip.py"),
            "--robomimic-python",
            os.environ["ROBOLEARN_ROBOMIMIC_PYTHON"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("| yes |") == 5, r.stdout
