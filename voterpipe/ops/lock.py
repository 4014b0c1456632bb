"""One run per data root: an fcntl lock on <data_root>/.voterpipe.lock, released by the kernel
when the holder exits, however it exits (a crash leaves no stale lock)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".voterpipe.lock"


class DataRootLocked(RuntimeError):
    """Another process holds the data root's lock."""

    def __init__(self, path: Path, holder: str):
        self.path, self.holder = path, holder
        super().__init__(f"another voterpipe run holds {path} ({holder or 'pid unknown'}); not starting")


class DataRootLock:
    """`with DataRootLock(root):` holds the lock or raises DataRootLocked at once (never waits).

    The lock belongs to the data root, not to a command line: two runs with their arguments in
    another order, or for other states, still exclude each other."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "DataRootLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DataRootLocked(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
