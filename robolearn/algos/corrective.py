"""Corrective labels without an expert in the loop: from the simulator's true dynamics, or from a
learned dynamics model trusted only where it is accurate (CCIL, Ke et al. 2024).

BC sees only the demonstrated states; a learner that drifts off them has no label there. A
corrective label is a state near a demonstrated one and the action that brings the system back
onto the demonstrated next state. For a demonstrated transition (s*_t, a*_t, s*_{t+1}):

1. perturb: s_c = s*_t + noise * std * z (z standard normal; std the demonstrations' per-dim std;
   the same offset is applied to the ``obs_horizon`` - 1 states before it, so the observation
   history is the demonstration's, shifted);
2. search: the action a_c minimizing ||(step(s_c, a) - s*_{t+1}) / std|| (RMS over dims), by the
   cross-entropy method started at a*_t (or over a given candidate set when actions are discrete);
   ``step`` is the simulator (``dynamics: true``: the task puts the simulator at s_c, steps it and
   reads the state back) or a learned model (``dynamics: learned``);
3. keep the label only if the achieved error is below ``threshold`` and, for a learned model, the
   model's own error on that demonstrated transition (by a model that never saw its episode) is
   below ``trust``.

A chunked head predicts H actions, so the label is a chunk: a_c, then the demonstration's own
actions from t+1 (after a_c the system is back on the demonstration). The output zarr holds the
demonstrations and the corrective episodes (each the To perturbed states of one sample, every
step labelled), all with ``action_chunk``; train on it with ``algo.chunk_key=action_chunk``.
Provenance per step: ``corrective`` (0 demonstration, 1 generated) and ``label_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robolearn.algos.acting import CHUNK_KEY, CHUNK_MASK_KEY
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError, DataError

NEEDS = ("correction_states", "correction_state", "set_correction_state", "dataset_row")


# ---- the search -----------------------------------------------------------------------------
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


# ---- where the next state comes from --------------------------------------------------------
class SimStep:
    """The task's simulator as ``step``: put it at each state, execute the action, read the state."""

    def __init__(self, task):
        self.task, self.env = task, task.make_env()
        self.env.reset(seed=0)
        self.calls = 0

    def __call__(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        out = np.empty_like(states)
        for i, (s, a) in enumerate(zip(states, actions)):
            self.task.set_correction_state(self.env, s)
            self.env.step(a.astype(np.float32))
            out[i] = self.task.correction_state(self.env)
        self.calls += len(states)
        return out

    def close(self) -> None:
        self.env.close()


class ModelStep:
    """A learned dynamics model as ``step`` (batched)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        self.calls += len(states)
        return self.model.predict(states, actions)

    def close(self) -> None:
        pass


# ---- the command ----------------------------------------------------------------------------
def check_options(task, dynamics: str, n_samples: int, noise: float, threshold: float, trust: float | None) -> None:
    name = task.spec.name
    if dynamics not in ("true", "learned"):
        raise ConfigError(f"--dynamics: expected true | learned, found {dynamics!r}")
    missing = [m for m in NEEDS if not hasattr(task, m)]
    if missing:
        raise ConfigError(
            f"task {name}: corrective labels need a task that can be put into a given state and read back "
            f"({', '.join(NEEDS)}); {name} has no {missing[0]} (tasks that can: pusht, pusht_keypoints, catch, "
            "cartpole)"
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"--samples: expected an integer >= 1, found {n_samples!r}")
    if not 0 < noise <= 3:
        raise ConfigError(f"--noise: expected a perturbation in (0, 3] demonstration stds, found {noise}")
    if not 0 < threshold <= 10:
        raise ConfigError(f"--threshold: expected an error bound in (0, 10] stds, found {threshold}")
    if trust is not None and not 0 < trust <= 10:
        raise ConfigError(f"--trust: expected a model error bound in (0, 10] stds, found {trust}")


def correct(
    task,
    data: str | Path,
    out: str | Path,
    *,
    dynamics: str = "true",
    n_samples: int = 1000,
    noise: float = 0.3,
    threshold: float = 0.1,
    trust: float | None = None,
    horizon: int = 16,
    obs_horizon: int = 2,
    dims: list[int] | None = None,
    seed: int = 0,
    fit_steps: int = 3000,
    lipschitz: float = 2.0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out``: the demonstrations of ``data`` plus the kept corrective episodes (see the
    module docstring); returns what was generated, kept and how good the labels are."""
    from robolearn.dynamics import cross_fit, fit_dynamics

    check_options(task, dynamics, n_samples, noise, threshold, trust)
    data, out = Path(data), Path(out)
    src = ReplayBuffer.open(data)
    probe = task.make_env()
    try:
        probe.reset(seed=0)
        row_keys = list(task.dataset_row(probe))
    finally:
        probe.close()
    need = sorted({*row_keys, "action"} - set(src.keys))
    if need:
        raise DataError(
            f"{data}: key 'data/{need[0]}' expected by corrective labels for task {task.spec.name} "
            f"(it needs {sorted({*row_keys, 'action'})}), found keys {src.keys}"
        )
    arrays = src.load([*row_keys, "action"])
    ends = np.asarray(src.episode_ends)
    states, actions = task.correction_states(arrays), np.asarray(arrays["action"], np.float64)
    bad = [d for d in (dims or []) if not 0 <= d < states.shape[1]]
    if bad:
        raise ConfigError(f"--perturb-dims: expected dims in 0..{states.shape[1] - 1} of the task's state, found {bad}")
    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {"dynamics": dynamics}
    heldout = None
    if dynamics == "true":
        step: SimStep | ModelStep = SimStep(task)
    else:
        ep = np.repeat(np.arange(len(ends)), np.diff(np.concatenate([[0], ends])))
        has_next = np.concatenate([ep[1:] == ep[:-1], [False]])
        t = np.flatnonzero(has_next)
        kw = dict(steps=fit_steps, lipschitz=lipschitz, seed=seed)
        model = fit_dynamics(states[t], actions[t], states[t + 1], **kw)
        halves, fold = cross_fit(states[t], actions[t], states[t + 1], ep[t], **kw)
        pred = np.empty_like(states[t])
        for k in (0, 1):
            m = fold == k
            pred[m] = halves[k].predict(states[t][m], actions[t][m])
        scale = states.std(0) + 1e-6
        err = np.sqrt(np.mean(np.square((pred - states[t + 1]) / scale), axis=-1))
        heldout = np.full(len(states), np.inf)
        heldout[t] = err
        trust = float(np.quantile(err, 0.5)) if trust is None else trust
        info.update(heldout_error_median=float(np.median(err)), heldout_error_p90=float(np.quantile(err, 0.9)))
        info["trust"] = trust
        step = ModelStep(model)
    try:
        samples = corrective_samples(
            states,
            actions,
            ends,
            step,
            n_samples=n_samples,
            noise=noise,
            horizon=horizon,
            obs_horizon=obs_horizon,
            bounds=(task.spec.action_low, task.spec.action_high),
            rng=rng,
            dims=task.correction_dims if dims is None else dims,
            progress=progress,
        )
    finally:
        step.close()
    kept = keep_labels(samples, threshold, heldout, trust)
    if dynamics == "learned":  # the model's labels, executed in the simulator: does trusting it pay?
        ids = {id(smp) for smp in kept}
        sim = SimStep(task)
        try:
            true_err = audit(sim, samples, states)
        finally:
            sim.close()
        is_kept = np.array([id(smp) in ids for smp in samples])
        for name, m in (("kept", is_kept), ("rejected", ~is_kept)):
            if m.any():
                info[f"sim_error_median_{name}"] = float(np.median(true_err[m]))
                info[f"sim_within_threshold_{name}"] = float(np.mean(true_err[m] < threshold))
    summary = write_dataset(task, src, arrays, row_keys, kept, out, horizon, overwrite)
    errs = np.concatenate([s["error"] for s in samples])
    info.update(
        perturbed_dims=list(task.correction_dims if dims is None else dims),
        generated=len(samples),
        kept=len(kept),
        kept_fraction=len(kept) / len(samples),
        label_error_median=float(np.median(errs)),
        dynamics_calls=step.calls,
        noise=noise,
        threshold=threshold,
        source=str(data),
        task=task.spec.name,
    )
    ReplayBuffer.open(out, mode="a").attrs.update({"corrective": info})
    return {**info, **summary}


def write_dataset(task, src, arrays, row_keys, kept, out: Path, horizon: int, overwrite: bool) -> dict[str, Any]:
    """Demonstrations (with their own chunks) then one episode per kept sample, into ``out``."""
    ends = np.asarray(src.episode_ends)
    acts = np.asarray(arrays["action"])
    chunks, masks = demo_chunks(acts, ends, horizon)
    buf = ReplayBuffer.create(out, overwrite=overwrite)
    starts = np.concatenate([[0], ends[:-1]])
    for s, e in zip(starts, ends):
        ep = {k: np.asarray(arrays[k][s:e]) for k in row_keys}
        n = e - s
        ep.update(
            action=acts[s:e],
            **{CHUNK_KEY: chunks[s:e], CHUNK_MASK_KEY: masks[s:e]},
            corrective=np.zeros(n, np.uint8),
            label_error=np.zeros(n, np.float32),
        )
        buf.add_episode(ep)
    env = task.make_env()
    try:
        env.reset(seed=0)
        for smp in kept:
            rows = []
            for st in smp["state"]:
                task.set_correction_state(env, st)
                rows.append(task.dataset_row(env))
            ep = {k: np.stack([r[k] for r in rows]).astype(arrays[k].dtype) for k in row_keys}
            ep.update(
                action=smp["action"].astype(acts.dtype),
                **{CHUNK_KEY: smp["chunk"].astype(acts.dtype), CHUNK_MASK_KEY: smp["chunk_mask"]},
                corrective=np.ones(len(rows), np.uint8),
                label_error=smp["error"].astype(np.float32),
            )
            buf.add_episode(ep)
    finally:
        env.close()
    # provenance: the demonstration each corrective episode was generated around. Training splits
    # train/val over the demonstrations only, and a corrective episode follows its demonstration
    # (robolearn.train.data), so the validation demos are those of plain BC with the same seed.
    ep_of = np.searchsorted(ends, [int(smp["t"][-1]) for smp in kept], side="right")
    buf.attrs["derived"] = {"demo_episodes": len(ends), "source_episode": [int(e) for e in ep_of]}
    return {"path": str(out), "demo_episodes": len(ends), "corrective_episodes": len(kept), "steps": buf.n_steps}
