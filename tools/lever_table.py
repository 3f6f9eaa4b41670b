"""Evaluations of training runs against training wall-clock, in one table and one plot: each
run's score / success at the last evaluation within each time budget (30, 60, 180 min by
default), its training time per step and its best evaluation.

    python tools/lever_table.py runs/img_base_s0 runs/img_aux_s0 --budgets 30 60 --plot docs/levers.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evals(run: Path) -> list[dict]:
    hist = json.loads((run / "train_history.json").read_text())
    return [h for h in hist if "eval_score" in h]


def row(run: Path, budgets: list[float]) -> dict:
    ev = evals(run)
    hist = json.loads((run / "train_history.json").read_text())
    last = hist[-1]
    out = {"run": run.name, "steps": last["step"], "s_per_step": last["train_s"] / max(last["step"], 1)}
    finished = (run / "train_summary.json").exists()
    for b in budgets:
        within = [h for h in ev if h["train_s"] <= b * 60 + 1e-6]
        reached = finished or last["train_s"] >= b * 60  # a stopped run says nothing past its last row
        out[b] = (
            (within[-1]["eval_score"], within[-1]["eval_success"], within[-1]["step"]) if within and reached else None
        )
    best = max(ev, key=lambda h: h["eval_score"]) if ev else None
    out["best"] = (best["eval_score"], best["eval_success"], best["step"], best["train_s"] / 60) if best else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 180], help="training minutes")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    rows = [row(Path(r), a.budgets) for r in a.runs]
    head = " | ".join(f"score / success at {b:g} min (step)" for b in a.budgets)
    print(f"| run | s / step | {head} | best (step, min) |")
    print("|---|---|" + "---|" * len(a.budgets) + "---|")
    for r in rows:
        cells = ["-" if r[b] is None else f"{r[b][0]:.3f} / {r[b][1]:.2f} ({r[b][2]})" for b in a.budgets]
        best = r["best"]
        b = "-" if best is None else f"{best[0]:.3f} / {best[1]:.2f} ({best[2]}, {best[3]:.0f} min)"
        print(f"| {r['run']} | {r['s_per_step']:.3f} | {' | '.join(cells)} | {b} |")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for run in a.runs:
            ev = evals(Path(run))
            t = [h["train_s"] / 60 for h in ev]
            axes[0].plot(t, [h["eval_score"] for h in ev], "o-", label=Path(run).name)
            axes[1].plot(t, [h["eval_success"] for h in ev], "o-", label=Path(run).name)
        for ax, name in zip(axes, ("mean max score", "success")):
            ax.set_xlabel("training minutes (one core, evaluations excluded)")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=100)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
