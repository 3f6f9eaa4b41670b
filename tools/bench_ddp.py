"""Data-parallel training and sharded evaluation on this machine, against one process.

1. Throughput: `robolearn train` as 1 process x 2 threads vs `torchrun --nproc_per_node=2`
   x 1 thread each, same global batch, for the flow U-Net (Push-T keypoints) and the image
   encoder + regression head (Push-T pixels): samples/s from each run's train_summary.json.
2. Equivalence: 1 process vs 2 processes, same seed and global batch, same number of steps:
   the validation loss of each (EMA weights, the same held-out windows).
3. Evaluation: wall time of 50 Push-T episodes by one process vs two (torchrun), and whether
   the per-episode results are identical.

    python tools/bench_ddp.py --ckpt runs/pusht_kp_flow_s0 --out runs/bench_ddp
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MUJOCO_GL": "egl"}
    t = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return time.time() - t


def train_cmd(nproc: int, run_dir: Path, overrides: list[str]) -> list[str]:
    head = (
        [sys.executable, "-m", "robolearn"]
        if nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "robolearn",
        ]
    )
    return [*head, "train", f"run_dir={run_dir}", *overrides]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench_ddp"))
    ap.add_argument("--ckpt", type=Path, required=True, help="a Push-T keypoints run dir for the evaluation timing")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    res: dict = {"throughput": [], "equivalence": {}, "eval": {}}
    cases = {
        "flow U-Net (pusht_keypoints)": [
            "task=pusht_keypoints",
            "policy=flow",
            "algo.steps=150",
            "algo.batch_size=64",
            "algo.log_every=50",
            "algo.val_fraction=0.0",
        ],
        "image encoder + regression (pusht_image)": [
            "task=pusht_image",
            "policy=regression",
            "policy.encoder.preset=image_small",
            "algo.steps=40",
            "algo.batch_size=64",
            "algo.log_every=20",
            "algo.val_fraction=0.0",
        ],
    }
    for name, ov in cases.items():
        row = {"case": name}
        for label, nproc, threads in (("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)):
            d = a.out / f"{name.split()[0]}_{nproc}"
            run(train_cmd(nproc, d, ov), threads)
            row[label] = json.loads((d / "train_summary.json").read_text())["samples_per_s"]
        row["ratio"] = row["2 processes x 1 thread"] / row["1 process x 2 threads"]
        res["throughput"].append(row)
        print(json.dumps(row), flush=True)
    eq = [
        "task=pusht_keypoints",
        "policy=regression",
        "algo.steps=1500",
        "algo.batch_size=64",
        "algo.val_every=500",
        "algo.log_every=100",
        "algo.ckpt_every=1500",
        "seed=0",
    ]
    for nproc in (1, 2):
        d = a.out / f"equiv_{nproc}"
        run(train_cmd(nproc, d, eq), 1)
        hist = json.loads((d / "train_history.json").read_text())
        res["equivalence"][f"{nproc} process(es)"] = {h["step"]: h["val_loss"] for h in hist if "val_loss" in h}
    print(json.dumps(res["equivalence"]), flush=True)
    ev = ["eval", str(a.ckpt), "--episodes", "50", "--n-envs", "25", "--videos", "0"]
    t1 = run([sys.executable, "-m", "robolearn", *ev, "--out", str(a.out / "eval_1")], 1)
    t2 = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "robolearn",
            *ev,
            "--out",
            str(a.out / "eval_2"),
        ],
        1,
    )
    e1 = json.loads((a.out / "eval_1" / "metrics.json").read_text())["episodes"]
    e2 = json.loads((a.out / "eval_2" / "metrics.json").read_text())["episodes"]
    res["eval"] = {
        "1 process s": t1,
        "2 processes s": t2,
        "identical_episodes": e1 == e2,
        "mean_max_score": sum(e["max_score"] for e in e1) / len(e1),
    }
    print(json.dumps(res["eval"]), flush=True)
    (a.out / "bench_ddp.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
