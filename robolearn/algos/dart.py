"""DART (Laskey et al. 2017): show the expert recovering from the learner's own mistakes,
without ever letting the learner drive.

BC trains only on the expert's states; the learner, which errs, drifts off them. DART adds
Gaussian noise to the expert's *executed* actions during collection, so the data visits the
states just off the expert's path, while every label stays the expert's clean action (chunk)
at the state actually visited. The noise should look like the learner's error: after each
iteration the learner's first predicted action is compared with the expert's on held-out
clean demonstrations, and the covariance of that error (times ``noise_scale``) becomes the
next iteration's noise. Data are aggregated over iterations and the policy retrained.

Compared with DAgger, the expert stays in control (safe on a real robot) and labels come
from the expert's own noisy runs; the price is that the noise only approximates the
learner's error, it never reproduces the learner's actual mistakes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from robolearn.algos.acting import ExpertActs
from robolearn.algos.rounds import run_rounds
from robolearn.errors import ConfigError


def noise_from_errors(
    cov: np.ndarray, kind: str = "full", scale: float = 1.0, max_std: float | None = None
) -> tuple[np.ndarray | float, float]:
    """Noise for ``ExpertActs.noise`` from an error covariance (A, A), and its mean std (ledger).

    ``full``: a Cholesky factor (correlated noise, as in the paper); ``diag``: independent
    per-dim stds; ``isotropic``: one std, sqrt(trace / A). ``max_std`` caps the largest
    per-dim std by shrinking the whole covariance (a bad early learner must not make the
    expert's demonstrations useless)."""
    cov = np.asarray(cov, dtype=np.float64) * float(scale)
    cov = (cov + cov.T) / 2
    if max_std is not None and np.sqrt(np.max(np.diag(cov))) > max_std:
        cov = cov * (max_std**2 / np.max(np.diag(cov)))
    a = cov.shape[0]
    mean_std = float(np.sqrt(np.trace(cov) / a))
    if kind == "isotropic":
        return mean_std, mean_std
    if kind == "diag":
        return np.diag(np.sqrt(np.clip(np.diag(cov), 0, None))), mean_std
    if kind == "full":
        w, v = np.linalg.eigh(cov)  # a PSD square root is as good as Cholesky and never fails on rank-deficient cov
        return v @ np.diag(np.sqrt(np.clip(w, 0, None))), mean_std
    raise ConfigError(f"algo.noise_kind: expected full | diag | isotropic, found {kind!r}")


def dart_plan(r: int, history: list[dict], algo) -> ExpertActs:
    """Iteration 0: the expert with ``noise_init`` (0 = clean BC demos). Iteration r: noise
    shaped like the iteration r-1 learner's error on held-out expert states."""
    if r == 0:
        s = float(algo.noise_init)
        return ExpertActs(noise=s if s > 0 else None, record={"noise_std": s})
    cov = np.asarray(history[-1]["error_cov"])
    noise, std = noise_from_errors(cov, str(algo.noise_kind), float(algo.noise_scale), algo.noise_max)
    return ExpertActs(noise=noise, record={"noise_std": std})


def run_dart(cfg: DictConfig, run_dir: str | Path, progress: bool = True, dist=None) -> dict:
    """DART iterations (``algo=dart``); the same run directory layout, ledger and resume as DAgger."""
    if str(cfg.algo.name) != "dart":
        raise ConfigError(f"run_dart: expected algo.name=dart, found {cfg.algo.name!r}")
    return run_rounds(cfg, run_dir, dart_plan, progress, dist)
