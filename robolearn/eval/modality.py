"""Can a task show real-time chunking's effect? A diagnostic run before a delay sweep.

RTC's advantage over naive asynchronous execution comes from policies that are multimodal in
time: two chunks sampled at the same observation can commit to different strategies, and a naive
switch between them jumps from one mode to another. Two numbers say whether that happens:

- the share of demonstration states at which a policy's sampled chunks are bimodal: Sarle's
  bimodality coefficient of the samples projected on their first principal component, above 5/9
  (0.555, the value of a uniform distribution; a Gaussian has 1/3);
- the gap between two chunks sampled at the same observation, to set beside naive async's mean
  chunk-switch jump (``smoothness.boundary_jump``): a switch jump no larger than the sampling gap
  says the switches are not what decides success.
"""

from __future__ import annotations

import numpy as np

BIMODAL = 5.0 / 9.0


def bimodality_coefficient(samples: np.ndarray) -> float:
    """Sarle's coefficient (skew^2 + 1) / (excess kurtosis + 3 (n-1)^2 / ((n-2)(n-3))) of ``samples``
    (n, ...) projected on their first principal component; n >= 4. Unimodal normal: about 1/3;
    uniform: 5/9; two separated modes: toward 1."""
    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    n = len(x)
    if n < 4:
        raise ValueError(f"bimodality_coefficient: expected at least 4 samples, found {n}")
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[0]
    sd = z.std()
    if sd == 0:
        return 0.0
    z = z / sd
    g = (z**3).mean() * np.sqrt(n * (n - 1)) / (n - 2)  # sample skewness, bias-corrected
    k = (z**4).mean() - 3.0
    kc = ((n + 1) * k + 6) * (n - 1) / ((n - 2) * (n - 3))  # sample excess kurtosis, bias-corrected
    return float((g * g + 1) / (kc + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def chunk_modality(policy, obs: dict[str, np.ndarray], n_samples: int = 32, seed: int = 0) -> dict[str, float]:
    """Sample ``n_samples`` chunks at each of the observations ``obs`` (dict of (S, To, ...)) and
    return the share of states whose samples are bimodal, the mean coefficient, and the mean gap
    between two samples at the same observation (Euclidean, over the whole chunk, raw units)."""
    import torch

    s = len(next(iter(obs.values())))
    g = torch.Generator(device=policy.device).manual_seed(seed)
    coeffs, gaps = [], []
    for i in range(s):
        rep = {k: np.repeat(v[i : i + 1], n_samples, axis=0) for k, v in obs.items()}
        chunks = policy.predict_chunk(rep, generator=g)  # (n, H, A)
        coeffs.append(bimodality_coefficient(chunks))
        flat = chunks.reshape(n_samples, -1)
        gaps.append(float(np.linalg.norm(flat[0::2][: n_samples // 2] - flat[1::2][: n_samples // 2], axis=1).mean()))
    c = np.asarray(coeffs)
    return {
        "states": int(s),
        "samples_per_state": int(n_samples),
        "bimodal_share": float((c > BIMODAL).mean()),
        "mean_coefficient": float(c.mean()),
        "sample_gap": float(np.mean(gaps)),
    }


def demonstration_modality(
    policy, data: str, obs_keys: list[str], action_key: str = "action", n_states: int = 64, n_samples: int = 32,
    seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """``chunk_modality`` at ``n_states`` demonstration states drawn (seeded, without replacement)
    from the dataset ``data``, each with the policy's own observation window."""
    from robolearn.data.dataset import load_dataset, parse_obs_key
    from robolearn.data.sampler import WindowSampler

    buffer, arrays = load_dataset(data, obs_keys, action_key)
    names = [parse_obs_key(k)[0] for k in obs_keys]
    sampler = WindowSampler(arrays, buffer.episode_ends, names, action_key, policy.obs_horizon, policy.horizon)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(sampler), size=min(n_states, len(sampler)), replace=False))
    return chunk_modality(policy, sampler.sample(idx)["obs"], n_samples=n_samples, seed=seed)


def catch_routes(
    task, act_fn_factory, n_episodes: int, n_envs: int = 10, seed_start: int = 100_000, obs_horizon: int = 1,
    action_noise: float = 0.0, noise_seed: int = 0, venv=None,
) -> list[dict]:  # fmt: skip
    """The episode records of ``n_episodes`` catch episodes driven by ``act_fn_factory`` (as
    ``rollout`` takes it: an executor around a policy, or an expert adapter), in seed order, each
    with its ``route`` (``left`` / ``right`` / ``direct``, ``envs.dynamic.classify_route``): how
    much of the two-route demonstrations' distribution a policy covers, and whether the episodes it
    covers succeed. The same waves, seeds and noise draws as ``rollout`` (and so as an evaluation
    with the same ``n_envs``, ``seed_start`` and ``noise_seed``); one ``rollout`` call per wave, so
    every env slot holds one episode while its offsets are read."""
    from robolearn.envs.dynamic import approach_offset, classify_route
    from robolearn.eval.rollout import make_env_batch, rollout

    owned = venv is None
    venv = make_env_batch(task, n_envs) if owned else venv  # one set of envs for every wave
    records: list[dict] = []
    try:
        for wave in range(-(-n_episodes // n_envs)):
            offsets: list[list[float | None]] = [[] for _ in range(n_envs)]

            def on_step(batch, obs, actions, alive, offsets=offsets):
                for i in np.flatnonzero(alive):
                    offsets[i].append(approach_offset(task, batch.envs[i]))

            recs = rollout(act_fn_factory, task, n_episodes, n_envs, seed_start, obs_horizon, progress=False,
                           on_step=on_step, waves=[wave], action_noise=action_noise, noise_seed=noise_seed,
                           venv=venv)  # fmt: skip
            records += [{**r, "route": classify_route(o)} for r, o in zip(recs, offsets)]
    finally:
        if owned:
            venv.close()
    return records
