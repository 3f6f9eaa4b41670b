"""Results of an experiment: one row per cell (CSV), pooled over seeds (success with a Wilson
interval, score mean and spread, relative to a reference variant), Markdown tables (tasks as
columns, or as rows with a suite mean for a suite) and plots."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from robolearn.atomic import atomic_path, write_json, write_text
from robolearn.eval.metrics import wilson_interval

CELL_FIELDS = [
    "variant",
    "task",
    "seed",
    "components",
    "nfe",
    "success_rate",
    "success_lo",
    "success_hi",
    "mean_max_score",
    "episodes",
    "successes",
    "train_seconds",
    "expert_labels",
]


def aggregate(rows: list[dict], reference: str | None = None) -> list[dict]:
    """One row per (variant, task): mean and std over seeds of the mean max score, success pooled
    over seeds with a Wilson interval, and the score relative to the reference variant."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["task"]), []).append(r)
    ref = {t: np.mean([r["mean_max_score"] for r in g]) for (v, t), g in groups.items() if v == reference}
    out = []
    for (v, t), g in groups.items():
        scores = np.array([r["mean_max_score"] for r in g], dtype=float)
        succ, n = sum(r["successes"] for r in g), sum(r["episodes"] for r in g)
        lo, hi = wilson_interval(succ, n)
        rel = scores.mean() / ref[t] if t in ref and ref[t] > 0 else float("nan")
        out.append(
            {
                "variant": v,
                "task": t,
                "components": g[0]["components"],
                "nfe": g[0]["nfe"],
                "seeds": len(g),
                "score_mean": float(scores.mean()),
                "score_std": float(scores.std(ddof=1)) if len(g) > 1 else 0.0,
                "success": succ / max(n, 1),
                "success_lo": lo,
                "success_hi": hi,
                "successes": succ,
                "episodes": n,
                "expert_labels": _mean_labels(g),
                "relative": rel,
            }
        )
    return out


def _mean_labels(rows: list[dict]) -> float | None:
    vals = [r["expert_labels"] for r in rows if r.get("expert_labels") is not None]
    return float(np.mean(vals)) if vals else None


def markdown_table(agg: list[dict], reference: str | None) -> str:
    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    rel = f" (/{reference})" if reference else ""
    head = (
        "| variant | components | NFE | " + " | ".join(f"{t} score{rel} | {t} success [95% CI]" for t in tasks) + " |"
    )
    lines = [head, "|" + "---|" * (3 + 2 * len(tasks))]
    for v in variants:
        first = next(by[(v, t)] for t in tasks if (v, t) in by)
        cells = []
        for t in tasks:
            a = by.get((v, t))
            if a is None:
                cells += ["", ""]
                continue
            r = "" if np.isnan(a["relative"]) else f" ({a['relative']:.2f})"
            cells.append(f"{a['score_mean']:.3f} ± {a['score_std']:.3f}{r}")
            cells.append(f"{a['success']:.2f} [{a['success_lo']:.2f}, {a['success_hi']:.2f}]")
        lines.append(
            f"| {v} | {first['components']} | {first['nfe'] if first['nfe'] is not None else ''} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def plot(agg: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(5, 0.6 * len(variants) + 2) * len(tasks), 4), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        vs = [v for v in variants if (v, t) in by]
        y = [by[(v, t)]["score_mean"] for v in vs]
        e = [by[(v, t)]["score_std"] for v in vs]
        ax.bar(range(len(vs)), y, yerr=e, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(vs)), vs, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("mean max score (± std over seeds)")
        ax.set_ylim(0, 1.05)
        ax.set_title(t)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def suite_rows(agg: list[dict]) -> list[dict]:
    """Per variant, the suite mean: the mean over tasks of the success rate (pooled over seeds),
    with the Wilson interval of all its episodes (equal episodes per task: the same mean)."""
    out = []
    for v in dict.fromkeys(a["variant"] for a in agg):
        g = [a for a in agg if a["variant"] == v]
        succ = sum(a["successes"] for a in g)
        n = sum(a["episodes"] for a in g)
        lo, hi = wilson_interval(succ, n)
        out.append({"variant": v, "tasks": len(g), "success": float(np.mean([a["success"] for a in g])),
                    "success_lo": lo, "success_hi": hi})  # fmt: skip
    return out


def suite_markdown(agg: list[dict], experts: dict[str, str]) -> str:
    """Tasks as rows (a suite has too many for columns), variants as columns, the suite mean last."""
    tasks = list(dict.fromkeys(a["task"] for a in agg))
    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    lines = [
        "| task | expert demos kept / run | " + " | ".join(f"{v} success [95% CI]" for v in variants) + " |",
        "|" + "---|" * (2 + len(variants)),
    ]
    for t in tasks:
        cells = [
            f"{by[(v, t)]['success']:.2f} [{by[(v, t)]['success_lo']:.2f}, {by[(v, t)]['success_hi']:.2f}]"
            if (v, t) in by
            else ""
            for v in variants
        ]
        lines.append(f"| {t} | {experts.get(t, '')} | " + " | ".join(cells) + " |")
    means = {r["variant"]: r for r in suite_rows(agg)}
    cells = [
        f"**{means[v]['success']:.3f}** [{means[v]['success_lo']:.2f}, {means[v]['success_hi']:.2f}] "
        f"({means[v]['tasks']} tasks)"
        for v in variants
    ]
    lines.append("| **suite mean** | | " + " | ".join(cells) + " |")
    labels = {v: _mean_labels([a for a in agg if a["variant"] == v]) for v in variants}
    if any(x is not None for x in labels.values()):
        cells = [f"{labels[v]:.0f}" if labels[v] is not None else "" for v in variants]
        lines.append("| expert labels per task (mean) | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def suite_plot(agg: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(a["variant"] for a in agg))
    by = {(a["variant"], a["task"]): a for a in agg}
    tasks = sorted(dict.fromkeys(a["task"] for a in agg), key=lambda t: -np.mean(
        [by[(v, t)]["success"] for v in variants if (v, t) in by]))  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(tasks) * len(variants) + 2), 4.2))
    w = 0.8 / len(variants)
    for j, v in enumerate(variants):
        xs = [i for i, t in enumerate(tasks) if (v, t) in by]
        ys = [by[(v, tasks[i])]["success"] for i in xs]
        err = np.array([[by[(v, tasks[i])]["success"] - by[(v, tasks[i])]["success_lo"] for i in xs],
                        [by[(v, tasks[i])]["success_hi"] - by[(v, tasks[i])]["success"] for i in xs]])  # fmt: skip
        mean = float(np.mean(ys)) if ys else float("nan")
        ax.bar(np.array(xs) + (j - (len(variants) - 1) / 2) * w, ys, w, yerr=err, capsize=1.5,
               label=f"{v} (mean {mean:.2f})")  # fmt: skip
    ax.set_xticks(range(len(tasks)), tasks, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("success (95% Wilson interval)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _expert_counts(out: Path, tasks: list[str]) -> dict[str, str]:
    """``kept / run`` of each task's collected demos (from the store's attributes)."""
    import json

    found = {}
    for t in tasks:
        attrs = out / "data" / f"{t}.zarr" / "zarr.json"
        if attrs.is_file():
            a = json.loads(attrs.read_text()).get("attributes", {})
            runs = a.get("collections") or []
            if runs:
                found[t] = f"{sum(r['episodes_kept'] for r in runs)} / {sum(r['episodes_run'] for r in runs)}"
    return found


def results_table(agg: list[dict], exp: DictConfig, out: Path) -> str:
    """The Markdown table: tasks as columns, or as rows with a suite mean for a suite experiment."""
    if exp.get("suite") is not None:
        return suite_markdown(agg, _expert_counts(out, list(exp.tasks)))
    return markdown_table(agg, exp.get("reference"))


def write_results(rows: list[dict], out: Path, exp: DictConfig) -> None:
    reference = exp.get("reference")
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CELL_FIELDS)
        w.writeheader()
        w.writerows(rows)
    agg = aggregate(rows, reference)
    table = results_table(agg, exp, out)
    (suite_plot if exp.get("suite") is not None else plot)(agg, out / "results.png", str(exp._name))
    write_text(out / "results.md", f"# {exp._name}\n\n{table}\n")
    write_json(agg, out / "results.json")
