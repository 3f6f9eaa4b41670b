"""Evaluation curves of several runs in one figure: mean max score and success rate against
training wall-clock (evaluations excluded) and against step, from each run's
train_history.json; prints each run's best and mean-of-last-k numbers, and with ``--group
NAME=RUN,RUN,...`` (training seeds of one method) the pooled numbers: the mean over seeds of the
last-k means, and the final evaluations' episodes pooled, success with its 95% Wilson interval.

    python tools/plot_curves.py runs/pusht_kp_flow_s0 runs/pusht_kp_flow_s1 --out docs/pusht_keypoints_curve.png
    python tools/plot_curves.py runs/pk17/*_s* --last-k 5 --out x.png --group bc=runs/pk17/bc_s0,runs/pk17/bc_s1
"""

from __future__ import annotations

import argparse
import json
import sys
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
    ap.add_argument("--group", action="append", default=[], help="NAME=RUN,RUN,... pooled over its runs")
    a = ap.parse_args()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for run in a.runs:
        rows = evaluations(run)
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
    for g in a.group:
        name, _, runs = g.partition("=")
        pooled(name, [Path(r) for r in runs.split(",") if r], a.last_k)


def evaluations(run: Path) -> list[dict]:
    return [h for h in json.loads((run / "train_history.json").read_text()) if "eval_score" in h]


def pooled(name: str, runs: list[Path], last_k: int) -> None:
    """One method over its training seeds: last-k means averaged over seeds; final evaluations pooled."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from robolearn.eval.metrics import wilson_interval

    rows = [evaluations(r) for r in runs]
    if not all(rows):
        print(f"{name}: no evaluations yet in {[str(r) for r, h in zip(runs, rows) if not h]}")
        return
    last_score = np.mean([np.mean([h["eval_score"] for h in r[-last_k:]]) for r in rows])
    last_succ = np.mean([np.mean([h["eval_success"] for h in r[-last_k:]]) for r in rows])
    k = sum(round(r[-1]["eval_success"] * r[-1]["eval_episodes"]) for r in rows)
    n = sum(r[-1]["eval_episodes"] for r in rows)
    lo, hi = wilson_interval(k, n)
    steps = sorted({r[-1]["step"] for r in rows})
    print(
        f"{name} ({len(runs)} seeds): mean of the last {last_k} evaluations: score {last_score:.3f}, success "
        f"{last_succ:.3f}; final evaluation (step {'/'.join(map(str, steps))}), {n} episodes pooled: score "
        f"{np.mean([r[-1]['eval_score'] for r in rows]):.3f}, success {k / n:.2f} [{lo:.2f}, {hi:.2f}]"
    )


if __name__ == "__main__":
    main()
