"""BC vs DART vs DAgger vs HG-DAgger at equal expert-label budgets, over seeds.

Every method runs the same rounds with the same label budget per round (``labels_per_round``
applies to round 0 too, so all start from the same BC policy per seed); "bc" is the expert
driving every round (plain BC with the data growing at the same rate). Each run lands in
``<out>/<method>/s<seed>`` with its own ledger; this script then writes ``<out>/ledger.csv``
(all rows), ``<out>/compare.png`` (success vs expert labels, one line per method) and prints a
markdown table of the last round. Runs already finished are skipped (and interrupted ones
resume), so the command can simply be run again.

    MUJOCO_GL=egl python tools/compare_interactive.py --task fetch_push --seeds 0 1 2 \
        --out runs/compare_push -- algo.rounds=4 algo.labels_per_round=600 algo.steps=3000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

ALGO_FILE = {"bc": "dagger", "dart": "dart", "dagger": "dagger", "hg_dagger": "hg_dagger"}


def run_one(task: str, method: str, seed: int, out: Path, overrides: list[str]) -> Path:
    from robolearn.algos.interactive import run_interactive
    from robolearn.config import compose

    run_dir = out / method / f"s{seed}"
    args = [f"algo={ALGO_FILE[method]}", f"task={task}", f"seed={seed}", f"run_dir={run_dir}", *overrides]
    if method == "bc":
        args.append("algo.name=bc")
    cfg = compose(args)
    run_interactive(cfg, run_dir)
    return run_dir / "ledger.csv"


def summary_table(rows: list[dict]) -> str:
    lines = [
        "| method | seeds | rounds | expert labels | env steps | success (mean ± std) | off-policy MSE "
        "| on-policy MSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == m]
        last = max(r["round"] for r in mine)
        fin = [r for r in mine if r["round"] == last]
        f = lambda k: np.array([r[k] for r in fin], dtype=float)  # noqa: E731
        s = f("success_rate")
        lines.append(
            f"| {m} | {len(fin)} | {last} | {f('expert_labels').mean():.0f} | {f('env_steps').mean():.0f} | "
            f"{s.mean():.2f} ± {s.std():.2f} | {f('offpolicy_mse').mean():.4f} | {f('onpolicy_mse').mean():.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="fetch_push")
    p.add_argument("--methods", nargs="+", default=list(ALGO_FILE), choices=list(ALGO_FILE))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--plot-only", action="store_true", help="only merge the ledgers already there")
    a = p.parse_args(argv)

    import torch

    from robolearn.algos.accounting import COLUMNS, plot_ledgers, read_ledgers, write_ledger

    torch.set_num_threads(a.threads)
    paths = []
    for method in a.methods:
        for seed in a.seeds:
            path = a.out / method / f"s{seed}" / "ledger.csv"
            if not a.plot_only:
                path = run_one(a.task, method, seed, a.out, overrides)
            if path.exists():
                paths.append(path)
    rows = read_ledgers(paths)
    if not rows:
        print("no ledgers found", file=sys.stderr)
        return 1
    write_ledger(rows, a.out / "ledger.csv")
    seeds = ", ".join(map(str, a.seeds))
    plot_ledgers(rows, a.out / "compare.png", title=f"{a.task}: success vs expert labels (seeds {seeds})")
    table = summary_table(rows)
    (a.out / "summary.md").write_text(table + "\n")
    print(table)
    print(f"ledger: {a.out / 'ledger.csv'}  plot: {a.out / 'compare.png'}  ({len(COLUMNS)} columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
