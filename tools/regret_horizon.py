"""Regret against the horizon from a finished (or partial) experiment: J = T x mean max score (for
cartpole: the steps balanced out of T), regret = J(expert) - J(learner) with the `expert` variant's
J on the same seeds and noise, and the fitted growth exponent of each learner's regret in T
(the slope of log regret on log T: 1 = linear, as the reward and on-policy moments predict with a
recoverable task; 2 = quadratic, BC's worst case).

    python tools/regret_horizon.py runs/ablate/regret_horizon_cartpole [--plot docs/regret_horizon.png]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def load(out: Path) -> dict[str, dict[int, list[tuple[float, int | None]]]]:
    """variant -> T -> [(J, expert labels) per seed]."""
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        m = json.loads((out / "cells" / r["variant"] / r["task"] / f"s{r['seed']}" / "metrics.json").read_text())
        T = int(m["summary"]["max_steps"])
        labels = int(r["expert_labels"]) if r.get("expert_labels") not in (None, "", "None") else None
        by[r["variant"]][T].append((T * float(r["mean_max_score"]), labels))
    return by


def slope(ts: list[int], regrets: list[float]) -> float | None:
    """Least-squares slope of log regret on log T, over the horizons with positive regret (None if
    fewer than two)."""
    pts = [(t, r) for t, r in zip(ts, regrets) if r > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the experiment's output folder (results.csv, cells/)")
    ap.add_argument("--plot", type=Path, default=None)
    a = ap.parse_args()
    if not (a.out / "results.csv").is_file():
        print(f"{a.out}/results.csv: expected an experiment's results, found no such file", file=sys.stderr)
        return 2
    by = load(a.out)
    if "expert" not in by:
        print(f"{a.out}: expected an `expert` variant (the reference J), found {sorted(by)}", file=sys.stderr)
        return 2
    ts = sorted(by["expert"])
    j_exp = {t: float(np.mean([j for j, _ in by["expert"][t]])) for t in ts}
    print("| method | " + " | ".join(f"T = {t}" for t in ts) + " | growth exponent | expert labels (largest T) |")
    print("|---|" + "---|" * (len(ts) + 2))
    print("| expert J | " + " | ".join(f"{j_exp[t]:.1f}" for t in ts) + " | | |")
    curves = {}
    for v in (v for v in by if v != "expert"):
        reg, cells = [], []
        for t in ts:
            js = [j for j, _ in by[v].get(t, [])]
            if not js:
                reg.append(float("nan"))
                cells.append("")
                continue
            r = j_exp[t] - float(np.mean(js))
            se = float(np.std(js, ddof=1) / np.sqrt(len(js))) if len(js) > 1 else float("nan")
            reg.append(r)
            cells.append(f"{r:.1f} ± {se:.1f} ({len(js)})")
        k = slope([t for t, r in zip(ts, reg) if r == r], [r for r in reg if r == r])
        lab = by[v].get(ts[-1], [])
        labels = "" if not lab or lab[0][1] is None else f"{np.mean([x for _, x in lab]):.0f}"
        print(f"| {v} regret | " + " | ".join(cells) + f" | {'' if k is None else f'{k:.2f}'} | {labels} |")
        curves[v] = reg
    print("\nregret ± standard error over seeds (seeds); growth exponent: slope of log regret on log T over "
          "the horizons where regret > 0.")  # fmt: skip
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        for v, reg in curves.items():
            pts = [(t, r) for t, r in zip(ts, reg) if r == r and r > 0]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=v)
        ref = np.array(ts, float)
        base = max((r for reg in curves.values() for r in reg if r == r and r > 0), default=1.0)
        for p, style in ((1, ":"), (2, "--")):
            ax.plot(ref, base * (ref / ref[-1]) ** p, "k" + style, lw=0.8, label=f"~ T^{p}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.minorticks_off()
        ax.set_xlabel("horizon T (control steps)")
        ax.set_ylabel("regret J(expert) - J(learner)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=110)
        print(f"plot: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
