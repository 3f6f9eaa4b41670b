"""From a zarr path to the arrays a sampler needs, a train/val split, and a human summary.

Observation entries are dataset keys, or derived keys: ``"name=src[a:b]"`` (a slice of the
source's last dim), so e.g. Push-T image training takes ``agent_pos=state[0:2]`` without
rewriting the dataset, and ``"name=cos_sin(src, i)"`` (column i, an angle, replaced by its
cosine and sine: one column more, continuous where the angle wraps). Each source key is read
once, however many entries use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.data.replay_buffer import ReplayBuffer, ZarrRows
from robolearn.errors import ConfigError, DataError

_ENTRY = re.compile(r"^\s*(?:(?P<name>[\w\-]+)\s*=\s*)?(?P<src>[\w\-]+)\s*(?:\[(?P<sl>[^\]]*)\])?\s*$")


_COS_SIN = re.compile(r"^\s*(?P<name>[\w\-]+)\s*=\s*cos_sin\(\s*(?P<src>[\w\-]+)\s*,\s*(?P<col>-?\d+)\s*\)\s*$")


class CosSin:
    """Replace column ``col`` of the last dim (an angle in radians) by (cos, sin)."""

    def __init__(self, col: int):
        self.col = col

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        c = self.col % x.shape[-1]
        a = x[..., c : c + 1].astype(np.float64)
        return np.concatenate([x[..., :c], np.cos(a).astype(x.dtype), np.sin(a).astype(x.dtype), x[..., c + 1 :]], -1)

    def __eq__(self, other) -> bool:
        return isinstance(other, CosSin) and other.col == self.col


def parse_obs_key(entry: str) -> tuple[str, str, slice | CosSin | None]:
    """``"agent_pos=state[0:2]"`` -> ("agent_pos", "state", slice(0, 2)); ``"img"`` -> ("img", "img", None);
    ``"state=cos_sin(state, 4)"`` -> ("state", "state", CosSin(4))."""
    m = _COS_SIN.match(entry)
    if m:
        return m["name"], m["src"], CosSin(int(m["col"]))
    m = _ENTRY.match(entry)
    if not m:
        raise ConfigError(
            f"obs_keys entry {entry!r}: expected 'key', 'name=key[a:b]' or 'name=cos_sin(key, i)', found something else"
        )
    src, text = m["src"], m["sl"]
    name = m["name"] or src
    if text is None:
        return name, src, None
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
    except ValueError:
        raise ConfigError(f"obs_keys entry {entry!r}: expected integer slice bounds, found [{text}]") from None
    if len(parts) == 1 and parts[0] is not None:  # "x=state[3]" keeps the last dim: slice 3:4
        i = parts[0]
        return name, src, slice(i, i + 1 if i != -1 else None)
    if len(parts) not in (2, 3):
        raise ConfigError(f"obs_keys entry {entry!r}: expected a slice like [a:b], found [{text}]")
    return name, src, slice(*parts)


def resolve_obs_keys(buffer: ReplayBuffer, specs: Sequence[str], in_memory: bool = True) -> dict[str, Any]:
    """Arrays keyed by observation name (derived keys sliced from their source)."""
    parsed = [parse_obs_key(s) for s in specs]
    names = [n for n, _, _ in parsed]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"obs_keys {list(specs)}: expected unique names, found {sorted(dup)} more than once")
    sources = list(dict.fromkeys(src for _, src, _ in parsed))
    loaded = buffer.load(sources) if in_memory else {}
    out: dict[str, Any] = {}
    for spec, (name, src, sl) in zip(specs, parsed):
        arr = buffer[src] if not in_memory else loaded[src]  # buffer[src] also raises on a missing key
        if isinstance(sl, CosSin):
            if arr.ndim < 2 or not -arr.shape[-1] <= sl.col < arr.shape[-1]:
                raise ConfigError(
                    f"obs_keys entry {spec!r}: expected column {sl.col} to exist in '{src}' "
                    f"(shape {tuple(arr.shape)}), found no such column"
                )
            if not in_memory:
                raise ConfigError(f"obs_keys entry {spec!r}: cos_sin entries need the dataset in memory")
            out[name] = sl(arr)
            continue
        if sl is not None:
            width = len(range(*sl.indices(arr.shape[-1]))) if arr.ndim > 1 else 0
            if width == 0:
                raise ConfigError(
                    f"obs_keys entry {spec!r}: expected >= 1 column of '{src}' (shape {tuple(arr.shape)}), found 0"
                )
        if in_memory:
            out[name] = arr if sl is None else np.ascontiguousarray(arr[..., sl])
        else:
            out[name] = ZarrRows(arr, buffer.n_steps, f"{buffer.path}: key 'data/{src}'", buffer.is_image(src), sl)
    return out


def load_dataset(
    path: str | Path, obs_keys: Sequence[str], action_key: str = "action", in_memory: bool = True
) -> tuple[ReplayBuffer, dict[str, Any]]:
    """Open ``path`` and read exactly the keys training needs (not every key in the store)."""
    buffer = ReplayBuffer.open(path)
    arrays = resolve_obs_keys(buffer, list(obs_keys) + [action_key], in_memory=in_memory)
    return buffer, arrays


def train_val_split(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split by episode, never by step: windows of one episode are near-duplicates, so a
    step-level split would leak the training set into validation."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction: expected in [0, 1), found {val_fraction}")
    if n_episodes < 1:
        raise DataError(f"train_val_split: expected >= 1 episode, found {n_episodes}")
    n_val = int(round(n_episodes * val_fraction))
    n_val = min(max(n_val, 1 if val_fraction > 0 else 0), n_episodes - 1)
    perm = np.random.default_rng(seed).permutation(n_episodes)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _fmt(v: np.ndarray, limit: int = 6) -> str:
    v = np.asarray(v).reshape(-1)
    s = " ".join(f"{x:.4g}" for x in v[:limit])
    return f"[{s}{f' ... (+{v.size - limit})' if v.size > limit else ''}]"


def describe(path: str | Path, image_frames: int = 256) -> str:
    """What ``robolearn inspect`` prints: layout, episode lengths and per-key statistics.
    Reads raw values (NaN is counted, not raised); images use ``image_frames`` evenly spaced
    frames and report per-channel statistics."""
    buf = ReplayBuffer.open(path)
    n, lens = buf.n_steps, buf.episode_lengths
    lines = [
        f"{buf.path}  (zarr format {buf.zarr_format})",
        f"episodes: {buf.n_episodes}  steps: {n}  length min/mean/max: {lens.min()} / {lens.mean():.1f} / {lens.max()}",
    ]
    attrs = dict(buf.attrs)
    if attrs:
        lines.append(f"attrs: {attrs}")
    width = max(len(k) for k in buf.keys)
    lines.append(f"{'key':<{width}}  {'shape':<20} {'dtype':<8} chunks")
    for k in buf.keys:
        a = buf[k]
        extra = "  (image)" if buf.is_image(k) else ""
        extra += f"  (+{a.shape[0] - n} rows past the last episode, ignored)" if a.shape[0] > n else ""
        lines.append(f"{k:<{width}}  {str((n,) + tuple(a.shape[1:])):<20} {str(a.dtype):<8} {a.chunks}{extra}")
    lines.append("statistics (per dim; images per channel):")
    for k in buf.keys:
        a = buf[k]
        buf._check_chunks(k)  # a deleted chunk reads as fill values: never report those as data
        if buf.is_image(k):
            rows = np.unique(np.linspace(0, n - 1, min(n, image_frames)).astype(np.int64))
            try:
                x = a.get_orthogonal_selection((rows,))
            except Exception:  # name the undecodable chunk (one line), not the codec's traceback
                x = np.concatenate([buf._read_rows(a, k, int(r), int(r) + 1) for r in rows])
            x = np.asarray(x, dtype=np.float64).reshape(-1, a.shape[-1])
            note = f" over {len(rows)} frames"
        else:
            x = np.asarray(buf._read_rows(a, k, 0, n), dtype=np.float64).reshape(n, -1)
            note = ""
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        x = np.where(np.isfinite(x), x, np.nan)
        stats = " ".join(
            f"{name} {_fmt(f(x, axis=0))}"
            for name, f in (("min", np.nanmin), ("max", np.nanmax), ("mean", np.nanmean), ("std", np.nanstd))
        )
        lines.append(f"{k:<{width}}  {stats}{note}" + (f"  NON-FINITE rows: {bad}" if bad else ""))
    return "\n".join(lines)
