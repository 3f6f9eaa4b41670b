"""Evaluation curves of several runs in one figure: mean max score and success rate against
training wall-clock (evaluations excluded) and against step, from each run's
train_history.json; prints each run's best and mean-of-last-k numbers.

    python tools/plot_curves.py runs/pusht_kp_flow_s0 runs/pusht_kp_flow_s1 --out docs/pusht_keypoints_curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--last-k", type=int, default=10)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for run in a.runs:
        rows = [h for h in json.loads((run / "train_history.json").read_text()) if "eval_score" in h]
        if not rows:
            continue
        minutes = np.array([h["train_s"] for h in rows]) / 60
        score, succ = [h["eval_score"] for h in rows], [h["eval_success"] for h in rows]
        line = axes[0].plot(minutes, score, "o-", ms=3, label=run.name)[0]
        axes[1].plot(minutes, succ, "s-", ms=3, color=line.get_color(), label=run.name)
        axes[2].plot([h["step"] for h in rows], score, "o-", ms=3, color=line.get_color(), label=run.name)
        last = rows[-a.last_k :]
        best = max(rows, key=lambda h: (h["eval_score"], h["eval_success"]))
        print(
            f"{run.name}: best score {best['eval_score']:.3f} (success {best['eval_success']:.2f}, step "
            f"{best['step']}); mean of last {len(last)}: score {np.mean([h['eval_score'] for h in last]):.3f}, "
            f"success {np.mean([h['eval_success'] for h in last]):.3f}; training {minutes[-1]:.1f} min"
        )
    for ax, ylabel, xlabel in (
        (axes[0], "mean max score", "training wall-clock (min)"),
        (axes[1], "success rate", "training wall-clock (min)"),
        (axes[2], "mean max score", "step"),
    ):
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(a.title)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=100)


if __name__ == "__main__":
    main()
