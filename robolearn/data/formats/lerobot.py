"""LeRobotDataset (v3.0 and v2.1) <-> robolearn zarr.

v3.0 layout (what ``zarr_to_lerobot`` writes and ``lerobot_to_zarr`` reads)::

    meta/info.json                                  codebase_version, fps, features, path templates
    meta/stats.json                                 per feature min / max / mean / std / count
    meta/tasks.parquet                              task string (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        per episode: length, tasks, row range in the
                                                    data file, time range in each camera's video
    data/chunk-000/file-000.parquet                 one row per frame, many episodes per file
    videos/<feature>/chunk-000/file-000.mp4         one video per camera, episodes back to back

v2.1 keeps one parquet (``data/chunk-XXX/episode_XXXXXX.parquet``) and one mp4 per episode and
camera (``videos/chunk-XXX/<feature>/episode_XXXXXX.mp4``), with ``meta/episodes.jsonl`` and
``meta/tasks.jsonl``. Bookkeeping columns (timestamp, frame_index, episode_index, index,
task_index) are not copied as data; task strings go to the zarr attributes (and ``task_index``
becomes data when a dataset has more than one task).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robolearn.data.formats.common import need, safe_key
from robolearn.data.formats.video import VideoWriter, read_frames
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import DataError

BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
VERSIONS = ("v2.0", "v2.1", "v3.0")
V3_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def _json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: file missing (expected by the LeRobot layout)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: expected JSON, found invalid text ({e.msg} at line {e.lineno})") from None


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{path}: file missing (expected by the LeRobot v2 layout)")
    try:
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: expected one JSON object per line, found invalid text ({e.msg})") from None


def _read_parquet(path: Path):
    pq = need("pyarrow.parquet", "lerobot")
    if not path.is_file():
        raise DataError(f"{path}: file missing (expected by the dataset's meta/info.json)")
    try:
        return pq.read_table(str(path))
    except Exception as e:
        raise DataError(f"{path}: expected a parquet table, found an unreadable file ({type(e).__name__})") from None


def _column(table, name: str, shape: list[int], dtype: str, where: str) -> np.ndarray:
    """A feature column as (N, *shape)."""
    if name not in table.column_names:
        raise DataError(f"{where}: key {name!r}: expected a column (listed in meta/info.json), found none")
    col = table.column(name).combine_chunks()
    n = len(col)
    if dtype == "image":  # struct {bytes, path}: PNG/JPEG bytes per frame
        import imageio.v3 as iio

        return np.stack([iio.imread(item["bytes"]) for item in col.to_pylist()]).astype(np.uint8)
    import pyarrow as pa

    while pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        col = col.flatten()
    x = col.to_numpy(zero_copy_only=False)
    size = int(np.prod(shape)) if shape else 1
    if x.size != n * size:
        raise DataError(
            f"{where}: key {name!r}: expected {size} values per row (shape {shape}), found {x.size / max(n, 1):g}"
        )
    return x.reshape((n, *shape)).astype(np.dtype(dtype) if dtype not in ("string",) else object)


class _SequentialVideo:
    """Frames of one video file read front to back (episodes lie in order in a v3 file)."""

    def __init__(self, path: Path, size: int | None):
        self.path, self.size = path, size
        self._it, self.pos = None, 0

    def read(self, start: int, count: int) -> np.ndarray:
        av = need("av", "lerobot")
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file missing (the dataset's meta/info.json lists this camera)")
        if self._it is None or start < self.pos:
            self._c = av.open(str(self.path))
            self._it, self.pos = self._c.decode(video=0), 0
        out = []
        try:
            for frame in self._it:
                i = self.pos
                self.pos += 1
                if i < start:
                    continue
                if self.size:
                    frame = frame.reformat(width=self.size, height=self.size)
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == count:
                    break
        except av.error.FFmpegError as e:
            raise DataError(f"{self.path}: expected a readable video, found a decoding error ({e})") from None
        return np.stack(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


STORABLE = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
STORABLE += ("float16", "float32", "float64", "image", "video")


def _check_feature(where: Path, name: str, f: Any) -> None:
    """A feature robolearn can store: a numeric dtype (or image / video) and a shape of positive ints."""
    if not isinstance(f, dict):
        raise DataError(f"{where}: key 'features.{name}': expected a mapping with dtype and shape, found {f!r}")
    dtype, shape = f.get("dtype"), f.get("shape")
    if dtype not in STORABLE:
        raise DataError(
            f"{where}: key 'features.{name}': expected a numeric, image or video dtype that a zarr dataset can "
            f"store, found dtype {dtype!r} (convert or drop that feature first)"
        )
    if shape is not None and (
        not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise DataError(f"{where}: key 'features.{name}': expected a shape of positive ints, found {shape!r}")


def lerobot_to_zarr(src: Path, dst: Path, image_size: int | None = None, progress: bool = True) -> dict[str, Any]:
    info = _json(src / "meta" / "info.json")
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise DataError(
            f"{src / 'meta' / 'info.json'}: key 'features': expected a mapping, found "
            f"{type(info.get('features') if isinstance(info, dict) else info).__name__}"
        )
    version = info.get("codebase_version")
    if version not in VERSIONS:
        raise DataError(
            f"{src / 'meta' / 'info.json'}: key 'codebase_version': expected one of {list(VERSIONS)}, found {version!r}"
        )
    v3 = version == "v3.0"
    fps = float(info.get("fps") or 0) or None
    features = info["features"]
    videos = [k for k, f in features.items() if f.get("dtype") == "video"]
    columns = [k for k, f in features.items() if k not in BOOKKEEPING and f.get("dtype") != "video"]
    for name in columns + videos:  # before anything is written: every feature must fit a zarr array
        _check_feature(src / "meta" / "info.json", name, features[name])
    taken: set[str] = set()
    key_map = {}
    for name in columns + videos:
        key_map[name] = safe_key(name, taken)
        taken.add(key_map[name])
    tasks = _tasks(src, v3)
    if len(tasks) > 1:
        key_map["task_index"] = safe_key("task_index", taken)
        columns.append("task_index")
    episodes = _episodes(src, v3)
    chunks = int(info.get("chunks_size") or 1000)
    buf = ReplayBuffer.create(dst)
    buf.attrs.update(
        {
            "source": "lerobot",
            "codebase_version": version,
            "fps": fps,
            "tasks": tasks,
            "key_map": key_map,
            "robot_type": info.get("robot_type"),
        }
    )
    tables: dict[Path, Any] = {}
    readers: dict[Path, _SequentialVideo] = {}
    shapes: dict[str, tuple] = {}
    frames = 0
    for ep in tqdm(episodes, desc=f"convert {src.name}", disable=not progress, dynamic_ncols=True):
        e, length = int(ep["episode_index"]), int(ep["length"])
        if v3:
            path = src / info.get("data_path", V3_DATA).format(
                chunk_index=int(ep["data/chunk_index"]), file_index=int(ep["data/file_index"])
            )
            if path not in tables:
                tables = {path: _read_parquet(path)}  # one data file in memory at a time
            table = tables[path]
            lo, hi = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
            index = table.column("index").to_numpy() if "index" in table.column_names else None
            if index is None:
                raise DataError(f"{path}: key 'index': expected the global frame index column, found none")
            rows = np.flatnonzero((index >= lo) & (index < hi))
            table = table.take(rows)
        else:
            path = src / info.get(
                "data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
            ).format(episode_chunk=e // chunks, episode_index=e)
            table = _read_parquet(path)
        where = f"{path} (episode {e})"
        if table.num_rows != length:
            raise DataError(f"{where}: expected {length} frames (meta episodes 'length'), found {table.num_rows} rows")
        ep_data = {}
        for name in columns:
            f = features.get(name, {"dtype": "int64", "shape": [1]})
            ep_data[key_map[name]] = _column(table, name, list(f.get("shape") or [1]), str(f["dtype"]), where)
        for name in videos:
            if v3:
                vpath = src / info.get("video_path", V3_VIDEO).format(
                    video_key=name,
                    chunk_index=int(ep[f"videos/{name}/chunk_index"]),
                    file_index=int(ep[f"videos/{name}/file_index"]),
                )
                start = int(round(float(ep[f"videos/{name}/from_timestamp"]) * (fps or 1)))
                if vpath not in readers:
                    readers = {
                        **{p: r for p, r in readers.items() if p.parent != vpath.parent},
                        vpath: _SequentialVideo(vpath, image_size),
                    }
                x = readers[vpath].read(start, length)
            else:
                vpath = src / info.get(
                    "video_path", "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
                ).format(episode_chunk=e // chunks, video_key=name, episode_index=e)
                x = read_frames(vpath, image_size)
            if len(x) != length:
                raise DataError(f"{vpath}: key {name!r}: expected {length} frames for episode {e}, found {len(x)}")
            ep_data[key_map[name]] = x
        buf.add_episode(ep_data)
        frames += length
        for k, v in ep_data.items():
            shapes[k] = tuple(v.shape[1:])
    if not episodes:
        raise DataError(f"{src}: expected at least one episode, found none")
    return {"episodes": len(episodes), "frames": frames, "shapes": shapes, "key_map": key_map}


def _tasks(src: Path, v3: bool) -> list[str]:
    if v3:
        path = src / "meta" / "tasks.parquet"
        if not path.is_file():
            return []
        t = _read_parquet(path)
        names = [c for c in t.column_names if c not in ("task_index",)]
        if "task_index" not in t.column_names or not names:
            raise DataError(f"{path}: expected the task strings and a 'task_index' column, found {t.column_names}")
        order = np.argsort(t.column("task_index").to_numpy())
        return [str(t.column(names[0]).to_pylist()[i]) for i in order]
    path = src / "meta" / "tasks.jsonl"
    rows = sorted(_jsonl(path), key=lambda r: r.get("task_index", 0)) if path.is_file() else []
    return [str(r.get("task", "")) for r in rows]


def _episodes(src: Path, v3: bool) -> list[dict]:
    if not v3:
        return sorted(_jsonl(src / "meta" / "episodes.jsonl"), key=lambda r: r["episode_index"])
    files = sorted((src / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(f"{src / 'meta' / 'episodes'}: expected chunk-XXX/file-XXX.parquet episode tables, found none")
    rows: list[dict] = []
    for f in files:
        t = _read_parquet(f)
        keep = [c for c in t.column_names if not c.startswith("stats/")]
        rows += t.select(keep).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


# --------------------------------------------------------------------------------------------
# zarr -> LeRobot v3.0


def lerobot_name(key: str, image: bool, key_map: dict[str, str]) -> str:
    back = {v: k for k, v in key_map.items()}
    if key in back:
        return back[key]
    if key == "action":
        return "action"
    return f"observation.images.{key}" if image else f"observation.{key}"


def zarr_to_lerobot(
    src: Path, dst: Path, fps: float | None = None, vcodec: str = "libx264", progress: bool = True
) -> dict[str, Any]:
    pa = need("pyarrow", "lerobot")
    pq = need("pyarrow.parquet", "lerobot")
    buf = ReplayBuffer.open(src)
    attrs = dict(buf.attrs)
    key_map = dict(attrs.get("key_map") or {})
    fps = float(fps or attrs.get("fps") or 10)
    task_key = key_map.get("task_index")
    keys = [k for k in buf.keys if k != task_key]
    images = [k for k in keys if buf.is_image(k)]
    lowdim = [k for k in keys if k not in images]
    names = {k: lerobot_name(k, k in images, key_map) for k in keys}
    tasks = [str(t) for t in attrs.get("tasks") or []] or [str(attrs.get("task") or "default")]
    ends = buf.episode_ends
    starts = np.concatenate([[0], ends[:-1]])
    n = int(buf.n_steps)
    cols: dict[str, Any] = {}
    features: dict[str, dict] = {}
    stats: dict[str, dict] = {}
    for k in lowdim:
        x = np.asarray(buf[k][:n])
        shape = list(x.shape[1:]) or [1]
        flat = x.reshape(n, -1)
        cols[names[k]] = _arrow_column(pa, x)
        features[names[k]] = {"dtype": str(x.dtype), "shape": shape, "names": None}
        stats[names[k]] = _stats(flat.astype(np.float64), shape)
    frame_index = np.concatenate([np.arange(e - s) for s, e in zip(starts, ends)]) if len(ends) else np.zeros(0, int)
    episode_index = np.repeat(np.arange(len(ends)), ends - starts)
    task_index = np.asarray(buf[task_key][:n]).reshape(-1).astype(np.int64) if task_key else np.zeros(n, np.int64)
    bookkeeping = {
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index.astype(np.int64),
        "episode_index": episode_index.astype(np.int64),
        "index": np.arange(n, dtype=np.int64),
        "task_index": task_index,
    }
    for name, v in bookkeeping.items():
        cols[name] = pa.array(v)
        features[name] = {"dtype": str(v.dtype), "shape": [1], "names": None}
    video_meta: dict[str, dict[str, list]] = {}
    bar = tqdm(
        total=len(ends) * max(1, len(images)), desc=f"convert {src.name}", disable=not progress, dynamic_ncols=True
    )
    for k in images:
        first = np.asarray(buf.get_episode(0, keys=[k])[k]) if len(ends) else np.zeros((1, 8, 8, 3), np.uint8)
        h, w = int(first.shape[1]), int(first.shape[2])
        vpath = dst / V3_VIDEO.format(video_key=names[k], chunk_index=0, file_index=0)
        writer = VideoWriter(vpath, fps, w, h, codec=vcodec)
        meta = video_meta[names[k]] = {"from": [], "to": []}
        acc = np.zeros(3)
        acc2 = np.zeros(3)
        lo, hi = np.full(3, 255.0), np.zeros(3)
        for i in range(len(ends)):
            frames = np.asarray(buf.get_episode(i, keys=[k])[k])
            frames = frames if frames.dtype == np.uint8 else np.clip(np.rint(frames), 0, 255).astype(np.uint8)
            meta["from"].append(writer.frames / fps)
            writer.write(frames)
            meta["to"].append(writer.frames / fps)
            px = frames.reshape(-1, 3).astype(np.float64) / 255.0
            acc += px.sum(0)
            acc2 += (px**2).sum(0)
            lo, hi = np.minimum(lo, px.min(0) if len(px) else lo), np.maximum(hi, px.max(0) if len(px) else hi)
            bar.update(1)
        writer.close()
        count = max(1, n * h * w)
        mean = acc / count
        std = np.sqrt(np.maximum(acc2 / count - mean**2, 0))
        stats[names[k]] = {
            s: v.reshape(3, 1, 1).tolist() for s, v in (("min", lo), ("max", hi), ("mean", mean), ("std", std))
        }
        stats[names[k]]["count"] = [n]
        features[names[k]] = {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": h,
                "video.width": w,
                "video.codec": vcodec.replace("lib", ""),
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    bar.close()
    (dst / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), str(dst / V3_DATA.format(chunk_index=0, file_index=0)))
    ep_cols: dict[str, Any] = {
        "episode_index": pa.array(np.arange(len(ends), dtype=np.int64)),
        "tasks": pa.array(
            [[tasks[int(task_index[s])] if int(task_index[s]) < len(tasks) else tasks[0]] for s in starts],
            type=pa.list_(pa.string()),
        ),
        "length": pa.array((ends - starts).astype(np.int64)),
        "data/chunk_index": pa.array(np.zeros(len(ends), np.int64)),
        "data/file_index": pa.array(np.zeros(len(ends), np.int64)),
        "dataset_from_index": pa.array(starts.astype(np.int64)),
        "dataset_to_index": pa.array(ends.astype(np.int64)),
    }
    for name, meta in video_meta.items():
        ep_cols[f"videos/{name}/chunk_index"] = pa.array(np.zeros(len(ends), np.int64))
        ep_cols[f"videos/{name}/file_index"] = pa.array(np.zeros(len(ends), np.int64))
        ep_cols[f"videos/{name}/from_timestamp"] = pa.array(np.asarray(meta["from"], np.float64))
        ep_cols[f"videos/{name}/to_timestamp"] = pa.array(np.asarray(meta["to"], np.float64))
    ep_cols["meta/episodes/chunk_index"] = pa.array(np.zeros(len(ends), np.int64))
    ep_cols["meta/episodes/file_index"] = pa.array(np.zeros(len(ends), np.int64))
    (dst / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(ep_cols), str(dst / V3_EPISODES.format(chunk_index=0, file_index=0)))
    _write_tasks(dst / "meta" / "tasks.parquet", tasks)
    info = {
        "codebase_version": "v3.0",
        "robot_type": attrs.get("robot_type"),
        "total_episodes": int(len(ends)),
        "total_frames": n,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": int(round(fps)) if float(fps).is_integer() else fps,
        "splits": {"train": f"0:{len(ends)}"},
        "data_path": V3_DATA,
        "video_path": V3_VIDEO if images else None,
        "features": features,
    }
    (dst / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (dst / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    shapes = {
        names[k]: tuple(np.asarray(buf[k]).shape[1:]) if k in lowdim else tuple(features[names[k]]["shape"])
        for k in keys
    }
    return {"episodes": int(len(ends)), "frames": n, "shapes": shapes, "key_map": names}


def _arrow_column(pa, x: np.ndarray):
    """A per-frame array as LeRobot declares its feature (``get_hf_features_from_features``):
    shape (1,) or () a plain value column, (d,) a fixed-size list (``Sequence(length=d)``),
    more dims nested lists, the storage of ``datasets.Array2D`` .. ``Array5D``."""
    n, shape = len(x), x.shape[1:]
    if int(np.prod(shape)) == 1 and len(shape) <= 1:
        return pa.array(x.reshape(n))
    if len(shape) == 1:
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), shape[0])
    arr = pa.array(x.reshape(-1))
    count = x.size
    for width in reversed(shape):  # innermost dim first: lists of `width` items, then lists of those
        count //= width
        arr = pa.ListArray.from_arrays(pa.array(np.arange(count + 1, dtype=np.int64) * width, pa.int32()), arr)
    return arr


def _stats(x: np.ndarray, shape: list[int]) -> dict[str, list]:
    if len(x) == 0:
        z = np.zeros(x.shape[1])
        return {"min": z.tolist(), "max": z.tolist(), "mean": z.tolist(), "std": z.tolist(), "count": [0]}
    r = lambda v: v.reshape(shape).tolist()  # noqa: E731
    return {"min": r(x.min(0)), "max": r(x.max(0)), "mean": r(x.mean(0)), "std": r(x.std(0)), "count": [len(x)]}


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """``meta/tasks.parquet`` as pandas writes it: the task string is the frame's index (what
    LeRobot's loader reads with ``pd.read_parquet``), ``task_index`` the column."""
    pa = need("pyarrow", "lerobot")
    pq = need("pyarrow.parquet", "lerobot")
    table = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(tasks)})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
