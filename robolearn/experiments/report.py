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
    "env_steps",
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
                "env_steps": float(np.mean([r.get("env_steps") or 0 for r in g])),
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
    costs = any(a.get("env_steps") for a in agg)  # interactive or adversarial cells: what each method paid
    if costs:
        head += " expert labels | learner env steps |"
    lines = [head, "|" + "---|" * (3 + 2 * len(tasks) + 2 * costs)]
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
        if costs:
            mine = [by[(v, t)] for t in tasks if (v, t) in by]
            labels = [a["expert_labels"] for a in mine if a["expert_labels"] is not None]
            cells.append(f"{np.mean(labels):.0f}" if labels else "")
            cells.append(f"{np.mean([a['env_steps'] for a in mine]):.0f}")
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


# ------------------------------------------------ delay experiments (experiments/delay.py, robolearn delay)

DELAY_FIELDS = [  # one row of a delay experiment's results
    "task",
    "variant",
    "executor",
    "noise",
    "delay",
    "delay_ms",
    "s",
    "seeds",
    "episodes",
    "successes",
    "success_rate",
]


def default_s(d: int, s: int | None) -> bool:
    """Whether s is the default execution horizon max(d, 1) at delay d (None: no horizon)."""
    return s is None or s == max(d, 1)


def write_delay_results(
    rows: list[dict], out: Path, title: str, paired: list[dict] | None = None, diagnostic: list[dict] | None = None
) -> None:
    import csv

    fields = [*DELAY_FIELDS, "success_lo", "success_hi", "mean_max_score"]
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    text = diagnostic_markdown(diagnostic) + "\n\n" if diagnostic else ""
    text += delay_markdown(rows)
    swept = any(not _at_min(r) for r in rows)
    if swept:
        text += "\n\n## Success against the execution horizon s\n\n" + delay_horizons_markdown(rows)
    if paired:
        text += "\n\n## Solve rate averaged over s, paired against " + paired[0]["baseline"] + "\n\n"
        text += paired_markdown(paired)
        write_json(paired, out / "paired.json")
        paired_plot(paired, out / "paired.png", title)
    write_text(out / "results.md", f"# {title}\n\n{text}\n")
    write_json(rows, out / "results.json")
    if rows:
        delay_plot(rows, out / "delay.png", title)
    if swept:
        delay_horizons_plot(rows, out / "horizons.png", title)


def _at_min(row: dict) -> bool:
    """A row at the default execution horizon s = max(d, 1) (or of an executor without one)."""
    return default_s(row["delay"], row["s"])


def _ci(r: dict) -> str:
    return f"{r['success_rate']:.2f} [{r['success_lo']:.2f}, {r['success_hi']:.2f}]"


def delay_horizons_markdown(rows: list[dict]) -> str:
    """Success [95% CI] per (task, noise, variant, executor, delay) row, one column per s."""
    rows = [r for r in rows if r["s"] is not None]
    horizons = sorted({r["s"] for r in rows})
    by = {(r["task"], r["noise"], r["variant"], r["executor"], r["delay"], r["s"]): r for r in rows}
    lines = [
        "| task | noise | head | executor | d | " + " | ".join(f"s = {s}" for s in horizons) + " |",
        "|---|---|---|---|---|" + "---|" * len(horizons),
    ]
    for key in dict.fromkeys((r["task"], r["noise"], r["variant"], r["executor"], r["delay"]) for r in rows):
        cells = [_ci(by[(*key, s)]) if (*key, s) in by else "" for s in horizons]
        lines.append(f"| {key[0]} | {key[1]:g} | {key[2]} | {key[3]} | {key[4]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_delay(rows: list[dict], cell) -> list[str]:
    """Markdown lines: one row per (task, noise, head, executor), one column per delay, each cell
    ``cell(row at that delay, or None)``."""
    delays = sorted({r["delay"] for r in rows})
    by = {(r["task"], r["noise"], r["variant"], r["executor"], r["delay"]): r for r in rows}
    lines = [
        "| task | noise | head | executor | " + " | ".join(f"d = {d}" for d in delays) + " |",
        "|---|---|---|---|" + "---|" * len(delays),
    ]
    for key in dict.fromkeys((r["task"], r["noise"], r["variant"], r["executor"]) for r in rows):
        cells = [cell(by.get((*key, d))) for d in delays]
        lines.append(f"| {key[0]} | {key[1]:g} | {key[2]} | {key[3]} | " + " | ".join(cells) + " |")
    return lines


def delay_markdown(rows: list[dict]) -> str:
    """Success [95% CI] per (task, noise, variant, executor) row, one column per delay, at the
    default execution horizon s = max(d, 1)."""
    rows = [r for r in rows if _at_min(r)]
    lines = _by_delay(rows, lambda r: _ci(r) if r else "")
    n = sorted({r["episodes"] for r in rows})
    lines.append(f"\nEpisodes per cell (seeds pooled): {', '.join(map(str, n))}; execution horizon s = max(d, 1).")
    per = {r["task"]: r["delay_ms"] / r["delay"] for r in rows if r["delay"] and r.get("delay_ms") is not None}
    if per:
        lines.append("One step of delay: " + ", ".join(f"{t} {v:g} ms" for t, v in per.items()) + ".")
    return "\n".join(lines)


def _delay_styles(rows: list[dict]):
    """One colour per executor and one line style per head, so that a dozen series stay apart."""
    import matplotlib.pyplot as plt

    executors = list(dict.fromkeys(r["executor"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]

    def style(variant: str, executor: str) -> dict:
        return {
            "color": colours[executors.index(executor) % len(colours)],
            "linestyle": styles[variants.index(variant) % len(styles)],
        }

    return style


def _errorbars(ax, pts: list[dict], x: str, label: str, style: dict) -> None:
    err = [
        [r["success_rate"] - r["success_lo"] for r in pts],
        [r["success_hi"] - r["success_rate"] for r in pts],
    ]
    ax.errorbar(
        [r[x] for r in pts],
        [r["success_rate"] for r in pts],
        yerr=err,
        marker="o",
        ms=3,
        capsize=2,
        label=label,
        **style,
    )


def _finish(fig, axes, path: Path, title: str) -> None:
    legend = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def delay_horizons_plot(rows: list[dict], path: Path, title: str) -> None:
    """Success against the execution horizon s: one panel per (task, noise) and delay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["s"] is not None]
    style = _delay_styles(rows)
    panels = list(dict.fromkeys((r["task"], r["noise"]) for r in rows))
    delays = sorted({r["delay"] for r in rows})
    fig, axes = plt.subplots(len(panels), len(delays), figsize=(3.6 * len(delays), 3.0 * len(panels)), squeeze=False)
    for (task, noise), line in zip(panels, axes):
        for d, ax in zip(delays, line):
            mine = [r for r in rows if r["task"] == task and r["noise"] == noise and r["delay"] == d]
            for key in dict.fromkeys((r["variant"], r["executor"]) for r in mine):
                pts = sorted((r for r in mine if (r["variant"], r["executor"]) == key), key=lambda r: r["s"])
                _errorbars(ax, pts, "s", f"{key[0]} / {key[1]}", style(*key))
            ax.set_title(f"{task}, noise {noise:g}, d = {d}", fontsize=9)
            ax.set_xlabel("execution horizon s")
            ax.set_ylabel("success (95% CI)")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
    _finish(fig, list(axes.flat), path, title)
    plt.close(fig)


def delay_plot(rows: list[dict], path: Path, title: str) -> None:
    """Success against delay at the default execution horizon: one panel per (task, noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if _at_min(r)]
    style = _delay_styles(rows)
    panels = list(dict.fromkeys((r["task"], r["noise"]) for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (task, noise) in zip(axes[0], panels):
        mine = [r for r in rows if r["task"] == task and r["noise"] == noise]
        for key in dict.fromkeys((r["variant"], r["executor"]) for r in mine):
            pts = sorted((r for r in mine if (r["variant"], r["executor"]) == key), key=lambda r: r["delay"])
            _errorbars(ax, pts, "delay", f"{key[0]} / {key[1]}", style(*key))
        ax.set_title(f"{task}, execution noise {noise:g}")
        step = next((r["delay_ms"] / r["delay"] for r in mine if r["delay"] and r.get("delay_ms") is not None), None)
        ax.set_xlabel("inference delay d (env steps" + (f"; {step:g} ms each)" if step else ")"))
        ax.set_ylabel("success (95% CI)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    _finish(fig, list(axes[0]), path, title)
    plt.close(fig)


def sweep_markdown(rows: list[dict]) -> str:
    """One checkpoint's executors against delay (``robolearn eval --delays``), one row per pair."""
    lines = [
        f"| {'executor':<24} | delay | success | 95% CI       | max score | jerk   | boundary jump |",
        f"|{'-' * 26}|-------|---------|--------------|-----------|--------|---------------|",
    ]
    for r in rows:
        lo, hi = r["success_ci95"]
        lines.append(
            f"| {r['executor'][:24]:<24} | {r['delay']:>5} | {r['success_rate']:>7.2f} | [{lo:.2f}, {hi:.2f}] |"
            f" {r['mean_max_score']:>9.3f} | {r['mean_abs_jerk']:.4f} | {r['boundary_jump']:>13.4f} |"
        )
    return "\n".join(lines)


def sweep_plot(rows: list[dict], path: str | Path) -> None:
    """Success (with 95% Wilson interval), mean |jerk| and boundary jump against delay; plus the
    mean max score when the task has a graded score (Push-T coverage) rather than 0/1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graded = any(abs(r["mean_max_score"] - r["success_rate"]) > 1e-9 for r in rows)
    panels = (
        [("success", "success rate (95% CI)")]
        + ([("score", "mean max score")] if graded else [])
        + [("mean_abs_jerk", "mean |jerk| of actions"), ("boundary_jump", "jump at chunk switches")]
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8))
    labels = list(dict.fromkeys(r["executor"] for r in rows))
    styles = ["-", "--", ":", "-."]  # identical executors (receding vs naive_async) stay visible
    for j, label in enumerate(labels):
        rs = sorted((r for r in rows if r["executor"] == label), key=lambda r: r["delay"])
        d = np.array([r["delay"] for r in rs], dtype=float)
        p = np.array([r["success_rate"] for r in rs])
        ci = np.array([r["success_ci95"] for r in rs])
        kw = dict(marker="os^Dv"[j % 5], linestyle=styles[j % 4], label=label)
        dx = (j - (len(labels) - 1) / 2) * 0.05  # side by side, so the intervals do not hide each other
        axes[0].errorbar(d + dx, p, yerr=[p - ci[:, 0], ci[:, 1] - p], capsize=3, **kw)
        for ax, (key, _) in zip(axes[1:], panels[1:]):
            ax.plot(d, [r["mean_max_score" if key == "score" else key] for r in rs], **kw)
    delays = sorted({r["delay"] for r in rows})
    for ax, (_, title) in zip(axes, panels):
        ax.set_xticks(delays)
        ax.set_xlabel("inference delay (env steps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    if graded:
        axes[1].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def paired_markdown(rows: list[dict]) -> str:
    """Solve rate averaged over s per (task, noise, head, executor) and delay, with the paired
    difference to the baseline executor and its 95% bootstrap interval."""

    def cell(r: dict | None) -> str:
        if r is None:
            return ""
        if r["executor"] == r["baseline"]:
            return f"{r['solve_rate']:.3f} ({r['units']})"
        return f"{r['solve_rate']:.3f} ({r['diff']:+.3f} [{r['diff_lo']:+.3f}, {r['diff_hi']:+.3f}])"

    return "\n".join(_by_delay(rows, cell)) + (
        "\n\nEach cell: solve rate averaged over the execution horizons s run at that delay (the baseline's "
        "row: with the number of paired units, training seed x evaluation seed), then the paired difference "
        "to the baseline with its 95% bootstrap interval."
    )


def paired_plot(rows: list[dict], path: Path, title: str) -> None:
    """Solve rate (averaged over s) against delay, one line per executor, one panel per (task,
    noise, head): the RTC paper's figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r["task"], r["noise"], r["variant"]) for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (task, noise, variant) in zip(axes[0], panels):
        mine = [r for r in rows if (r["task"], r["noise"], r["variant"]) == (task, noise, variant)]
        for label in dict.fromkeys(r["executor"] for r in mine):
            pts = sorted((r for r in mine if r["executor"] == label), key=lambda r: r["delay"])
            ax.plot([r["delay"] for r in pts], [r["solve_rate"] for r in pts], "o-", ms=3, label=label)
        ax.set(title=f"{task} {variant} noise {noise:g}", xlabel="delay d (steps)", ylabel="solve rate (mean over s)",
               ylim=(0, 1.02))  # fmt: skip
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def diagnostic_markdown(rows: list[dict]) -> str:
    """The multimodality diagnostic, run on every trained model before its sweep."""
    delays = sorted(int(k[6:]) for k in rows[0] if k.startswith("jump_d"))
    lines = [
        "## Can these models show RTC's effect? (diagnostic at demonstration states)\n",
        "| task | head | seeds | bimodal share (BC > 5/9) | mean coefficient | gap of two samples | "
        + " | ".join(f"naive async jump d = {d}" for d in delays)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(delays),
    ]
    for r in rows:
        jumps = ["" if r[f"jump_d{d}"] is None else f"{r[f'jump_d{d}']:.3f}" for d in delays]
        lines.append(f"| {r['task']} | {r['variant']} | {r['seeds']} | {r['bimodal_share']:.2f} | "
                     f"{r['mean_coefficient']:.3f} | {r['sample_gap']:.3f} | " + " | ".join(jumps) + " |")  # fmt: skip
    return "\n".join(lines) + (
        "\n\nBimodal share: demonstration states whose sampled chunks (32 per state) have Sarle's coefficient "
        "above 5/9; gap: mean distance between two chunks sampled at one observation; jump: naive async's mean "
        "action change where a new chunk takes over (noise " + f"{rows[0]['noise']:g}" + ")."
    )
