"""One writer at a time: an OS file lock per dataset and per run directory.

``fcntl.flock`` locks belong to the open file, so the kernel drops them when the process dies,
however it dies (SIGKILL included): a crashed writer never leaves a stale lock behind. The lock
file sits next to what it guards (``.<name>.lock``), so replacing or deleting the guarded
folder never deletes a lock someone holds; the holder removes it when done (a writer that locks
a file that was just removed notices and retries). The holder writes its PID into the file,
which is what the second writer's message names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from robolearn.errors import DataError


class WriteLock:
    """``with WriteLock(path, "dataset"):`` or ``lock = WriteLock(...).acquire()`` ... ``lock.release()``."""

    def __init__(self, target: str | Path, what: str):
        self.target = Path(target)
        self.path = self.target.parent / f".{self.target.name}.lock"
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> WriteLock:
        if self._fd is not None:
            return self
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:  # a read-only or pseudo file system, a parent that is a file, no permission
                raise DataError(
                    f"{self.target}: expected a place where this {self.what} can be written (its lock file "
                    f"{self.path}), found {(e.strerror or type(e).__name__).lower()}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = ""
                for _ in range(50):  # the holder writes its PID right after locking: give it a moment
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    if holder:
                        break
                    time.sleep(0.01)
                os.close(fd)
                who = "this process" if holder == str(os.getpid()) else f"another process (PID {holder or 'unknown'})"
                raise DataError(
                    f"{self.target}: {who} is writing this {self.what}; expected to be the only writer: wait for it "
                    "to finish, or stop it"
                ) from None
            try:  # the file may have been released and removed between our open and our lock: retry
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then unlock: nothing is left next to the guarded folder."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()
