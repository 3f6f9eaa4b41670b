"""The N tasks where one variant of a finished (or partial) suite experiment succeeded least: success
pooled over its seeds, ties broken by the task's name. Prints a table and the ``suite: {tasks: [...]}``
list to paste into an experiment file (how `metaworld_interactive` chose its tasks).

    python tools/hardest_tasks.py runs/mt50 --variant regression --n 10
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def hardest(out: Path, variant: str, n: int) -> list[tuple[str, int, int]]:
    """(task, successes, episodes) of the ``n`` tasks with the lowest pooled success of ``variant``."""
    path = out / "results.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (expected the results of `robolearn ablate ... --out {out}`)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["variant"] == variant]
    if not rows:
        raise SystemExit(f"{path}: no row of variant {variant!r}")
    pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        pooled[r["task"]][0] += int(r["successes"])
        pooled[r["task"]][1] += int(r["episodes"])
    ranked = sorted(pooled.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0]))
    return [(t, s, e) for t, (s, e) in ranked[:n]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the experiment's --out (holds results.csv)")
    ap.add_argument("--variant", required=True, help="rank the tasks by this variant's success")
    ap.add_argument("--n", type=int, default=10)
    a = ap.parse_args(argv)
    tasks = hardest(a.out, a.variant, a.n)
    print(f"| task | {a.variant} success | successes / episodes |\n|---|---|---|")
    for t, s, e in tasks:
        print(f"| {t} | {s / e:.2f} | {s} / {e} |")
    print("suite: {tasks: [" + ", ".join(t for t, _, _ in tasks) + "]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
