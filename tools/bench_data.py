"""Windows per second of WindowSampler on the Push-T demos: can sampling keep a training loop fed?

python tools/bench_data.py [PATH]   (default: $ROBOLEARN_PUSHT_ZARR)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from robolearn.data import WindowSampler, load_dataset
from robolearn.data.sampler import to_torch


def bench(fn, min_seconds: float) -> float:
    """Seconds per call: warm up once, then repeat until ``min_seconds`` have passed."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", default=os.environ.get("ROBOLEARN_PUSHT_ZARR"))
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    a = ap.parse_args()
    if not a.path:
        ap.error("give the Push-T zarr path or set ROBOLEARN_PUSHT_ZARR")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = [("low-dim  state", ["state"], 256), ("image    img+agent_pos", ["img", "agent_pos=state[0:2]"], 64)]
    rows = []
    for name, spec, bs in cases:
        t0 = time.perf_counter()
        buf, arrays = load_dataset(a.path, spec)
        load_s = time.perf_counter() - t0
        keys = [s.split("=")[0] for s in spec]
        s = WindowSampler(arrays, buf.episode_ends, keys, "action", obs_horizon=2, horizon=16)
        per = bench(lambda: s.random_batch(bs, rng), a.seconds)
        per_t = bench(lambda: to_torch(s.random_batch(bs, rng), torch.device("cpu")), a.seconds)
        rows.append((name, bs, load_s, per * 1e3, bs / per, bs / per_t))
    print(f"{a.path}: To=2, H=16, 1 torch thread")
    print(f"{'case':<24} {'batch':>5} {'load s':>7} {'ms/batch':>9} {'windows/s':>10} {'+torch w/s':>11}")
    for name, bs, load_s, ms, w, wt in rows:
        print(f"{name:<24} {bs:>5} {load_s:>7.2f} {ms:>9.3f} {w:>10.0f} {wt:>11.0f}")


if __name__ == "__main__":
    main()
