"""Two writers on one dataset or one run directory, as real concurrent processes: the second
stops with one line naming the first's PID, and the first finishes with a store that holds
exactly its episodes. An --overwrite never removes a store another process is writing."""

import os
import subprocess
import sys
import time
from pathlib import Path

from robolearn.data.replay_buffer import ReplayBuffer


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}


def _collect(out: Path, *extra: str, episodes: int = 30) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robolearn",
            "collect",
            "fetch_reach",
            "--episodes",
            str(episodes),
            "--out",
            str(out),
            *extra,
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_writing(out: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        lock = out.parent / f".{out.name}.lock"
        if lock.exists() and lock.read_text().strip():
            return
        time.sleep(0.02)
    raise AssertionError("the first writer never took its lock")


def test_second_appender_stops_and_the_first_finishes_whole(tmp_path):
    out = tmp_path / "d.zarr"
    first = _collect(out, episodes=800)
    _wait_until_writing(out)
    second = subprocess.run(
        [sys.executable, "-m", "robolearn", "collect", "fetch_reach", "--episodes", "5", "--out", str(out), "--append"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert f"PID {first.pid}" in second.stderr and second.stderr.count("\n") == 1, second.stderr
    buf = ReplayBuffer.open(out)
    assert buf.n_episodes == 800 and buf.attrs["episodes_run"] == 800


def test_overwrite_never_removes_a_store_being_written(tmp_path):
    out = tmp_path / "d.zarr"
    # long enough that the first writer is still writing when the second one has started (a short
    # one can finish, and rightly release its lock, before the second process is up)
    first = _collect(out, episodes=800)
    _wait_until_writing(out)
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "robolearn",
            "collect",
            "fetch_reach",
            "--episodes",
            "5",
            "--out",
            str(out),
            "--overwrite",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    _, err = first.communicate(timeout=300)
    assert second.returncode == 2 and "is writing this dataset" in second.stderr, second.stderr[-500:]
    assert first.returncode == 0, err
    assert ReplayBuffer.open(out).n_episodes == 800


def test_attributes_are_current_when_a_collection_is_killed(tmp_path):
    out = tmp_path / "d.zarr"
    first = _collect(out, episodes=500)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if ReplayBuffer.open(out).n_episodes >= 3:
                break
        except Exception:
            pass
        time.sleep(0.05)
    first.kill()
    first.wait()
    buf = ReplayBuffer.open(out)
    assert buf.attrs["task"] == "fetch_reach" and buf.attrs["source"] == "scripted expert"
    assert buf.n_episodes <= buf.attrs["episodes_run"] <= buf.n_episodes + 1
    # the dead writer's lock is gone with it: a new writer can append at once
    again = subprocess.run(
        [sys.executable, "-m", "robolearn", "collect", "fetch_reach", "--episodes", "2", "--out", str(out), "--append"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr


def test_second_trainer_on_one_run_directory_stops(tmp_path):
    data = tmp_path / "d.zarr"
    subprocess.run(
        [sys.executable, "-m", "robolearn", "collect", "fetch_reach", "--episodes", "8", "--out", str(data)],
        env=_env(),
        check=True,
        capture_output=True,
    )
    run = tmp_path / "run"
    args = ["train", "task=fetch_reach", f"data={data}", f"run_dir={run}", "algo.steps=3000", "algo.batch_size=8"]
    first = subprocess.Popen(
        [sys.executable, "-m", "robolearn", *args],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_writing(run)
        second = subprocess.run(
            [sys.executable, "-m", "robolearn", *args], env=_env(), capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2 and f"PID {first.pid}" in second.stderr and "run directory" in second.stderr
    finally:
        first.kill()
        first.wait()
