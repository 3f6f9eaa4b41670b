"""Files that are either whole or absent: every file robolearn writes goes through here.

A writer writes to a temporary file beside the target (same directory, so the rename stays on
one file system; the process id in its name, so concurrent writers never share it) and renames
it over the target; a crash or an exception leaves the old file untouched and no temporary.
The temporary keeps the target's suffix, so libraries that pick a format from it (matplotlib)
still do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_json(obj: Any, path: str | Path) -> None:
    """JSON (numpy scalars and arrays, paths as plain values), written atomically."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default))
