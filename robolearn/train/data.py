"""What training reads: a dataset checked against its task, split into episodes, normalized and
windowed (``DataBundle``); the task a config names (``make_task_from``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robolearn.data.dataset import load_dataset, train_val_split
from robolearn.data.normalizer import Normalizer
from robolearn.data.sampler import WindowSampler
from robolearn.errors import ConfigError, DataError
from robolearn.policy import obs_name, spec_from_array


def task_obs_entries(cfg) -> list[str]:
    """The dataset entries of a task's observations: ``task.obs_keys``, or the task's own
    ``spec.data_keys`` when the config leaves them to it (e.g. Push-T's angle encoding)."""
    if cfg.task.get("obs_keys"):
        return list(cfg.task.obs_keys)
    return list(make_task_from(cfg).spec.data_keys)


def make_task_from(cfg):
    from robolearn.envs import make_task

    return make_task(str(cfg.task.name), **dict(cfg.task.get("kwargs") or {}))


def _check_data_path(cfg, data_path) -> None:
    """A missing dataset says where the path came from and how to set it."""
    if data_path is None or str(data_path) in ("", "None"):
        raise ConfigError(f"data: expected the path of a zarr dataset for task {cfg.task.name} (data=PATH), found none")
    if Path(data_path).exists():
        return
    import re

    from omegaconf import OmegaConf

    raw = str(OmegaConf.to_container(cfg.task, resolve=False).get("data"))
    var = re.search(r"oc\.env:(\w+)", raw)
    hint = f"set {var.group(1)}=PATH or pass data=PATH" if var and not cfg.get("data") else "pass data=PATH"
    raise DataError(
        f"{data_path}: no dataset at this path (task {cfg.task.name}; {hint}; working directory {Path.cwd()})"
    )


MAX_ABS = 1e6  # larger finite values in float32 training are a units or scaling mistake, not data


def check_against_task(cfg, data: DataBundle) -> None:
    """Every observation and the action of the dataset against the task's spec, before training:
    keys the task observes, rank and width, images of the task's size, and values plausible for
    float32 training. One line naming the key, expected and found."""
    task = make_task_from(cfg)
    spec, where = task.spec, f"{cfg.data or cfg.task.data}"
    for k, s in data.obs_spec.items():
        if k not in spec.obs:
            raise DataError(
                f"{where}: key {k!r}: the task {spec.name} observes {sorted(spec.obs)}, found a key it does not "
                "provide (a policy trained on it could not be evaluated); fix task.obs_keys"
            )
        want = spec.obs[k]
        if want.kind != s.kind or tuple(want.shape) != tuple(s.shape):
            what = "an image" if want.kind == "rgb" else "a low-dim vector"
            raise DataError(
                f"{where}: key {k!r}: expected {what} of shape {tuple(want.shape)} (task {spec.name}), "
                f"found {'an image' if s.kind == 'rgb' else 'low-dim'} of shape {tuple(s.shape)}"
            )
    if data.action_dim != spec.action_dim or data.action_rank != 2:
        raise DataError(
            f"{where}: key {data.action_key!r}: expected actions of shape (N, {spec.action_dim}) (task {spec.name}), "
            f"found (N, {', '.join(map(str, data.action_shape))})"
        )
    acts = np.asarray(data.arrays[data.action_key], dtype=np.float64).reshape(len(data.arrays[data.action_key]), -1)
    lo, hi = np.asarray(spec.action_low, np.float64), np.asarray(spec.action_high, np.float64)
    slack = 0.5 * (hi - lo)  # demonstrations may overshoot a little; far outside is another unit or task
    out = ((acts < lo - slack) | (acts > hi + slack)).any(axis=1)
    if out.any():
        row = int(np.argmax(out))
        raise DataError(
            f"{where}: key 'data/{data.action_key}': expected actions within the task's range "
            f"[{lo.min():g}, {hi.max():g}] (task {spec.name}), found {acts[row].round(3).tolist()} at row {row}"
        )
    for k in [*data.lowdim_keys, data.action_key]:
        x = data.arrays[k]
        big = np.abs(np.asarray(x, dtype=np.float64)).reshape(len(x), -1).max(axis=1) > MAX_ABS
        if big.any():
            row = int(np.argmax(big))
            raise DataError(
                f"{where}: key 'data/{k}': expected magnitudes below {MAX_ABS:g} for float32 training, found "
                f"{float(np.abs(np.asarray(x[row], dtype=np.float64)).max()):.3g} at row {row}"
            )


def split_episodes(buffer, n_episodes: int, algo, seed: int, data_path) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation episodes: a stored split (``algo.val_mask``, robomimic's
    ``mask/<filter>``) or a seeded random one over ``algo.val_fraction``. A dataset of demonstrations
    followed by episodes derived from them (``attrs['derived']``, written by ``robolearn correct``)
    is split over its demonstrations only, exactly as the demonstrations alone would be, and each
    derived episode follows its source demonstration into training or out of the data (validation
    stays demonstrations only, comparable with plain BC)."""
    derived = dict(buffer.attrs.get("derived") or {})
    n_demo = int(derived.get("demo_episodes", n_episodes))
    n_eps = min(n_demo, int(algo.max_episodes)) if algo.max_episodes else n_demo
    val_mask = algo.val_mask
    if val_mask:
        masks = dict(buffer.attrs.get("masks") or {})
        if val_mask not in masks:
            raise ConfigError(
                f"algo.val_mask={val_mask}: expected one of the dataset's masks {sorted(masks)}, "
                f"found no such mask in {data_path}"
            )
        val_eps = np.array(sorted(e for e in masks[val_mask] if e < n_eps), dtype=np.int64)
        train_eps = np.setdiff1d(np.arange(n_eps), val_eps)
        if not len(train_eps):
            raise ConfigError(f"algo.val_mask={val_mask}: expected episodes left for training, found none")
    else:
        train_eps, val_eps = train_val_split(n_eps, float(algo.val_fraction), seed=seed)
    if derived:
        src = np.asarray(derived.get("source_episode", []), dtype=np.int64)
        if n_demo + len(src) != n_episodes:
            raise DataError(
                f"{data_path}: attrs 'derived' expected {n_episodes - n_demo} source episodes "
                f"({n_episodes} episodes, {n_demo} demonstrations), found {len(src)}"
            )
        train_eps = np.concatenate([train_eps, n_demo + np.flatnonzero(np.isin(src, train_eps))])
    return train_eps, val_eps


class DataBundle:
    """What training needs from a dataset: windows for train/val, specs and a fitted normalizer."""

    def __init__(self, cfg, data_path: str | Path):
        pol, algo = cfg.policy, cfg.algo
        obs_entries = task_obs_entries(cfg)
        self.obs_keys = [obs_name(e) for e in obs_entries]
        self.action_key = cfg.task.get("action_key", "action")
        _check_data_path(cfg, data_path)
        self.aux_key = pol.get("aux_key") or None
        self.buffer, arrays = load_dataset(data_path, obs_entries, action_key=self.action_key)
        aux_entries = [self.aux_key] if self.aux_key and self.aux_key not in self.obs_keys else []
        self.aux_dim = _load_aux(self.buffer, arrays, self.aux_key, data_path) if self.aux_key else None
        ends = np.asarray(self.buffer.episode_ends)
        train_eps, val_eps = split_episodes(self.buffer, len(ends), algo, int(cfg.seed), data_path)
        self.n_train_episodes = len(train_eps)
        self.obs_spec = {k: spec_from_array(arrays[k]) for k in self.obs_keys}
        self.arrays = arrays
        self.lowdim_keys = [k for k in self.obs_keys if self.obs_spec[k].kind == "lowdim"]
        self.action_shape = tuple(int(d) for d in arrays[self.action_key].shape[1:])
        self.action_rank = arrays[self.action_key].ndim
        self.action_dim = int(arrays[self.action_key].shape[-1]) if self.action_rank > 1 else 1
        starts = np.concatenate([[0], ends[:-1]])
        train_rows = np.concatenate([np.arange(starts[e], ends[e]) for e in train_eps])
        self.normalizer = Normalizer()
        fit_keys = [k for k in self.obs_keys if self.obs_spec[k].kind == "lowdim"] + [self.action_key]
        if self.aux_key and self.aux_key not in fit_keys:
            fit_keys.append(self.aux_key)
        self.normalizer.fit(
            {("action" if k == self.action_key else k): arrays[k][train_rows] for k in fit_keys},
            str(pol.normalizer),
        )
        kw = dict(
            obs_keys=self.obs_keys + aux_entries,  # the aux target rides in the window, then leaves obs
            action_key=self.action_key,
            obs_horizon=int(pol.obs_horizon),
            horizon=int(pol.horizon),
        )
        self.train = WindowSampler(arrays, ends, episodes=train_eps, **kw)
        self.val = WindowSampler(arrays, ends, episodes=val_eps, **kw) if len(val_eps) else None
        # stored chunk labels (DAgger's expert chunks, robolearn correct): the target of step t is
        # chunk[t, :H], all real, instead of the window over the per-step actions
        self.chunks, self.chunk_mask, self.horizon = None, None, int(pol.horizon)
        if algo.chunk_key:
            key = str(algo.chunk_key)
            if key not in self.buffer.keys:
                raise DataError(
                    f"{data_path}: key 'data/{key}' expected by algo.chunk_key, found keys {self.buffer.keys}"
                )
            self.chunks = self.buffer.load([key])[key]
            mkey = key + "_mask"  # which steps of each stored chunk are real (edge padding is not)
            self.chunk_mask = self.buffer.load([mkey])[mkey].astype(bool) if mkey in self.buffer.keys else None
            if self.chunks.ndim != 3 or self.chunks.shape[1] < self.horizon or self.chunks.shape[2] != self.action_dim:
                raise DataError(
                    f"{data_path}: key 'data/{key}' expected shape (T, >= {self.horizon}, {self.action_dim}), "
                    f"found {self.chunks.shape}"
                )
            if self.chunk_mask is not None and self.chunk_mask.shape != self.chunks.shape[:2]:
                raise DataError(
                    f"{data_path}: key 'data/{mkey}' expected shape {self.chunks.shape[:2]}, "
                    f"found {self.chunk_mask.shape}"
                )

    def batch(self, sampler: WindowSampler, size: int, rng: np.random.Generator) -> dict[str, Any]:
        if self.chunks is None:
            return self._with_aux(sampler.random_batch(size, rng))
        idx = rng.integers(0, len(sampler), size=size)
        b = self._with_aux(sampler.sample(idx))
        b["action"] = self.chunks[sampler.t[idx], : self.horizon]
        if self.chunk_mask is None:
            b["action_mask"] = np.ones(b["action"].shape[:2], dtype=bool)
        else:
            b["action_mask"] = self.chunk_mask[sampler.t[idx], : self.horizon]
        return b

    def _with_aux(self, b: dict[str, Any]) -> dict[str, Any]:
        """The auxiliary target of every observed frame (B, To, *shape) as ``b["aux"]``; an
        observation key that is also the target stays an observation."""
        if self.aux_key:
            b["aux"] = b["obs"][self.aux_key] if self.aux_key in self.obs_keys else b["obs"].pop(self.aux_key)
        return b


def _load_aux(buffer, arrays: dict[str, Any], key: str, data_path) -> int:
    """The auxiliary target ``policy.aux_key`` into ``arrays`` (once, beside the observations):
    a numeric per-step key, not an image. Returns its width, flattened."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"policy.aux_key: expected the name of a low-dim key of the dataset, found {key!r}")
    if key not in arrays:
        if key not in buffer.keys:
            raise DataError(
                f"{data_path}: key 'data/{key}' expected by policy.aux_key, found only keys {sorted(buffer.keys)}"
            )
        arrays[key] = buffer.load([key])[key]
    x = arrays[key]
    shape = tuple(int(d) for d in x.shape[1:])
    if x.dtype == np.uint8 or not np.issubdtype(x.dtype, np.number) or len(shape) > 2:
        raise DataError(
            f"{data_path}: key 'data/{key}' (policy.aux_key): expected a low-dim numeric target per step "
            f"(a vector or a small matrix), found {x.dtype} of shape {shape}"
        )
    return int(np.prod(shape)) if shape else 1
