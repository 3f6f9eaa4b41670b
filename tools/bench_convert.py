"""Conversion speed for a video dataset: zarr -> LeRobot v3.0 (mp4 encoding) and back (decoding).

Takes the first N episodes of a zarr store with images (default: the Push-T human demos,
96x96 RGB at 10 fps), writes them as a LeRobot v3.0 dataset and reads that back, and reports
frames per second for each direction plus the round trip's image error (PSNR).

    OMP_NUM_THREADS=1 python tools/bench_convert.py ../shared/data/pusht_cchi_v7_replay.zarr --episodes 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from robolearn.data.formats import convert
from robolearn.data.replay_buffer import ReplayBuffer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--vcodec", default="libx264")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    src = ReplayBuffer.open(a.src)
    tmp = Path(tempfile.mkdtemp())
    try:
        sub = ReplayBuffer.create(tmp / "sub.zarr")
        sub.attrs.update({"fps": 10, "task": "bench"})
        for i in range(min(a.episodes, src.n_episodes)):
            sub.add_episode(src.get_episode(i))
        frames = sub.n_steps
        images = [k for k in sub.keys if sub.is_image(k)]
        t = time.perf_counter()
        convert(tmp / "sub.zarr", tmp / "le", vcodec=a.vcodec, progress=False)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        convert(tmp / "le", tmp / "back.zarr", progress=False)
        dec = time.perf_counter() - t
        back = ReplayBuffer.open(tmp / "back.zarr")
        key_back = {v: k for k, v in back.attrs["key_map"].items()}
        psnr = {}
        for k in images:
            name = f"observation.images.{k}"
            b = np.asarray(back[key_back.get(name, k) if name in key_back else k][:frames], np.float64)
            mse = np.mean((b - np.asarray(sub[k][:frames], np.float64)) ** 2)
            psnr[k] = 10 * np.log10(255**2 / mse)
        mp4 = sum(p.stat().st_size for p in (tmp / "le" / "videos").rglob("*.mp4"))
        raw = sum(np.asarray(sub[k][:1]).nbytes * frames for k in images)
        row = {
            "episodes": sub.n_episodes,
            "frames": int(frames),
            "image_keys": images,
            "vcodec": a.vcodec,
            "zarr_to_lerobot_fps": frames / enc,
            "lerobot_to_zarr_fps": frames / dec,
            "psnr_db": psnr,
            "mp4_bytes": mp4,
            "raw_image_bytes": raw,
        }
        print(json.dumps(row, indent=2))
        if a.json:
            a.json.write_text(json.dumps(row, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
