"""Success rate of each scripted Fetch expert over seeded episodes, optionally with the
executed-action Gaussian noise DART collection uses, with 95% Wilson intervals.

    python tools/expert_success.py                       # 100 episodes, no noise
    python tools/expert_success.py --noise 0 0.1 0.2 --json runs/expert_success.json

An episode counts as a success as soon as the env reports ``is_success`` (collection stops
there too); it runs at most the task's 50 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from robolearn.envs import make_task  # noqa: E402

EXPERTS = [
    ("fetch_reach", "scripted"),
    ("fetch_push", "scripted"),
    ("fetch_push", "multimodal"),
    ("fetch_pick_place", "scripted"),
]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: sane at 0 or n successes, unlike the normal approximation."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(name: str, kind: str, episodes: int, noise: float, seed_start: int, bar: tqdm) -> dict:
    task = make_task(name, expert=kind)
    env, expert = task.make_env(), task.expert()
    rng = np.random.default_rng(seed_start + 7919)  # the same noise stream robolearn collect uses
    wins, lengths, steps, t0 = 0, [], 0, time.perf_counter()
    for seed in range(seed_start, seed_start + episodes):
        env.reset(seed=seed)
        expert.reset(env)
        for t in range(task.spec.max_steps):  # noqa: B007 (t is the length after the loop)
            a = expert.act(env)
            if noise > 0:
                a = np.clip(a + rng.normal(size=a.shape) * noise, -1, 1).astype(np.float32)
            _, _, term, trunc, info = env.step(a)
            steps += 1
            if info["is_success"] or term or trunc:
                break
        wins += bool(info["is_success"])
        lengths.append(t + 1)
        bar.update(1)
    env.close()
    lo, hi = wilson(wins, episodes)
    return {
        "task": name,
        "expert": kind,
        "noise": noise,
        "episodes": episodes,
        "successes": wins,
        "rate": wins / episodes,
        "wilson95": [lo, hi],
        "mean_length": float(np.mean(lengths)),
        "ms_per_step": 1e3 * (time.perf_counter() - t0) / steps,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--noise", type=float, nargs="+", default=[0.0], help="action noise std, one run per value")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--tasks", nargs="+", default=None, help="subset of task names (default: all Fetch tasks)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = p.parse_args()
    runs = [(n, k, s) for s in a.noise for n, k in EXPERTS if a.tasks is None or n in a.tasks]
    bar = tqdm(total=len(runs) * a.episodes, desc="expert episodes", dynamic_ncols=True)
    rows = [evaluate(n, k, a.episodes, s, a.seed_start, bar) for n, k, s in runs]
    bar.close()
    print(f"\n{'task':<18}{'expert':<12}{'noise':>6}{'success':>10}{'95% Wilson':>18}{'len':>7}{'ms/step':>9}")
    for r in rows:
        ci = f"[{r['wilson95'][0]:.3f}, {r['wilson95'][1]:.3f}]"
        print(
            f"{r['task']:<18}{r['expert']:<12}{r['noise']:>6.2f}{r['successes']:>6}/{r['episodes']:<3}"
            f"{ci:>18}{r['mean_length']:>7.1f}{r['ms_per_step']:>9.2f}"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
