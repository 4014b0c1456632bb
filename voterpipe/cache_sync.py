"""The shared caches of an s3:// data root (address parse cache, geocode cache, TIGER data) between
the bucket's cache/<name>/ and a worker's scratch copy: immutable, uniquely named parts are copied
both ways, and parts a compaction replaced are deleted on both sides, never uploaded again."""

from __future__ import annotations

import contextlib
from pathlib import Path

from voterpipe.object_store import Bucket, delete, download, in_parallel, listing, local_lock, upload

LEDGER = ".synced-names"  # hidden, so the caches skip it: every part name known to have been in the store


def _known(local_dir: Path) -> set[str]:
    try:
        return set((local_dir / LEDGER).read_text(encoding="utf-8").split("\n")) - {""}
    except FileNotFoundError:
        return set()


def _remember(local_dir: Path, names: set[str]) -> None:
    if names:
        local_dir.mkdir(parents=True, exist_ok=True)
        with open(local_dir / LEDGER, "a", encoding="utf-8") as ledger:  # one short append per sync
            ledger.write("".join(f"{name}\n" for name in sorted(names)))


def _local_parts(local_dir: Path) -> dict[str, Path]:
    if not local_dir.is_dir():
        return {}
    return {p.relative_to(local_dir).as_posix(): p for p in local_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def sync_down(bucket: Bucket, local_dir: Path) -> set[str]:
    """Bring a cache directory's new parts down (parts are immutable and uniquely named, so a name
    present locally is the same part), and drop local parts the store held once but no longer
    does (a compaction elsewhere replaced them). Return the store's part names."""
    remote = listing(bucket, bucket.key(local_dir))
    known = _known(local_dir)
    def fetch(item) -> None:
        with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
            download(bucket, item[1].path, local_dir / item[0], item[1].mtime_ns)

    in_parallel(fetch, [(name, info) for name, info in sorted(remote.items()) if not (local_dir / name).exists()])
    _remember(local_dir, set(remote) - known)
    for name, path in _local_parts(local_dir).items():
        if name not in remote and name in known:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return set(remote)


def sync_up(bucket: Bucket, local_dir: Path, seen_remote: set[str]) -> tuple[int, int]:
    """Upload the cache's local parts the store never held (written here, by any process); then
    delete the store's parts that sync_down saw (`seen_remote`) and that are gone here: a
    compaction here replaced them, and the part replacing them was written first, so it has just
    been uploaded. Return (uploaded, deleted)."""
    base = bucket.key(local_dir)
    remote = listing(bucket, base)
    known = _known(local_dir)
    local = _local_parts(local_dir)
    uploaded = set()
    for name, path in sorted(local.items()):
        if name not in remote and name not in known:
            with contextlib.suppress(FileNotFoundError):
                upload(bucket, path, f"{base}/{name}")
                uploaded.add(name)
    _remember(local_dir, uploaded)
    gone = sorted(name for name in seen_remote if name not in local and name in remote)
    delete(bucket, [f"{base}/{name}" for name in gone])
    return len(uploaded), len(gone)


class CacheSync:
    """The shared cache directories one task synced down, each with the part names the store held
    then (sync_up deletes only those); every directory is synced down once per task."""

    def __init__(self):
        self.seen: dict[Path, set[str]] = {}

    def pull(self, bucket: Bucket, directory: Path) -> None:
        if directory not in self.seen:
            with local_lock(directory):
                self.seen[directory] = sync_down(bucket, directory)

    def push(self, bucket: Bucket | None) -> None:
        for directory, seen in sorted(self.seen.items()):
            if bucket is not None and directory.resolve().is_relative_to(bucket.local_root):
                with local_lock(directory):
                    sync_up(bucket, directory, seen)
