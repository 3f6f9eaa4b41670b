"""torch threads under load: the README's quickstart with robolearn's default thread choice
(free cores, robolearn/threads.py), torch's own default (one thread per core) and one thread,
while other processes keep cores busy.

Each setting runs the same `robolearn quickstart` in a fresh process, settings interleaved
round by round so that load from other jobs hits them alike; ``--load N`` starts N busy
1-thread processes (a matmul loop) for the duration, on top of whatever already runs.

    python tools/bench_threads.py --load 2 --steps 300 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

BUSY = (
    "import time, torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nt = time.time()\n"
    "while time.time() - t < {s}:\n    a = (a @ a).tanh()\n"
)


def run_quickstart(env_extra: dict, steps: int, out: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ROBOLEARN_THREADS")}
    env.update(env_extra, MUJOCO_GL=env.get("MUJOCO_GL", "egl"))
    t0 = time.time()
    cmd = [sys.executable, "-m", "robolearn", "quickstart", "--out", out, "--steps", str(steps)]
    subprocess.run(cmd + ["--episodes", "50", "--eval-episodes", "10"], env=env, check=True, capture_output=True)
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", type=int, default=2, help="busy 1-thread processes started for the benchmark")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-s", type=float, default=3600, help="the busy processes stop after this long")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    ncpu = len(os.sched_getaffinity(0))
    settings = {
        "robolearn default (free cores)": {},
        f"torch default ({ncpu} threads)": {"ROBOLEARN_THREADS": str(ncpu)},
        "1 thread": {"ROBOLEARN_THREADS": "1"},
    }
    busy = [subprocess.Popen([sys.executable, "-c", BUSY.format(s=a.max_s)]) for _ in range(a.load)]
    times: dict[str, list[float]] = {k: [] for k in settings}
    try:
        time.sleep(5 if a.load else 0)  # the load average sees the busy processes
        for r in range(a.rounds):
            for name, extra in settings.items():
                with tempfile.TemporaryDirectory() as d:
                    times[name].append(run_quickstart(extra, a.steps, d))
                print(f"round {r}: {name}: {times[name][-1]:.1f} s", flush=True)
    finally:
        for p in busy:
            p.kill()
    print(
        f"\nquickstart --steps {a.steps} --episodes 50 --eval-episodes 10, {a.load} extra busy processes, "
        f"load average at the end {os.getloadavg()[0]:.2f}"
    )
    print("| setting | wall-clock per run (s), each round | median |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {', '.join(f'{t:.1f}' for t in ts)} | {sorted(ts)[len(ts) // 2]:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load": a.load, "steps": a.steps, "times": times}, f, indent=2)


if __name__ == "__main__":
    main()
