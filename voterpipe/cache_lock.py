"""One compaction at a time per cache directory, across processes: an exclusive flock on a hidden
lock file beside the directory. Appends never take it (each writes its own uniquely named part)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator


def lock_path(directory: Path) -> Path:
    directory = Path(directory)
    return directory.parent / f".{directory.name}.compact.lock"


@contextlib.contextmanager
def compaction_lock(directory: Path, wait_seconds: float = 0.0) -> Iterator[bool]:
    """Yield True while holding the directory's compaction lock, or False when another process
    held it for all of `wait_seconds` (the caller then skips: that compaction covers its parts)."""
    fd = os.open(lock_path(directory), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
