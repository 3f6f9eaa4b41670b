"""Other tools' demonstration formats, to and from robolearn's zarr layout.

* LeRobotDataset v3.0 and v2.1 (parquet tables, one mp4 per camera, ``meta/info.json``) -> zarr
* robomimic hdf5 (``data/demo_i/{obs/<key>, actions, rewards, dones}``, ``mask/<filter>``) -> zarr
* zarr -> LeRobotDataset v3.0, the layout LeRobot loads

``convert(src, dst)`` detects the source format. Every conversion writes to ``<dst>.partial``
and renames it to ``dst`` only when complete, so an interrupted conversion leaves nothing that
looks finished; any error removes the partial output. The readers need optional extras:
``pip install 'robolearn[lerobot]'`` (pyarrow, PyAV) or ``'robolearn[robomimic]'`` (h5py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from robolearn.data.formats.common import need, safe_key, summary_line
from robolearn.errors import ConfigError, DataError

__all__ = ["FORMATS", "convert", "detect", "need", "safe_key", "summary_line"]

FORMATS = ("lerobot", "robomimic", "zarr")


def detect(src: str | Path) -> str:
    """'lerobot' (a folder with meta/info.json), 'robomimic' (an hdf5 file) or 'zarr'."""
    src = Path(src)
    if not src.exists():
        raise DataError(
            f"{src}: no such file or directory (expected a LeRobot dataset folder, a robomimic .hdf5 "
            "file or a zarr store)"
        )
    if src.is_dir() and (src / "meta" / "info.json").is_file():
        return "lerobot"
    if src.is_file() and src.suffix in (".hdf5", ".h5"):
        return "robomimic"
    if src.is_dir() and ((src / "zarr.json").is_file() or (src / ".zgroup").is_file()):
        return "zarr"
    raise DataError(
        f"{src}: expected a LeRobot dataset (meta/info.json), a robomimic .hdf5 file or a zarr store, "
        "found none of them; pass --from to say which"
    )


def convert(
    src: str | Path,
    dst: str | Path,
    fmt: str | None = None,
    image_size: int | None = None,
    fps: float | None = None,
    vcodec: str = "libx264",
    progress: bool = True,
) -> dict[str, Any]:
    """Convert ``src`` to ``dst`` (zarr, or LeRobot v3.0 when ``src`` is zarr); returns a summary."""
    src, dst = Path(src), Path(dst)
    fmt = fmt or detect(src)
    if fmt not in FORMATS:
        raise ConfigError(f"--from: expected one of {list(FORMATS)}, found {fmt!r}")
    if not src.exists():
        raise DataError(f"{src}: no such file or directory")
    if dst.exists():
        raise DataError(f"{dst}: the destination exists (expected a new path; remove it or choose another)")
    if image_size is not None and (isinstance(image_size, bool) or image_size < 8):
        raise ConfigError(f"--image-size: expected a size in pixels >= 8, found {image_size}")
    partial = dst.with_name(dst.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    try:
        if fmt == "lerobot":
            from robolearn.data.formats.lerobot import lerobot_to_zarr

            summary = lerobot_to_zarr(src, partial, image_size=image_size, progress=progress)
        elif fmt == "robomimic":
            from robolearn.data.formats.robomimic import robomimic_to_zarr

            summary = robomimic_to_zarr(src, partial, image_size=image_size, progress=progress)
        else:
            from robolearn.data.formats.lerobot import zarr_to_lerobot

            summary = zarr_to_lerobot(src, partial, fps=fps, vcodec=vcodec, progress=progress)
        partial.rename(dst)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        (partial.parent / f".{partial.name}.lock").unlink(missing_ok=True)  # the failed writer's lock file
        raise
    return {**summary, "path": str(dst), "from": fmt}
