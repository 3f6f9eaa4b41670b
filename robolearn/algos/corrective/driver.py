"""`robolearn correct`: options checked up front, demonstrations loaded, labels searched, kept
and audited, and the corrective dataset written beside the demonstrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robolearn.algos.acting import CHUNK_KEY, CHUNK_MASK_KEY
from robolearn.algos.corrective.search import corrective_samples, demo_chunks
from robolearn.algos.corrective.steps import ModelStep, SimStep
from robolearn.algos.corrective.trust import audit, keep_labels
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError, DataError

NEEDS = ("correction_states", "correction_state", "set_correction_state", "dataset_row")


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
