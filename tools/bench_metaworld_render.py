"""Meta-World image observations on a CPU: the time of one 96x96 frame with ``render_quality``
``full`` (the scene as shipped) against ``fast``, and how far apart the two pictures are.

    MUJOCO_GL=egl OMP_NUM_THREADS=1 python tools/bench_metaworld_render.py [--task push-v3] [--frames 40]

Both envs step through the same states (the scripted expert's episode, seed 0); each round renders
the frame in one quality then the other (interleaved, so load on the machine hits both alike).
Prints ms per frame for each, their ratio, and the mean and 99th-percentile absolute pixel
difference (0-255) between the two pictures of the same state.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="push-v3")
    ap.add_argument("--frames", type=int, default=40)
    a = ap.parse_args()

    from robolearn.envs.metaworld import MetaWorldEnv, MetaWorldExpert

    envs = {q: MetaWorldEnv(a.task, "image", 96, None, 500, q) for q in ("full", "fast")}
    expert = MetaWorldExpert(a.task)
    for e in envs.values():
        e.reset(seed=0)
    times = {q: [] for q in envs}
    diffs = []
    for _ in range(a.frames):
        act = expert.act(envs["full"])
        frames = {}
        for q, e in envs.items():
            e.step(act)
            t0 = time.perf_counter()
            frames[q] = e._render(e._obs_renderer).astype(np.float64)
            times[q].append(time.perf_counter() - t0)
        diffs.append(np.abs(frames["full"] - frames["fast"]))
    ms = {q: 1000 * float(np.median(t)) for q, t in times.items()}
    d = np.stack(diffs)
    print(f"{a.task}, {a.frames} frames of 96x96 (median ms per frame)")
    print(f"full {ms['full']:.1f} ms, fast {ms['fast']:.1f} ms: {ms['full'] / ms['fast']:.1f}x")
    print(f"pixel difference full vs fast: mean {d.mean():.2f} / 255, 99th percentile {np.percentile(d, 99):.0f} / 255")
    for e in envs.values():
        e.close()


if __name__ == "__main__":
    main()
