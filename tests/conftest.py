import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def pusht_zarr() -> Path:
    """The real Push-T human demonstrations, found through ROBOLEARN_PUSHT_ZARR (set by .ci/run)."""
    p = os.environ.get("ROBOLEARN_PUSHT_ZARR")
    if not p or not Path(p).exists():
        pytest.skip("ROBOLEARN_PUSHT_ZARR is not set to the Push-T human dataset")
    return Path(p)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; this machine has no GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
