"""Which labels to keep (reached within the threshold, and inside the learned model's trusted
region), and the audit that executes labels in another ``step`` (the simulator) to check that."""

from __future__ import annotations

from typing import Any

import numpy as np


def keep_labels(
    samples: list[dict[str, Any]], threshold: float, heldout: np.ndarray | None = None, trust: float | None = None
) -> list[dict[str, Any]]:
    """The samples whose every label reached its demonstrated next state within ``threshold`` and,
    with a learned model, whose demonstrated transitions the model predicts (unseen) within
    ``trust``: outside that region a small search error says nothing about the real system."""
    return [s for s in samples if s["error"].max() < threshold and (heldout is None or heldout[s["t"]].max() < trust)]


def audit(step, samples: list[dict[str, Any]], states: np.ndarray) -> np.ndarray:
    """Each sample's worst error when its actions are executed by ``step`` (e.g. the simulator,
    for labels a learned model produced): RMS over the state of (reached - demonstrated next) /
    the demonstrations' std, as the search measures it."""
    if not samples:
        return np.zeros(0)
    scale = states.std(0) + 1e-6
    t = np.concatenate([smp["t"] for smp in samples])
    reached = step(
        np.concatenate([smp["state"] for smp in samples]), np.concatenate([smp["action"] for smp in samples])
    )
    err = np.sqrt(np.mean(np.square((reached - states[t + 1]) / scale), axis=-1))
    return err.reshape(len(samples), -1).max(1)
