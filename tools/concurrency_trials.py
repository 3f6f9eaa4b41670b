"""Trials of what careless users do to a dataset, as real concurrent processes:

* ``append``: two `robolearn collect --append` started together on one store;
* ``overwrite``: `collect --overwrite` started while another collect writes there;
* ``kill``: a collection killed with SIGKILL at a random moment, then appended to.

Each trial reports what each writer saw (exit code, its one line) and the store afterwards
(episodes, `inspect --verify`).

    OMP_NUM_THREADS=1 python tools/concurrency_trials.py --trials 10 --out runs/concurrency.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robolearn.data.replay_buffer import ReplayBuffer


def collect(out: Path, n: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    cmd = [sys.executable, "-m", "robolearn", "collect", "fetch_reach", "--episodes", str(n), "--out", str(out), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and "it/s" not in ln and "s/it" not in ln]
    return lines[-1][:200] if lines else ""


def state(out: Path) -> dict:
    try:
        buf = ReplayBuffer.open(out)
        return {"episodes": buf.n_episodes, "problems": len(buf.verify())}
    except Exception as e:
        return {"error": str(e)[:200]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rng = random.Random(0)
    rows = []
    root = Path(tempfile.mkdtemp())
    try:
        for t in range(a.trials):
            # two appenders at once, on a store holding 5 episodes
            out = root / f"a{t}.zarr"
            subprocess.run(
                [sys.executable, "-m", "robolearn", "collect", "fetch_reach", "--episodes", "5", "--out", str(out)],
                capture_output=True,
                check=True,
            )
            p1, p2 = collect(out, 40, "--append"), collect(out, 40, "--append")
            e1, e2 = p1.communicate()[1], p2.communicate()[1]
            rows.append(
                {
                    "trial": t,
                    "kind": "append",
                    "rc": [p1.returncode, p2.returncode],
                    "said": [last_line(e1), last_line(e2)],
                    "after": state(out),
                    "expected_episodes": [45, 85],
                }
            )
            # overwrite while a collection writes
            out = root / f"o{t}.zarr"
            p1 = collect(out, 400)
            deadline = time.time() + 60
            lock = out.parent / f".{out.name}.lock"
            while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 2.0))
            p2 = collect(out, 5, "--overwrite")
            e2 = p2.communicate()[1]
            e1 = p1.communicate()[1]
            rows.append(
                {
                    "trial": t,
                    "kind": "overwrite",
                    "rc": [p1.returncode, p2.returncode],
                    "said": [last_line(e1), last_line(e2)],
                    "after": state(out),
                    "expected_episodes": [400],
                }
            )
            # SIGKILL at a random moment, then append
            out = root / f"k{t}.zarr"
            p1 = collect(out, 400)
            time.sleep(rng.uniform(3.0, 8.0))
            p1.kill()
            p1.wait()
            before = state(out)
            p2 = collect(out, 5, "--append")
            e2 = p2.communicate()[1]
            after = state(out)
            rows.append(
                {
                    "trial": t,
                    "kind": "kill",
                    "rc": [p1.returncode, p2.returncode],
                    "said": ["", last_line(e2)],
                    "before_append": before,
                    "after": after,
                }
            )
            print(json.dumps(rows[-3:]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {}
    for kind in ("append", "overwrite", "kill"):
        rs = [r for r in rows if r["kind"] == kind]
        clean = [r for r in rs if r["after"].get("problems") == 0]
        if kind == "append":
            # overlapping: one wins, the other stops; one after the other (no overlap): both land
            ok = [
                r
                for r in clean
                if (sorted(r["rc"]) == [0, 2] and r["after"]["episodes"] == 45)
                or (r["rc"] == [0, 0] and r["after"]["episodes"] == 85)
            ]
        elif kind == "overwrite":
            ok = [r for r in clean if r["rc"] == [0, 2] and r["after"]["episodes"] == 400]
        else:
            ok = [r for r in clean if r["rc"][1] == 0 and r["after"]["episodes"] == r["before_append"]["episodes"] + 5]
        summary[kind] = {"trials": len(rs), "as_expected": len(ok)}
    print(json.dumps(summary, indent=2))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"summary": summary, "trials": rows}, indent=2))


if __name__ == "__main__":
    main()
