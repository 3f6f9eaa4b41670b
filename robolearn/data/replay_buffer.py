"""Demonstrations on disk: the Diffusion Policy ReplayBuffer layout, read and written with zarr 3.

``data/<key>`` arrays hold all episodes concatenated along time; ``meta/episode_ends`` (int64,
cumulative) says where each episode stops. ``episode_ends`` is the single source of truth:
rows past ``episode_ends[-1]`` are leftovers of an interrupted append and are never read.
That is what makes appends crash-safe: data is written first and the episode becomes
visible only when ``episode_ends`` grows (every zarr file write is an atomic rename).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from robolearn.errors import DataError
from robolearn.locks import WriteLock

# Every chunk is written, also one that equals the fill value: then a chunk file that is missing
# is damage (a deleted or lost file), never "all zeros", and reading it is an error, not zeros.
zarr.config.set({"array.write_empty_chunks": True})

ENDS = "meta/episode_ends"
ENDS_FILL = -1  # our stores: an ends element that was allocated but never written reads as -1
CHUNK_BYTES = 1 << 20  # ~1 MiB chunks along time: small appends stay cheap, reads stay few
READ_BYTES = 64 << 20  # block size when copying a key into memory (bounds the float image peak)


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def is_image(key: str, shape: tuple[int, ...], rgb_keys: Iterable[str] = ()) -> bool:
    """Images are declared, or (T, H, W, 3); they live in memory as uint8 and skip the normalizer."""
    return key in set(rgb_keys) or (len(shape) == 4 and shape[-1] == 3)


def check_finite(x: np.ndarray, where: str, row0: int = 0, rows: np.ndarray | None = None) -> None:
    """NaN/inf anywhere makes min or max non-finite: two reductions instead of an isfinite mask.
    ``rows`` maps positions in ``x`` to dataset rows when ``x`` is a gather, not a slice."""
    if x.size == 0 or not np.issubdtype(x.dtype, np.floating):
        return
    if np.isfinite(x.min()) and np.isfinite(x.max()):
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    i = int(np.argmax(bad))
    row = int(rows[i]) if rows is not None else row0 + i
    raise DataError(f"{where}: expected finite values, found NaN/inf (first at row {row})")


def to_uint8_image(x: np.ndarray, where: str, row0: int = 0) -> np.ndarray:
    """Float images stored as 0..255 (Push-T ``img``) become uint8: 4x less memory, same pixels."""
    if x.dtype == np.uint8 or not np.issubdtype(x.dtype, np.floating):
        return x
    check_finite(x, where, row0)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise DataError(f"{where}: image expected values in [0, 255], found [{lo:g}, {hi:g}]")
    return np.rint(x).astype(np.uint8)


class ZarrRows:
    """Rows of one on-disk key, read only when indexed (``in_memory=False`` datasets).

    Behaves like the in-memory array for what the sampler and trainer need: ``shape``,
    ``dtype``, ``len`` and integer-array / slice indexing along time. Reads each distinct
    row once, applies an optional last-dim slice (derived keys) and the uint8 image cast."""

    def __init__(self, arr: zarr.Array, n_steps: int, where: str, image: bool, last: slice | None = None):
        self.arr, self.n, self.where, self.image, self.last = arr, n_steps, where, image, last
        tail = tuple(arr.shape[1:])
        if last is not None:
            tail = tail[:-1] + (len(range(*last.indices(tail[-1]))),)
        self.shape = (n_steps,) + tail
        self.dtype = np.dtype(np.uint8) if image and np.issubdtype(arr.dtype, np.floating) else np.dtype(arr.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(self.n))
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        flat = np.where(idx < 0, idx + self.n, idx).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.n):
            raise IndexError(f"{self.where}: row index out of range [0, {self.n})")
        rows, inv = np.unique(flat, return_inverse=True)
        x = (
            self.arr.get_orthogonal_selection((rows,))
            if rows.size
            else np.empty((0,) + self.arr.shape[1:], self.arr.dtype)
        )
        if self.last is not None:
            x = x[..., self.last]
        check_finite(x, self.where, rows=rows)
        x = to_uint8_image(x, self.where) if self.image else x
        return x[inv].reshape(idx.shape + x.shape[1:])


def _holds_only_metadata(path: Path) -> bool:
    """True for a folder of zarr metadata files and nothing else: no chunk, no one's data."""
    meta = {"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"}
    files = [f for f in path.rglob("*") if f.is_file()]
    return bool(files) and all(f.name in meta for f in files)


class ReplayBuffer:
    """A zarr demonstration store. Use ``open`` for existing data, ``create`` for new data."""

    def __init__(self, root: zarr.Group, path: Path, mode: str, rgb_keys: Sequence[str] = ()):
        self.root, self.path, self.mode = root, path, mode
        self.rgb_keys = tuple(rgb_keys)
        self._mem: dict[str, np.ndarray] | None = None
        self._lock: WriteLock | None = None
        self._validate()

    def close(self) -> None:
        """Release the write lock (also released when the process ends, however it ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- opening / creating -------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path, mode: str = "r", in_memory: bool = False, rgb_keys: Sequence[str] = ()
    ) -> ReplayBuffer:
        """Open a zarr v2 or v3 store as it is. ``mode="a"`` allows appending episodes."""
        path = Path(path)
        if mode not in ("r", "a"):
            raise DataError(f"{path}: open mode expected 'r' or 'a', found {mode!r}")
        if not path.exists():
            raise DataError(f"{path}: no such dataset (expected a zarr store directory, found nothing at this path)")
        try:
            root = zarr.open_group(str(path), mode="r" if mode == "r" else "r+")
        except Exception as e:  # zarr raises many types for "not a group"; the user needs one line
            raise DataError(f"{path}: expected a zarr group store, found something else ({_one_line(e)})") from None
        lock = WriteLock(path, "dataset").acquire() if mode == "a" else None
        try:
            buf = cls(root, path, mode, rgb_keys)
        except BaseException:  # a store that does not open keeps no lock behind
            if lock is not None:
                lock.release()
            raise
        buf._lock = lock
        if in_memory:
            buf._mem = buf.load(buf.keys)
        return buf

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> ReplayBuffer:
        """A new, empty zarr format 3 store. An existing path is only replaced when asked to,
        and only if it is a zarr store or an empty directory: never someone's other files."""
        path = Path(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise DataError(
                f"{path}: already exists; expected a new path (pass overwrite=True / --overwrite to replace it)"
            )
        lock = WriteLock(path, "dataset").acquire()  # before anything is replaced: never under another writer
        if path.exists() or path.is_symlink():
            is_store = path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zarray"))
            if path.is_dir() and not path.is_symlink() and (is_store or not any(path.iterdir())):
                shutil.rmtree(path)
            else:
                lock.release()
                raise DataError(
                    f"{path}: refusing to overwrite: expected a zarr store or empty directory, found other files"
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        # built beside the target and renamed into place: a kill while creating leaves no half-made
        # store at ``path`` (only a hidden folder that the next create, under the same lock, removes)
        for old in path.parent.glob(f".{path.name}.creating-*"):
            shutil.rmtree(old, ignore_errors=True)
        tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
        root = zarr.create_group(str(tmp), zarr_format=3)
        root.create_group("data")
        root.create_group("meta").create_array(
            "episode_ends", shape=(0,), chunks=(4096,), dtype="int64", fill_value=ENDS_FILL, compressors=None
        )
        os.rename(tmp, path)
        buf = cls(zarr.open_group(str(path), mode="r+"), path, "a")
        buf._lock = lock
        return buf

    @classmethod
    def open_or_create(cls, path: str | Path) -> ReplayBuffer:
        """Append to the store at ``path``, or create it. A store that an earlier version of this
        code began to create and was killed before it held anything (zarr metadata only, no data
        chunk) is created again; anything else that does not open is reported, never replaced."""
        path = Path(path)
        if not path.exists():
            return cls.create(path)
        try:
            return cls.open(path, mode="a")
        except DataError:
            if path.is_dir() and _holds_only_metadata(path):
                return cls.create(path, overwrite=True)
            raise

    def _validate(self) -> None:
        p, root = self.path, self.root
        data = root.get("data")
        if not isinstance(data, zarr.Group):
            raise DataError(
                f"{p}: key 'data' expected a zarr group of arrays, found "
                f"{type(data).__name__ if data is not None else 'nothing'}"
            )
        ends_arr = root.get(ENDS)
        if not isinstance(ends_arr, zarr.Array):
            raise DataError(f"{p}: key '{ENDS}' expected an int64 array of cumulative episode ends, found nothing")
        self._data, self._ends_arr = data, ends_arr
        if ends_arr.ndim != 1 or not np.issubdtype(ends_arr.dtype, np.integer):
            raise DataError(
                f"{p}: key '{ENDS}' expected a 1-D integer array, found shape {ends_arr.shape} dtype {ends_arr.dtype}"
            )
        try:
            ends = np.asarray(ends_arr[:], dtype=np.int64)
        except Exception as e:  # a truncated or garbage chunk of episode_ends: name it, not the codec
            raise DataError(
                f"{p}: key '{ENDS}' expected readable chunks of cumulative episode ends, found a corrupt chunk "
                f"({_one_line(e)[:100]}); the store is damaged"
            ) from None
        if ends_arr.fill_value == ENDS_FILL:  # ends grown but its chunk never written: that append never happened
            n = len(ends)
            while n and ends[n - 1] == ENDS_FILL:
                n -= 1
            ends = ends[:n]
        if (ends < 0).any():
            i = int(np.argmax(ends < 0))
            raise DataError(f"{p}: key '{ENDS}' expected non-negative ends, found {ends[i]} at episode {i}")
        if len(ends) and (ends[0] <= 0 or (np.diff(ends) <= 0).any()):
            i = 0 if ends[0] <= 0 else int(np.argmax(np.diff(ends) <= 0)) + 1
            prev = ends[i - 1] if i else 0
            raise DataError(
                f"{p}: key '{ENDS}' expected strictly increasing ends (every episode >= 1 step), "
                f"found {ends[i]} after {prev} at episode {i}"
            )
        if len(ends) == 0 and self.mode == "r":
            raise DataError(f"{p}: key '{ENDS}' expected at least 1 episode, found an empty dataset (0 episodes)")
        self._ends = ends
        n_steps = int(ends[-1]) if len(ends) else 0
        self._arrays: dict[str, zarr.Array] = {}
        try:
            names = sorted(data.array_keys())
        except Exception as e:
            raise DataError(f"{p}: key 'data' expected readable array metadata, found {_one_line(e)[:120]}") from None
        for k in names:
            try:
                a = data[k]
            except Exception as e:  # corrupt zarr.json / .zarray, unknown dtype, ...
                raise DataError(
                    f"{p}: key 'data/{k}' expected valid zarr array metadata, found {_one_line(e)[:120]}"
                ) from None
            if not isinstance(a, zarr.Array) or np.dtype(a.dtype).kind not in "biuf":
                found = f"dtype {a.dtype}" if isinstance(a, zarr.Array) else type(a).__name__
                raise DataError(f"{p}: key 'data/{k}' expected a numeric array (bool, int, float), found {found}")
            if a.ndim == 0 or a.shape[0] < n_steps:
                found = "a scalar" if a.ndim == 0 else f"{a.shape[0]} rows"
                raise DataError(
                    f"{p}: key 'data/{k}' expected at least {n_steps} rows (meta/episode_ends[-1]), found {found}"
                )
            self._arrays[k] = a
        if len(ends) and not self._arrays:
            raise DataError(f"{p}: key 'data' expected at least one array, found an empty group")

    # -- reading ------------------------------------------------------------------------
    @property
    def keys(self) -> list[str]:
        return list(self._arrays)

    @property
    def n_episodes(self) -> int:
        return len(self._ends)

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    @property
    def attrs(self) -> MutableMapping[str, Any]:
        """Dataset metadata (task, seeds, collection noise); JSON values, persisted on write."""
        return self.root.attrs

    @property
    def zarr_format(self) -> int:
        return int(self.root.metadata.zarr_format)

    def is_image(self, key: str) -> bool:
        return is_image(key, tuple(self._require(key).shape), self.rgb_keys)

    def _require(self, key: str) -> zarr.Array:
        if key not in self._arrays:
            raise DataError(f"{self.path}: key 'data/{key}' expected in the dataset, found only {self.keys}")
        return self._arrays[key]

    def episode_slice(self, i: int) -> slice:
        n = self.n_episodes
        if not -n <= i < n:
            raise DataError(f"{self.path}: episode index expected in [0, {n}), found {i}")
        i %= n
        return slice(int(self._ends[i - 1]) if i else 0, int(self._ends[i]))

    def __getitem__(self, key: str) -> np.ndarray | zarr.Array:
        """In memory: the first ``n_steps`` rows. On disk: the raw zarr array, whose rows past
        ``n_steps`` (if any) are leftovers of an interrupted append; slice with ``n_steps``."""
        a = self._require(key)
        return self._mem[key] if self._mem is not None else a

    def get_episode(self, i: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        s = self.episode_slice(i)
        out = {}
        for k in keys or self.keys:
            a = self._require(k)
            if self._mem is not None:
                out[k] = self._mem[k][s]
                continue
            x, where = a[s], f"{self.path}: key 'data/{k}'"
            out[k] = to_uint8_image(x, where, s.start) if self.is_image(k) else x
            check_finite(out[k], where, s.start)
        return out

    def load(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Copy some keys into memory (first ``n_steps`` rows), checking NaN/inf as they come.

        Read in blocks of whole chunks so a float image key never needs its full float copy."""
        out = {}
        for k in keys:
            a = self._require(k)
            if self._mem is not None:
                out[k] = self._mem[k]
                continue
            where, n, image = f"{self.path}: key 'data/{k}'", self.n_steps, self.is_image(k)
            self._check_chunks(k)
            row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)
            block = max(1, READ_BYTES // row_bytes // a.chunks[0]) * a.chunks[0]
            x = np.empty((n,) + tuple(a.shape[1:]), dtype=np.uint8 if image and a.dtype.kind == "f" else a.dtype)
            hi = 0.0
            for s in range(0, n, block):
                part = self._read_rows(a, k, s, min(n, s + block))
                if image:
                    hi = max(hi, float(part.max())) if part.size else hi
                    part = to_uint8_image(part, where, s)
                else:
                    check_finite(part, where, s)
                x[s : s + len(part)] = part
            if image and a.dtype.kind == "f" and n and hi <= 1.0:
                raise DataError(f"{where}: float image expected values in 0..255, found max {hi:g} (0..1 images?)")
            out[k] = x
        return out

    # -- integrity ----------------------------------------------------------------------
    def _chunk_file(self, a: zarr.Array, coords: tuple[int, ...]) -> Path:
        return self.path / a.path / a.metadata.encode_chunk_key(coords)

    def missing_chunks(self, key: str, rows: int | None = None) -> list[str]:
        """Chunk files of ``data/<key>`` (covering the first ``rows`` rows) that do not exist."""
        a = self._require(key) if key != ENDS else self._ends_arr
        rows = self.n_steps if rows is None else rows
        if rows == 0 or a.ndim == 0:
            return []
        grid = [range(-(-rows // a.chunks[0]))] + [range(-(-s // c)) for s, c in zip(a.shape[1:], a.chunks[1:])]
        out = []
        for coords in np.ndindex(*[len(g) for g in grid]):
            f = self._chunk_file(a, tuple(int(c) for c in coords))
            if not f.exists():
                out.append(str(f.relative_to(self.path)))
        return out

    def _check_chunks(self, key: str) -> None:
        missing = self.missing_chunks(key)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(
                f"{self.path}: key 'data/{key}': expected every chunk file, found {missing[0]} missing{more}; "
                "the store is damaged (run `robolearn inspect --verify` for the full list)"
            )

    def _read_rows(self, a: zarr.Array, key: str, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi); a chunk that cannot be decoded is named, not a codec traceback."""
        try:
            return a[lo:hi]
        except Exception:
            step = a.chunks[0]
            for s0 in range(lo - lo % step, hi, step):
                try:
                    a[max(lo, s0) : min(hi, s0 + step)]
                except Exception as e:
                    f = self._chunk_file(a, (s0 // step,) + (0,) * (a.ndim - 1))
                    raise DataError(
                        f"{self.path}: key 'data/{key}': expected a readable chunk, found {f.relative_to(self.path)} "
                        f"corrupt ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
                    ) from None
            raise

    def verify(self) -> list[str]:
        """Read every chunk of every key: all problems at once (missing or corrupt chunks,
        NaN/inf), one line each; empty when the store is whole."""
        problems = [f"{self.path}: key '{ENDS}': {m} missing" for m in self.missing_chunks(ENDS, len(self._ends))]
        for k in self.keys:
            missing = self.missing_chunks(k)
            problems += [f"{self.path}: key 'data/{k}': chunk {m} missing" for m in missing]
            if missing:
                continue
            a, n = self._arrays[k], self.n_steps
            for s0 in range(0, n, a.chunks[0]):
                try:
                    part = self._read_rows(a, k, s0, min(n, s0 + a.chunks[0]))
                    if not self.is_image(k):
                        check_finite(part, f"{self.path}: key 'data/{k}'", s0)
                except DataError as e:
                    problems.append(str(e))
        return problems

    # -- writing ------------------------------------------------------------------------
    def add_episode(self, data: dict[str, np.ndarray]) -> None:
        """Append one episode. Data first, ``episode_ends`` last: a crash in between leaves the
        previous episodes intact and this one invisible (its rows are truncated on the next append)."""
        p = self.path
        if self.mode != "a":
            raise DataError(f"{p}: opened read-only; expected mode='a' to add episodes")
        if not data:
            raise DataError(f"{p}: add_episode expected a dict of arrays, found an empty dict")
        data = {k: np.asarray(v) for k, v in data.items()}
        first = next(iter(data))
        T = len(data[first]) if data[first].ndim else 0
        for k, v in data.items():
            if v.ndim == 0 or len(v) != T or T == 0:
                want = f"{T} steps like key '{first}'" if T else ">= 1 steps"
                raise DataError(f"{p}: key 'data/{k}' expected {want}, found shape {v.shape}")
            check_finite(v, f"{p}: new episode key '{k}'")
        n = self.n_steps
        if self.n_episodes:
            if set(data) != set(self._arrays):
                raise DataError(f"{p}: new episode keys expected {sorted(self._arrays)}, found {sorted(data)}")
            for k, v in data.items():
                a = self._arrays[k]
                if tuple(v.shape[1:]) != tuple(a.shape[1:]) or v.dtype != a.dtype:
                    raise DataError(
                        f"{p}: key 'data/{k}' expected steps of shape {tuple(a.shape[1:])} dtype {a.dtype}, "
                        f"found {tuple(v.shape[1:])} {v.dtype}"
                    )
        else:  # first episode: whatever arrays exist are leftovers of an interrupted first append
            for k in list(self._arrays):
                del self._data[k]
            self._mem = {} if self._mem is not None else None
            self._arrays = {k: self._new_array(k, v) for k, v in data.items()}
        for k, v in data.items():
            a = self._arrays[k]
            a.resize((n + T,) + tuple(a.shape[1:]))
            a[n : n + T] = v
        self._commit(n + T)
        if self._mem is not None:  # keep the in-memory copy in step with the store
            for k, v in data.items():
                v = to_uint8_image(v, f"{p}: key 'data/{k}'") if self.is_image(k) else v
                self._mem[k] = np.concatenate([self._mem[k], v]) if k in self._mem else v.copy()

    def _commit(self, new_end: int) -> None:
        """The one write that makes an episode exist."""
        e, k = self._ends_arr, self.n_episodes
        e.resize((k + 1,))
        e[k] = new_end
        self._ends = np.append(self._ends, np.int64(new_end))

    def _new_array(self, key: str, v: np.ndarray) -> zarr.Array:
        row_bytes = max(1, v[0].nbytes)
        rows = int(np.clip(CHUNK_BYTES // row_bytes, 1, 8192))
        if self.zarr_format == 3:
            comp: Any = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle" if v.itemsize == 1 else "shuffle")
        else:
            comp = "auto"
        fill = 0 if v.dtype.kind in "iub" else 0.0
        return self._data.create_array(
            key,
            shape=(0,) + v.shape[1:],
            chunks=(rows,) + v.shape[1:],
            dtype=v.dtype,
            compressors=comp,
            fill_value=fill if v.dtype.kind != "b" else False,
        )

    def __repr__(self) -> str:
        return f"ReplayBuffer({str(self.path)!r}, episodes={self.n_episodes}, steps={self.n_steps}, keys={self.keys})"
