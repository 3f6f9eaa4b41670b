"""Every bad dataset a user can hand us gives one DataError line naming the path and the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from robolearn.data import ReplayBuffer, load_dataset
from robolearn.errors import DataError


def build(
    path: Path,
    ends,
    arrays: dict[str, np.ndarray] | None = None,
    zarr_format: int = 3,
    with_data: bool = True,
    with_ends: bool = True,
) -> Path:
    """A store written by plain zarr, bypassing ReplayBuffer's own checks."""
    g = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    if with_ends:
        g.require_group("meta").create_array("episode_ends", data=np.asarray(ends))
    if with_data:
        d = g.require_group("data")
        n = int(np.max(ends)) if len(ends) and np.issubdtype(np.asarray(ends).dtype, np.number) else 0
        for k, v in (arrays if arrays is not None else {"action": np.zeros((max(n, 0), 2), np.float32)}).items():
            d.create_array(k, data=v)
    return path


def raises(fn, path: Path, *words: str) -> str:
    with pytest.raises(DataError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_path(tmp_path):
    p = tmp_path / "nope.zarr"
    raises(lambda: ReplayBuffer.open(p), p, "no such dataset")


def test_not_a_zarr_store(tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    raises(lambda: ReplayBuffer.open(d), d, "expected a zarr group")
    f = tmp_path / "file.zarr"
    f.write_text("not zarr")
    raises(lambda: ReplayBuffer.open(f), f, "expected a zarr group")


@pytest.mark.parametrize("fmt", [2, 3])
def test_missing_episode_ends(tmp_path, fmt):
    p = build(tmp_path / "d.zarr", [4], with_ends=False, zarr_format=fmt)
    raises(lambda: ReplayBuffer.open(p), p, "meta/episode_ends")


def test_missing_data_group(tmp_path):
    p = build(tmp_path / "d.zarr", [4], with_data=False)
    raises(lambda: ReplayBuffer.open(p), p, "'data'")


def test_requested_key_missing(tmp_path):
    p = build(tmp_path / "d.zarr", [4])
    buf = ReplayBuffer.open(p)
    raises(lambda: buf.load(["state"]), p, "data/state", "action")
    raises(lambda: buf.get_episode(0, keys=["img"]), p, "data/img")
    raises(lambda: buf["img"], p, "data/img")
    raises(lambda: load_dataset(p, ["agent_pos=state[0:2]"]), p, "data/state")


def test_array_shorter_than_episode_ends(tmp_path):
    p = build(
        tmp_path / "d.zarr", [3, 10], {"action": np.zeros((10, 2), np.float32), "state": np.zeros((8, 5), np.float32)}
    )
    raises(lambda: ReplayBuffer.open(p), p, "data/state", "10", "8 rows")


def test_array_longer_than_episode_ends_is_ignored(tmp_path):
    p = build(tmp_path / "d.zarr", [3, 10], {"action": np.arange(24, dtype=np.float32).reshape(12, 2)})
    buf = ReplayBuffer.open(p)
    assert buf.load(["action"])["action"].shape == (10, 2)


@pytest.mark.parametrize(
    "ends,word",
    [
        ([3, 3, 6], "strictly increasing"),
        ([5, 2], "strictly increasing"),
        ([0, 4], "strictly increasing"),
        ([-2, 4], "non-negative"),
    ],
)
def test_bad_episode_ends(tmp_path, ends, word):
    p = build(tmp_path / "d.zarr", ends, {"action": np.zeros((6, 2), np.float32)})
    raises(lambda: ReplayBuffer.open(p), p, "meta/episode_ends", word)


def test_non_integer_episode_ends(tmp_path):
    p = build(tmp_path / "d.zarr", np.array([2.0, 4.0]))
    raises(lambda: ReplayBuffer.open(p), p, "meta/episode_ends", "integer", "float64")


def test_empty_dataset(tmp_path):
    p = build(tmp_path / "d.zarr", np.zeros(0, np.int64))
    raises(lambda: ReplayBuffer.open(p), p, "meta/episode_ends", "0 episodes")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_checked_when_that_key_loads(tmp_path, bad):
    state = np.zeros((6, 3), np.float32)
    state[4, 1] = bad
    p = build(tmp_path / "d.zarr", [2, 6], {"state": state, "action": np.zeros((6, 2), np.float32)})
    buf = ReplayBuffer.open(p)  # opening does not read values
    assert buf.load(["action"])["action"].shape == (6, 2)  # a clean key loads fine
    raises(lambda: buf.load(["state"]), p, "data/state", "NaN/inf", "row 4")
    raises(lambda: buf.get_episode(1), p, "data/state", "row 4")
    buf.get_episode(0)  # the clean episode of the same key is fine
    raises(
        lambda: load_dataset(p, ["state"], in_memory=False)[1]["state"][np.array([[1, 4]])], p, "data/state", "row 4"
    )


def test_non_finite_past_the_last_episode_is_not_an_error(tmp_path):
    state = np.zeros((8, 3), np.float32)
    state[7] = np.nan  # leftover row of an interrupted append
    p = build(tmp_path / "d.zarr", [2, 6], {"state": state})
    assert ReplayBuffer.open(p).load(["state"])["state"].shape == (6, 3)


def test_image_out_of_range(tmp_path):
    img = np.full((4, 8, 8, 3), 100.0, np.float32)
    img[2, 0, 0, 0] = 300.0
    p = build(tmp_path / "d.zarr", [4], {"img": img})
    raises(lambda: ReplayBuffer.open(p).load(["img"]), p, "data/img", "[0, 255]", "300")


def test_image_stored_as_unit_floats(tmp_path):
    p = build(tmp_path / "d.zarr", [4], {"img": np.full((4, 8, 8, 3), 0.5, np.float32)})
    raises(lambda: ReplayBuffer.open(p).load(["img"]), p, "data/img", "0..255")


def test_image_with_nan(tmp_path):
    img = np.zeros((4, 8, 8, 3), np.float32)
    img[3, 1, 1, 1] = np.nan
    p = build(tmp_path / "d.zarr", [4], {"img": img})
    raises(lambda: ReplayBuffer.open(p).load(["img"]), p, "data/img", "NaN/inf")


def test_episode_index_out_of_range(tmp_path):
    p = build(tmp_path / "d.zarr", [4])
    raises(lambda: ReplayBuffer.open(p).get_episode(1), p, "episode index", "[0, 1)")


# -- writing ---------------------------------------------------------------------------------------
def ep(T=3, **over):
    d = {"state": np.zeros((T, 4), np.float32), "action": np.zeros((T, 2), np.float32)}
    d.update(over)
    return d


@pytest.fixture
def store(tmp_path):
    buf = ReplayBuffer.create(tmp_path / "w.zarr")
    buf.add_episode(ep())
    return buf


@pytest.mark.parametrize(
    "bad,key,word",
    [
        (ep(action=np.zeros((2, 2), np.float32)), "data/action", "3 steps"),
        (ep(T=0), "data/state", ">= 1 steps"),
        ({"state": np.zeros((3, 4), np.float32)}, "keys", "['action', 'state']"),
        (ep(extra=np.zeros((3, 1), np.float32)), "keys", "extra"),
        (ep(state=np.zeros((3, 5), np.float32)), "data/state", "(4,)"),
        (ep(state=np.zeros((3, 4), np.float64)), "data/state", "float64"),
        (ep(action=np.full((3, 2), np.nan, np.float32)), "'action'", "NaN/inf"),
    ],
)
def test_add_episode_rejects(store, bad, key, word):
    raises(lambda: store.add_episode(bad), store.path, key, word)
    assert ReplayBuffer.open(store.path).n_episodes == 1  # nothing was committed


def test_add_episode_to_read_only(store):
    ro = ReplayBuffer.open(store.path)
    raises(lambda: ro.add_episode(ep()), store.path, "mode='a'")


def test_create_over_existing(store):
    raises(lambda: ReplayBuffer.create(store.path), store.path, "already exists", "overwrite")
