"""The command line: bad input gives one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_data_errors import build


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robolearn.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def bad_stores(tmp: Path) -> dict[str, tuple[Path, str]]:
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a dataset")
    f32 = np.zeros((6, 2), np.float32)
    nan = f32.copy()
    nan[3, 1] = np.nan
    inf = np.zeros((6, 5), np.float32)
    inf[0, 0] = np.inf
    return {
        "not_zarr": (plain, "zarr"),
        "missing_key": (build(tmp / "nokey.zarr", [6], {"state": np.zeros((6, 5), np.float32)}), "data/action"),
        "short_array": (
            build(tmp / "short.zarr", [3, 6], {"action": f32, "state": np.zeros((4, 5), np.float32)}),
            "data/state",
        ),
        "ends_not_increasing": (
            build(tmp / "ends.zarr", [4, 2, 6], {"action": f32, "state": np.zeros((6, 5), np.float32)}),
            "episode_ends",
        ),
        "nan_action": (
            build(tmp / "nan.zarr", [6], {"action": nan, "state": np.zeros((6, 5), np.float32)}),
            "data/action",
        ),
        "inf_obs": (build(tmp / "inf.zarr", [6], {"action": f32, "state": inf}), "data/state"),
        "empty": (build(tmp / "empty.zarr", np.zeros(0, np.int64), {"action": np.zeros((0, 2), np.float32)}), "empty"),
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return bad_stores(tmp_path_factory.mktemp("bad"))


CASES = ["not_zarr", "missing_key", "short_array", "ends_not_increasing", "nan_action", "inf_obs", "empty"]


@pytest.mark.parametrize("case", CASES)
def test_train_on_bad_data_exits_with_one_line(stores, case, tmp_path):
    path, word = stores[case]
    r = run_cli("train", "task=pusht", f"data={path}", f"run_dir={tmp_path / 'run'}", "algo.steps=5")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(path) in lines[0] and word in lines[0], lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("case", ["not_zarr", "short_array", "ends_not_increasing", "empty"])
def test_inspect_on_bad_data_exits_with_one_line(stores, case):
    path, word = stores[case]
    r = run_cli("inspect", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(path) in r.stderr and word in r.stderr


def test_bad_override_and_unknown_group(tmp_path):
    r = run_cli("train", "policy=nonexistent_head_file")
    assert r.returncode == 2 and "policy=nonexistent_head_file" in r.stderr and "regression" in r.stderr
    r = run_cli(
        "train", "task=pusht", "policy.head.name=nope", f"run_dir={tmp_path}", "algo.steps=1", "algo.max_episodes=2"
    )
    assert r.returncode == 2 and "unknown head 'nope'" in r.stderr, r.stderr


def test_collect_refuses_to_overwrite(tmp_path):
    out = tmp_path / "d.zarr"
    out.mkdir()
    (out / "precious.txt").write_text("user data")
    r = run_cli("collect", "fetch_reach", "--episodes", "1", "--out", str(out))
    assert r.returncode == 2 and str(out) in r.stderr, r.stderr
    assert (out / "precious.txt").read_text() == "user data"
    r = run_cli("collect", "catch_multimodal", "--episodes", "1", "--noise", "-0.1", "--out", str(tmp_path / "n.zarr"))
    assert r.returncode == 2 and "--noise: expected a number >= 0" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "n.zarr").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "args, words",
    [
        (["dagger", "task=fetch_reach", "algo=nope"], "algo=nope"),
        (["dart", "task=fetch_reach", "algo.expert=/no/such/checkpoint"], "not a robolearn checkpoint"),
        (["dagger", "task=pusht"], "no scripted expert"),
        (["ablate", "/no/such/experiment.yaml"], "config file not found"),
        (["ablate", "configs/experiment/much_ado.yaml", "--seeds", "0,x"], "--seeds"),
        (["ablate", "configs/experiment/much_ado.yaml", "--variants", "nope"], "--variants ['nope']"),
    ],
)
def test_interactive_and_ablate_commands_refuse_bad_input_in_one_line(args, words, tmp_path):
    r = run_cli(
        *args,
        f"run_dir={tmp_path / 'run'}" if args[0] != "ablate" else "--out=" + str(tmp_path / "o"),
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 2, r.stderr[-1500:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr, r.stderr[-1500:]
