"""Deliveries inside .zip archives: a member is named by a path through the archive
(drop/ncvoter_Statewide.zip/ncvoter_Statewide.txt) and read as a stream, never extracted to disk.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import BinaryIO


def is_zip(path: Path) -> bool:
    return Path(path).suffix.lower() == ".zip"


def archive_member(path: Path) -> tuple[Path, str] | None:
    """(archive, member name) when `path` names a member inside a .zip (drop/x.zip/ncvoter.txt)."""
    path = Path(path)
    if path.exists():
        return None
    for parent in path.parents:
        if is_zip(parent) and parent.is_file():
            return parent, path.relative_to(parent).as_posix()
    return None


def archive_members(path: Path) -> list[Path]:
    """The files inside a .zip, as member paths (directories and hidden members left out).
    Raises zipfile.BadZipFile for an archive that is incomplete or damaged."""
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
    return [Path(path) / name for name in sorted(names) if not Path(name).name.startswith(".")]


def file_size(path: Path) -> int:
    """Bytes of a file; of a zip member, its uncompressed size."""
    member = archive_member(path)
    if member is None:
        return Path(path).stat().st_size
    with zipfile.ZipFile(member[0]) as archive:
        return archive.getinfo(member[1]).file_size


class _MemberStream(io.RawIOBase):
    """A zip member read as a stream (never extracted to disk); closing it closes the archive."""

    def __init__(self, archive: Path, member: str):
        self._archive = zipfile.ZipFile(archive)
        self._member = self._archive.open(member)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._member.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._member.close()
        self._archive.close()
        super().close()


def open_stored(path: Path) -> BinaryIO:
    """The bytes as stored: a plain or .gz file, or a zip member's uncompressed bytes."""
    member = archive_member(path)
    return _MemberStream(*member) if member else open(path, "rb")
