"""Episode metrics and their uncertainty."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate: honest at 0% and 100%, unlike p ± 1.96 se."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def summarize(episodes: list[dict]) -> dict:
    n = len(episodes)
    succ = int(sum(bool(e["success"]) for e in episodes))
    lo, hi = wilson_interval(succ, n)
    scores = np.array([e["max_score"] for e in episodes], dtype=float)
    lengths = np.array([e["length"] for e in episodes], dtype=float)
    return {
        "episodes": n,
        "success_rate": succ / max(n, 1),
        "success_ci95": [lo, hi],
        "mean_max_score": float(scores.mean()) if n else float("nan"),
        "std_max_score": float(scores.std()) if n else float("nan"),
        "mean_length": float(lengths.mean()) if n else float("nan"),
        **{
            k: float(np.mean([e[k] for e in episodes]))
            for k in ("mean_abs_jerk", "boundary_jump", "step_change")
            if n and all(k in e for e in episodes)
        },
        **(
            {"mean_max_coverage": float(np.mean([e["max_coverage"] for e in episodes]))}
            if n and all("max_coverage" in e for e in episodes)
            else {}
        ),
    }


def results_table(rows: list[tuple[str, dict]]) -> str:
    head = f"| {'policy':<40} | episodes | success | 95% CI        | mean max score | mean length |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for name, m in rows:
        lo, hi = m["success_ci95"]
        lines.append(
            f"| {name[-40:]:<40} | {m['episodes']:>8} | {m['success_rate']:>7.2f} | [{lo:.2f}, {hi:.2f}]  |"
            f" {m['mean_max_score']:>14.3f} | {m['mean_length']:>11.1f} |"
        )
    return "\n".join(lines)
