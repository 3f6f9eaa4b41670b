"""Audit a suite's scripted experts: success on seeded episodes, with and without DART noise.

    python tools/expert_audit.py --suite MT50 --episodes 50 --noise 0,0.1 --workers 2 \
        --out runs/metaworld_expert_audit

Writes ``audit.json`` (one record per task and noise level, resumable: finished records are kept)
and ``audit.md`` (a table; tasks whose noiseless expert succeeds on fewer than 90% are flagged).
Seeds: 0 .. episodes-1, the seeds demonstrations are collected from.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

FLAG_BELOW = 0.9


def _one(args: tuple[str, int, float]) -> dict:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from robolearn.algos.collect import audit_expert
    from robolearn.envs import make_task

    name, episodes, noise = args
    return audit_expert(make_task(name), episodes, noise)


def markdown(records: list[dict], noises: list[float]) -> str:
    by = {(r["task"], r["noise"]): r for r in records}
    tasks = list(dict.fromkeys(r["task"] for r in records))
    head = "| task | " + " | ".join(f"expert success, noise {n:g} [95% CI]" for n in noises) + " | flag |"
    lines = [head, "|" + "---|" * (len(noises) + 2)]
    for t in tasks:
        cells = []
        for n in noises:
            r = by.get((t, n))
            cells.append(
                f"{r['success']:.2f} [{r['success_ci95'][0]:.2f}, {r['success_ci95'][1]:.2f}]" if r else "(not run)"
            )
        clean = by.get((t, noises[0]))
        flag = f"expert < {FLAG_BELOW:.0%}" if clean and clean["success"] < FLAG_BELOW else ""
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {flag} |")
    means = []
    for n in noises:
        rs = [by[(t, n)]["success"] for t in tasks if (t, n) in by]
        means.append(f"{sum(rs) / len(rs):.3f} ({len(rs)} tasks)" if rs else "")
    flagged = sum(1 for t in tasks if (t, noises[0]) in by and by[(t, noises[0])]["success"] < FLAG_BELOW)
    lines.append("| **mean** | " + " | ".join(means) + f" | {flagged} flagged |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from robolearn.envs.suites import PREFIX, PRESETS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", default="MT50", help=f"one of {', '.join(PRESETS)}, or comma-separated task names")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--noise", default="0,0.1", help="DART noise std levels (comma-separated)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="runs/metaworld_expert_audit")
    a = p.parse_args(argv)
    names = list(PRESETS[a.suite]) if a.suite in PRESETS else [t.strip() for t in a.suite.split(",")]
    noises = [float(x) for x in a.noise.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "audit.json"
    records = json.loads(path.read_text()) if path.exists() else []
    done = {(r["task"], r["noise"]) for r in records}
    todo = [(PREFIX + t.removeprefix(PREFIX), a.episodes, n) for t in names for n in noises]
    todo = [j for j in todo if (j[0], j[2]) not in done]
    with ProcessPoolExecutor(max_workers=max(1, a.workers)) as pool:
        for r in pool.map(_one, todo):
            records.append(r)
            path.write_text(json.dumps(records, indent=1))
            print(f"{r['task']} noise {r['noise']:g}: {r['success']:.2f}", file=sys.stderr, flush=True)
    order = {PREFIX + t.removeprefix(PREFIX): i for i, t in enumerate(names)}
    records = sorted((r for r in records if r["task"] in order), key=lambda r: (order[r["task"]], r["noise"]))
    (out / "audit.md").write_text(markdown(records, noises) + "\n")
    print(markdown(records, noises))
    return 0


if __name__ == "__main__":
    sys.exit(main())
