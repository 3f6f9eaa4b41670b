"""The label search: perturb a demonstrated state, find the action (cross-entropy method) that
brings ``step`` back onto the demonstrated next state, and the chunk label that follows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robolearn.errors import DataError


def search_actions(
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    s_c: np.ndarray,
    target: np.ndarray,
    a_init: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    rng: np.random.Generator,
    n_candidates: int = 32,
    iters: int = 3,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row i, the action a minimizing the RMS of (step(s_c[i], a) - target[i]) / scale.

    ``step`` is batched: (M, S), (M, A) -> (M, S). Cross-entropy method: ``n_candidates`` actions
    per row around a mean started at ``a_init`` (the first candidate is the mean itself), the best
    quarter refits mean and std, ``iters`` rounds; or, with ``candidates`` (K, A), every one of them
    (discrete actions). Returns the best actions (N, A) and their errors (N,)."""
    n = len(s_c)

    def errors(acts: np.ndarray) -> np.ndarray:  # acts (N, K, A) -> (N, K)
        k = acts.shape[1]
        nxt = step(np.repeat(s_c, k, axis=0), acts.reshape(n * k, -1)).reshape(n, k, -1)
        return np.sqrt(np.mean(np.square((nxt - target[:, None]) / scale), axis=-1))

    if candidates is not None:
        acts = np.broadcast_to(candidates[None], (n, *candidates.shape)).astype(np.float64)
        err = errors(acts)
        best = err.argmin(1)
        return acts[np.arange(n), best], err[np.arange(n), best]
    mean = np.clip(np.asarray(a_init, np.float64), low, high)
    std = np.broadcast_to((high - low) / 4, mean.shape).copy()
    best_a, best_e = mean.copy(), np.full(n, np.inf)
    n_elite = max(1, n_candidates // 4)
    for _ in range(iters):
        acts = mean[:, None] + std[:, None] * rng.standard_normal((n, n_candidates, mean.shape[1]))
        acts[:, 0] = mean
        acts = np.clip(acts, low, high)
        err = errors(acts)
        order = np.argsort(err, axis=1)
        i = order[:, 0]
        better = err[np.arange(n), i] < best_e
        best_a[better], best_e[better] = acts[np.arange(n), i][better], err[np.arange(n), i][better]
        elite = np.take_along_axis(acts, order[:, :n_elite, None], axis=1)
        mean, std = elite.mean(1), elite.std(1) + 1e-3 * (high - low)
    return best_a, best_e


def chunk_after(
    actions: np.ndarray, first: np.ndarray, t: int, end: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """[first, actions[t+1], ..., actions[t+H-1]], padded with the episode's last action at its end,
    and which of its steps are real (the window sampler's ``action_mask``)."""
    steps = np.arange(t + 1, t + horizon)
    idx = np.minimum(steps, end - 1)
    return np.concatenate([first[None], actions[idx]], axis=0), np.concatenate([[True], steps < end])


def demo_chunks(actions: np.ndarray, episode_ends: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The demonstrations' own chunks: actions t..t+H-1 of each step, edge-padded at episode ends,
    with the mask of real steps (so a chunk-labelled demonstration trains exactly as its windows)."""
    starts = np.concatenate([[0], episode_ends[:-1]])
    out = np.empty((len(actions), horizon, actions.shape[1]), actions.dtype)
    mask = np.empty((len(actions), horizon), bool)
    for s, e in zip(starts, episode_ends):
        for t in range(s, e):
            steps = np.arange(t, t + horizon)
            out[t], mask[t] = actions[np.minimum(steps, e - 1)], steps < e
    return out, mask


def corrective_samples(
    states: np.ndarray,
    actions: np.ndarray,
    episode_ends: np.ndarray,
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n_samples: int,
    noise: float,
    horizon: int,
    obs_horizon: int,
    bounds: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    perturb: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    dims: list[int] | tuple[int, ...] | None = None,
    candidates: np.ndarray | None = None,
    n_candidates: int = 32,
    iters: int = 3,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """``n_samples`` corrective samples around uniformly drawn demonstrated steps. Each sample is
    ``obs_horizon`` consecutive demonstrated states shifted by one perturbation (Gaussian, ``noise``
    stds, on the state dims ``dims``: those one action can undo, e.g. the agent's own position;
    or ``perturb(state, rng)``), with, per state, the searched action, its chunk, its error and the
    demonstrated step it corrects."""
    scale = states.std(0) + 1e-6
    starts = np.concatenate([[0], episode_ends[:-1]])
    ep_of = np.repeat(np.arange(len(episode_ends)), np.diff(np.concatenate([[0], episode_ends])))
    ok = np.array([t + 1 < episode_ends[ep_of[t]] for t in range(len(states))])  # has a next state
    pool = np.flatnonzero(ok)
    if not len(pool):
        raise DataError("corrective labels: the demonstrations have no transition (every episode has one step)")
    picks = rng.choice(pool, size=n_samples, replace=len(pool) < n_samples)
    if perturb is not None:
        offsets = np.stack([perturb(states[t], rng) - states[t] for t in picks])
    else:
        offsets = np.zeros((n_samples, states.shape[1]))
        d = list(range(states.shape[1])) if dims is None else list(dims)
        offsets[:, d] = noise * scale[d] * rng.standard_normal((n_samples, len(d)))
    low, high = (np.asarray(b, np.float64) for b in bounds)
    samples = []
    for lo in tqdm(range(0, n_samples, 256), desc="corrective labels", disable=not progress, dynamic_ncols=True):
        batch = range(lo, min(n_samples, lo + 256))
        frames = [
            [max(int(starts[ep_of[t]]), t - k) for k in range(obs_horizon - 1, -1, -1)]
            for t in (int(picks[i]) for i in batch)
        ]
        flat = np.array([f for fr in frames for f in fr])
        off = np.repeat(offsets[list(batch)], obs_horizon, axis=0)
        s_c = states[flat] + off
        a, err = search_actions(
            step,
            s_c,
            states[flat + 1],
            actions[flat],
            scale,
            low,
            high,
            rng,
            n_candidates,
            iters,
            candidates,
        )
        for j in range(len(batch)):
            rows = slice(j * obs_horizon, (j + 1) * obs_horizon)
            ts = flat[rows]
            end = int(episode_ends[ep_of[ts[-1]]])
            pairs = [chunk_after(actions, a[r], int(t), end, horizon) for r, t in zip(range(rows.start, rows.stop), ts)]
            samples.append(
                {
                    "t": ts,
                    "state": s_c[rows],
                    "action": a[rows],
                    "error": err[rows],
                    "chunk": np.stack([c for c, _ in pairs]),
                    "chunk_mask": np.stack([m for _, m in pairs]),
                }
            )
    return samples
