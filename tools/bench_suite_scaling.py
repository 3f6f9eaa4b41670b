"""Wall-clock of a suite sweep with 1 process and with N processes (torchrun rank sharding).

    python tools/bench_suite_scaling.py [--experiment metaworld_mt10] [--tasks reach-v3,push-v3,...] \
        [--procs 2] [--data runs/mt10/data] [budget overrides ...]

Runs the same grid (the experiment, restricted to ``--tasks`` and seed 0, at the budget given) from
scratch into two fresh output directories, first with one process, then with
``torchrun --nproc_per_node N``; the demonstrations are copied in from ``--data`` first when given,
so both runs time training and evaluation only. Each process runs with one torch thread. Prints
both wall-clocks, the speed-up, and checks that the two runs finished the same cells with the same
success (the sharding must not change a result)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], out: Path, data: Path | None, tasks: list[str]) -> float:
    out.mkdir(parents=True)
    if data is not None:
        (out / "data").mkdir()
        for t in tasks:
            shutil.copytree(data / f"{t}.zarr", out / "data" / f"{t}.zarr")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--out", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cells(out: Path) -> dict[str, float]:
    return {
        str(p.relative_to(out / "cells")): json.loads(p.read_text())["summary"]["success_rate"]
        for p in sorted((out / "cells").rglob("metrics.json"))
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="metaworld_mt10")
    p.add_argument("--tasks", default="reach-v3,push-v3,drawer-open-v3,window-open-v3")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--data", default=None, help="a finished run's data/ folder holding <task>.zarr")
    p.add_argument("--keep", default=None, help="keep the two output directories under this folder")
    a, overrides = p.parse_known_args()
    tasks = a.tasks.split(",")
    data = Path(a.data) if a.data else None
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="suite_scaling_"))
    base = ["-m", "robolearn", "ablate", a.experiment, "--tasks", a.tasks, "--seeds", "0", *overrides]
    one = run([sys.executable, *base], root / "procs1", data, tasks)
    many = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={a.procs}", *base],
        root / f"procs{a.procs}",
        data,
        tasks,
    )
    c1, cn = cells(root / "procs1"), cells(root / f"procs{a.procs}")
    print(f"| processes | wall-clock (s) | speed-up |\n|---|---|---|\n| 1 | {one:.0f} | 1.00 |")
    print(f"| {a.procs} | {many:.0f} | {one / many:.2f} |")
    print(f"cells: {len(c1)} and {len(cn)}; same success in every cell: {c1 == cn}")
    if not a.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
