"""Fault tests: start a real command in a subprocess and SIGKILL it at a chosen moment."""

import signal
import subprocess
import time
from collections.abc import Callable


def kill_when(cmd: list[str], env: dict, ready: Callable[[], bool], timeout: float = 120) -> None:
    """Run ``cmd``; as soon as ``ready()`` holds, kill it with SIGKILL (no cleanup runs).
    Fails if the command ends, or ``ready()`` never holds, before the kill."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, f"{' '.join(cmd[-3:])}: ended before it could be killed"
        assert ready(), f"{' '.join(cmd[-3:])}: the moment to kill never came within {timeout} s"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
