"""robolearn's LeRobot v3.0 export, read by the real LeRobot library.

Writes a zarr store with every kind of per-frame feature the zarr layout allows (a scalar (1,),
a vector, a matrix, a 3-D array, an RGB camera), exports it with `robolearn convert`, then, in
LeRobot's own environment (``--lerobot-python``: a Python with the ``lerobot`` package, which
pins torch below 2.11 and so lives in its own venv), loads it with ``LeRobotDataset``, reads
windows with ``delta_timestamps``, takes a ``DataLoader`` batch and compares every value with the
zarr store. Prints one row per feature (shape x checks). ``--train-steps N`` also runs
``lerobot-train`` (diffusion policy) for N steps on the export; ``--zarr`` exports that store
(e.g. the Push-T human demonstrations) instead of the synthetic one.

    python tools/lerobot_roundtrip.py --lerobot-python /path/to/lerobot-venv/bin/python
    python tools/lerobot_roundtrip.py --lerobot-python ... --zarr $ROBOLEARN_PUSHT_ZARR --train-steps 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Runs inside LeRobot's environment: no robolearn import there.
CHILD = r"""
import json, sys
import numpy as np, torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
import lerobot
root, out, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ds = LeRobotDataset("local/roundtrip", root=root)
res = {"version": lerobot.__version__, "torch": torch.__version__, "frames": len(ds), "episodes": ds.num_episodes,
       "features": {k: {"dtype": v["dtype"], "shape": list(v["shape"])} for k, v in ds.features.items()}}
fps = ds.fps
keys = [k for k in ds.features if k not in ("timestamp", "frame_index", "episode_index", "index", "task_index")]
vals = {k: np.stack([np.asarray(ds[i][k]) for i in rows]) for k in keys}
win = LeRobotDataset("local/roundtrip", root=root, delta_timestamps={k: [-1 / fps, 0.0] for k in keys})
w = win[rows[1]]
res["windows"] = {k: list(np.asarray(w[k]).shape) for k in keys}
res["window_pad"] = {k: np.asarray(w[k + "_is_pad"]).tolist() for k in keys if k + "_is_pad" in w}
batch = next(iter(torch.utils.data.DataLoader(win, batch_size=4, shuffle=False)))
res["batch"] = {k: list(batch[k].shape) for k in keys}
np.savez(out, **{k.replace(".", "__"): v for k, v in vals.items()},
         **{"win__" + k.replace(".", "__"): np.asarray(w[k]) for k in keys})
print(json.dumps(res))
"""


def synthetic_store(path: Path, n_episodes: int = 3) -> None:
    from robolearn.data.replay_buffer import ReplayBuffer

    rng = np.random.default_rng(0)
    buf = ReplayBuffer.create(path)
    buf.attrs.update({"fps": 10, "task": "roundtrip"})
    for t in range(n_episodes):
        n = 6 + 3 * t
        yy, xx = np.mgrid[0:32, 0:32]
        buf.add_episode(
            {
                "action": rng.normal(size=(n, 2)).astype(np.float32),
                "state": rng.normal(size=(n, 5)).astype(np.float32),
                "n_contacts": rng.integers(0, 3, size=(n, 1)).astype(np.float32),
                "keypoint": rng.normal(size=(n, 9, 2)).astype(np.float32),
                "cube": rng.normal(size=(n, 2, 3, 4)).astype(np.float32),
                "img": np.stack([np.stack([xx * 8, yy * 8, np.full_like(xx, 20 * i)], -1) for i in range(n)]).astype(
                    np.uint8
                ),
            }
        )
    buf.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lerobot-python", required=True, help="python of an environment with the lerobot package")
    ap.add_argument("--zarr", default=None, help="export this store instead of the synthetic one")
    ap.add_argument("--train-steps", type=int, default=0, help="then lerobot-train (diffusion) for N steps")
    ap.add_argument("--json", default=None, help="write the table's numbers here")
    a = ap.parse_args()
    from robolearn.data.formats import convert
    from robolearn.data.replay_buffer import ReplayBuffer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = Path(a.zarr) if a.zarr else tmp / "src.zarr"
        if not a.zarr:
            synthetic_store(src)
        convert(src, tmp / "le", progress=False)
        buf = ReplayBuffer.open(src)
        n = buf.n_steps
        rows = [0, int(buf.episode_ends[0]), n - 1]  # an episode's first frame (padded window), a second's, the last
        r = subprocess.run(
            [a.lerobot_python, "-c", CHILD, str(tmp / "le"), str(tmp / "vals.npz"), json.dumps(rows)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            sys.exit(f"lerobot could not read the export:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        got = np.load(tmp / "vals.npz")
        key_map = dict(buf.attrs.get("key_map") or {})
        names = json.loads((tmp / "le" / "meta" / "info.json").read_text())["features"]
        table = []
        for k in buf.keys:
            name = next((nm for nm in names if nm.split(".")[-1] == k or key_map.get(nm) == k), None)
            x = np.asarray(buf[k][:n])[rows]
            v = got[name.replace(".", "__")]
            if buf.is_image(k):  # LeRobot gives float CHW in [0, 1]; the video codec is lossy
                v = np.moveaxis(v, -3, -1) * 255.0
                err = float(np.abs(v - x.astype(np.float64)).mean())
                values = f"mean abs error {err:.2f} / 255 (video)"
                ok_values = err < 8
            else:
                ok_values = v.shape == x.shape and np.array_equal(v.astype(x.dtype), x)
                if not ok_values and v.size == x.size:  # a (1,) feature comes back as a scalar per frame
                    ok_values = np.array_equal(v.reshape(x.shape).astype(x.dtype), x)
                values = "exact" if ok_values else "DIFFERENT"
            table.append(
                {
                    "key": k,
                    "lerobot feature": name,
                    "shape": list(x.shape[1:]),
                    "loads": True,
                    "values": values,
                    "values_ok": bool(ok_values),
                    "window (delta_timestamps -1/fps, 0)": res["windows"][name],
                    "DataLoader batch": res["batch"][name],
                }
            )
        print(f"lerobot {res['version']} (torch {res['torch']}): {res['episodes']} episodes, {res['frames']} frames")
        print("| key | LeRobot feature | shape | loads | values | window | DataLoader batch |")
        print("|---|---|---|---|---|---|---|")
        for t in table:
            print(
                f"| {t['key']} | {t['lerobot feature']} | {t['shape']} | yes | {t['values']} | "
                f"{t['window (delta_timestamps -1/fps, 0)']} | {t['DataLoader batch']} |"
            )
        out = {"lerobot": res["version"], "torch": res["torch"], "table": table}
        if a.train_steps:
            cmd = [
                str(Path(a.lerobot_python).parent / "lerobot-train"),
                "--dataset.repo_id=local/roundtrip",
                f"--dataset.root={tmp / 'le'}",
                "--policy.type=diffusion",
                "--policy.device=cpu",
                "--policy.push_to_hub=false",
                "--wandb.enable=false",
                f"--steps={a.train_steps}",
                "--batch_size=4",
                "--log_freq=1",
                "--save_checkpoint=false",
                "--num_workers=0",
                f"--output_dir={tmp / 'train'}",
            ]
            t = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in (t.stdout + t.stderr).splitlines() if "step:" in ln and "loss:" in ln]
            last = lines[-1] if lines else t.stderr[-500:]
            print(f"lerobot-train --steps={a.train_steps}: exit {t.returncode}; last: {last}")
            out["train"] = {"exit": t.returncode, "lines": lines}
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=2))
        if not all(t["values_ok"] for t in table):
            sys.exit(1)


if __name__ == "__main__":
    main()
