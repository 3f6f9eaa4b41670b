"""robomimic hdf5 -> robolearn zarr.

robomimic's layout: ``data/demo_<i>/obs/<key>`` (T, ...), ``actions`` (T, A), optionally
``rewards`` and ``dones`` (T,), with ``data`` attributes ``env_args`` (JSON) and ``total``;
``mask/<filter>`` lists demo names (e.g. ``train``, ``valid``). Episodes land in demo order
(demo_2 before demo_10); ``obs/<key>`` becomes ``data/<key>``, ``actions`` ``data/action``,
``rewards`` / ``dones`` ``data/reward`` / ``data/done``. Each filter becomes the zarr attribute
``masks: {filter: [episode indices]}``, which training can use as its validation split
(``algo.val_mask=valid``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from robolearn.data.formats.common import need
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import DataError


def _demo_order(names) -> list[str]:
    def key(n: str):
        m = re.search(r"(\d+)$", n)
        return (int(m.group(1)) if m else -1, n)

    return sorted(names, key=key)


def robomimic_to_zarr(src: Path, dst: Path, image_size: int | None = None, progress: bool = True) -> dict[str, Any]:
    h5py = need("h5py", "robomimic")
    try:
        f = h5py.File(str(src), "r")
    except OSError as e:
        raise DataError(f"{src}: expected an hdf5 file, found an unreadable one ({str(e).splitlines()[0]})") from None
    with f:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise DataError(
                f"{src}: key 'data': expected robomimic's group of demos (data/demo_<i>), found "
                f"{sorted(f.keys()) or 'an empty file'}"
            )
        groups = [k for k in f["data"] if isinstance(f["data"][k], h5py.Group)]
        demos = _demo_order([k for k in groups if re.fullmatch(r"demo_?\d+", k)])
        if not demos:
            raise DataError(
                f"{src}: key 'data': expected demo_<i> groups, found {sorted(groups)[:5] if groups else 'none'}"
            )
        index = {d: i for i, d in enumerate(demos)}
        masks: dict[str, list[int]] = {}
        if "mask" in f:
            for name, ds in f["mask"].items():
                listed = [x.decode() if isinstance(x, bytes) else str(x) for x in ds[()]]
                missing = [d for d in listed if d not in index]
                if missing:
                    raise DataError(f"{src}: key 'mask/{name}': expected demos of data/, found unknown {missing[:3]}")
                masks[name] = sorted(index[d] for d in listed)
        env_args = f["data"].attrs.get("env_args")
        buf = ReplayBuffer.create(dst)
        buf.attrs.update(
            {
                "source": "robomimic",
                "masks": masks,
                "demos": demos,
                "env_args": json.loads(env_args) if isinstance(env_args, (str, bytes)) else None,
            }
        )
        shapes: dict[str, tuple] = {}
        frames = 0
        for d in tqdm(demos, desc=f"convert {src.name}", disable=not progress, dynamic_ncols=True):
            g = f["data"][d]
            where = f"{src}: data/{d}"
            if "actions" not in g:
                raise DataError(f"{where}: key 'actions': expected the demo's (T, A) actions, found {sorted(g.keys())}")
            ep = {"action": np.asarray(g["actions"][()], np.float32)}
            t = len(ep["action"])
            if "obs" in g:
                for k, ds in g["obs"].items():
                    if k in ("action", "reward", "done"):
                        raise DataError(f"{where}: key 'obs/{k}': the name is taken by the demo's own {k}s")
                    ep[k] = _image(np.asarray(ds[()]), image_size) if ds.ndim == 4 else np.asarray(ds[()])
            for src_key, key in (("rewards", "reward"), ("dones", "done")):
                if src_key in g:
                    ep[key] = np.asarray(g[src_key][()]).reshape(t if len(g[src_key]) == t else -1, -1)
            for k, v in ep.items():
                if len(v) != t:
                    name = (
                        "obs/" + k
                        if k not in ("action", "reward", "done")
                        else {"action": "actions", "reward": "rewards", "done": "dones"}[k]
                    )
                    raise DataError(f"{where}: key {name!r}: expected {t} rows (as many as actions), found {len(v)}")
            if t == 0:
                raise DataError(f"{where}: expected at least one step, found 0")
            buf.add_episode(ep)
            frames += t
            shapes.update({k: tuple(v.shape[1:]) for k, v in ep.items()})
    return {"episodes": len(demos), "frames": frames, "shapes": shapes, "masks": {k: len(v) for k, v in masks.items()}}


def _image(x: np.ndarray, size: int | None) -> np.ndarray:
    """(T, H, W, 3) uint8, resized to size x size when asked (nearest-area via PyAV-free numpy)."""
    x = x if x.dtype == np.uint8 else np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if not size or (x.shape[1] == size and x.shape[2] == size):
        return x
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=(size, size), mode="area" if size < x.shape[1] else "bilinear")
    return t.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
