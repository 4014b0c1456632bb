"""Paths under the data root and atomic publication of outputs: all file I/O goes through here.

A stage publishes one directory per (state, snapshot). It is built in a hidden staging
directory beside its final place and renamed into place in one step, so a directory that
exists is complete. A killed run leaves only a staging directory, swept on the next run.

With an s3:// data root (config.remote_root()) data_root() is the worker's local scratch copy:
stages read and write it as above, publish_dir() also uploads what it publishes (a stage's
objects under a run prefix, its manifest last: voterpipe/object_store.py), published_manifest()
reads the bucket, pull() brings a stage's inputs down and cache_dir() syncs the shared caches.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import cache_sync, config, object_store
from voterpipe.config import data_root, file_modes

LAYERS = {
    "raw": "01_raw",
    "canonical": "02_canonical",
    "addresses": "03_addresses",
    "geocoded": "04_geocoded",
    "households": "05_households",
    "cohorts": "06_cohorts",
    "reporting": "07_reporting",
}
MANIFEST = "manifest.json"
_STAGING_MARK = ".staging-"
PARQUET_COMPRESSION = "zstd"


def _snapshot_text(snapshot: date | str) -> str:
    return snapshot.isoformat() if isinstance(snapshot, date) else str(snapshot)


def layer_dir(layer: str, root: Path | None = None) -> Path:
    """`layer` is a key of LAYERS ('canonical') or its directory name ('02_canonical')."""
    name = LAYERS.get(layer, layer)
    if name not in LAYERS.values():
        raise ValueError(f"unknown data layer {layer!r}; expected one of {sorted(LAYERS)}")
    return (root or data_root()) / name


def stage_dir(stage: str, state: str, snapshot: date | str, root: Path | None = None) -> Path:
    """`stage` is a layer ('canonical': 02_canonical/<state>/<snapshot>/), or 'layer/name' for
    one of several stages a layer holds per snapshot ('reporting/report':
    07_reporting/<state>/<snapshot>/report/)."""
    layer, _, name = stage.partition("/")
    directory = layer_dir(layer, root) / state.lower() / _snapshot_text(snapshot)
    return directory / name if name else directory


def raw_dir(state: str, snapshot: date | str, root: Path | None = None) -> Path:
    return stage_dir("raw", state, snapshot, root)


def cache_dir(name: str, root: Path | None = None, sync: bool = True) -> Path:
    """A cache directory; with an s3:// root, a shared cache is synced down on its first use in
    each stage run unless `sync` is False (new parts go up after it: synced_caches())."""
    path = (root or data_root()) / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(path, file_modes()[1])  # caches hold addresses
    if root is None and sync and name in SHARED_CACHES and (bucket := remote()) is not None:
        _caches.pull(bucket, path)
    return path


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files and directories created inside get [voterpipe] file_mode (0600, directories 0700),
    whoever creates them (Parquet writers, DuckDB, caches): the process umask is set meanwhile."""
    _, dir_mode = file_modes()
    previous = os.umask(0o777 & ~dir_mode)
    try:
        yield
    finally:
        os.umask(previous)


def _restrict_tree(directory: Path) -> None:
    """Give a staged tree [voterpipe] file_mode, whatever mode its writers chose."""
    file_mode, dir_mode = file_modes()
    os.chmod(directory, dir_mode)
    for path in directory.rglob("*"):
        os.chmod(path, dir_mode if path.is_dir() else file_mode)


def is_published(directory: Path) -> bool:
    """Whether the local directory holds a manifest (published_manifest() asks the data root)."""
    return (Path(directory) / MANIFEST).is_file()


def sweep_staging(final: Path) -> None:
    """Remove staging directories that crashed runs left beside `final`."""
    parent = final.parent
    if not parent.is_dir():
        return
    prefix = f".{final.name}{_STAGING_MARK}"
    for leftover in parent.iterdir():
        if leftover.name.startswith(prefix):
            pid = leftover.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
                continue  # another live process is still writing it
            shutil.rmtree(leftover, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid runs (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def publish_dir(final: Path, push: bool = True) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces `final` in one rename. With an
    s3:// root it is uploaded first (a stage's manifest last), unless `push` is False."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_staging(final)
    staging = final.parent / f".{final.name}{_STAGING_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        _restrict_tree(staging)
        _fsync_tree(staging)
        if push:
            _push(staging, final)
        if final.exists():
            # An older complete output is replaced: move it aside first so the swap is one rename.
            retired = final.parent / f".{final.name}.retired-{uuid.uuid4().hex[:8]}"
            os.rename(final, retired)
            os.rename(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[Any]:
    """Write a single file atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(obj: Any, path: Path) -> None:
    with atomic_file(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_manifest(directory: Path, manifest: dict) -> None:
    """The manifest holds no wall-clock values, so a rerun writes the same bytes."""
    write_json(manifest, Path(directory) / MANIFEST)


def read_manifest(directory: Path) -> dict:
    return read_json(Path(directory) / MANIFEST)


UNPUBLISHED_MANIFEST = "manifest.unpublished.json"


def unpublish(directory: Path) -> bool:
    """Mark a published stage directory for rebuilding: its manifest is renamed aside (kept for
    inspection), so the stage no longer counts as complete. False when it was not published."""
    directory = Path(directory)
    bucket = remote()
    if bucket is not None and _is_stage_dir(directory):
        found = object_store.unpublish_stage(bucket, directory, UNPUBLISHED_MANIFEST)
        if is_published(directory):
            os.replace(directory / MANIFEST, directory / UNPUBLISHED_MANIFEST)
        return found
    if not is_published(directory):
        return False
    os.replace(directory / MANIFEST, directory / UNPUBLISHED_MANIFEST)
    _fsync_dir(directory)
    return True


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write one Parquet file (inside a staging directory, or atomically on its own)."""
    with atomic_file(path, "wb") as handle:
        pq.write_table(table, handle, compression=PARQUET_COMPRESSION)


def write_query_parquet(con: Any, query: str, path: Path, row_group_size: int = 122_880) -> None:
    """Write a DuckDB query's result to one Parquet file, streamed out of core; use only inside a
    staging directory from publish_dir(). Row groups of DuckDB's vector-aligned size let readers
    scan in parallel and skip groups by their min/max statistics."""
    con.execute(f"COPY ({query}) TO '{str(path).replace(chr(39), chr(39) * 2)}' "
                f"(FORMAT parquet, COMPRESSION {PARQUET_COMPRESSION}, ROW_GROUP_SIZE {int(row_group_size)})")


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A streaming writer; use only inside a staging directory from publish_dir()."""
    return pq.ParquetWriter(path, schema, compression=PARQUET_COMPRESSION)


def read_parquet(path: Path, columns: list[str] | None = None, **options: Any) -> pa.Table:
    """`options` go to pyarrow.parquet.read_table (filters, read_dictionary)."""
    return pq.read_table(path, columns=columns, **options)


def file_sha256(path: Path, block_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


# an s3:// data root ---------------------------------------------------------------------------------
SHARED_CACHES = ("addresses", "geocodes", "tiger")  # kept on the bucket; others stay on the worker
_caches = cache_sync.CacheSync()


def remote() -> object_store.Bucket | None:
    """The bucket of an s3:// data root with its local scratch copy, or None for a local root."""
    url = config.remote_root()
    return None if url is None else _bucket(url, data_root(), config.s3_endpoint())


@functools.lru_cache(maxsize=8)
def _bucket(url: str, local_root: Path, endpoint: str) -> object_store.Bucket:
    return object_store.Bucket(url, local_root, endpoint)


def _layer_of(path: Path) -> str:
    """The first directory of `path` under the data root ('' when outside it)."""
    try:
        return Path(path).resolve().relative_to(data_root()).parts[0]
    except (ValueError, IndexError):
        return ""


def _is_stage_dir(directory: Path) -> bool:
    """A built stage's directory (02_canonical ... 07_reporting); raw drops and caches are plain files."""
    layer = _layer_of(directory)
    return layer in LAYERS.values() and layer != LAYERS["raw"]


def _push(staging: Path, final: Path) -> None:
    bucket = remote()
    if bucket is None or not Path(final).resolve().is_relative_to(bucket.local_root):
        return
    if _is_stage_dir(final):
        object_store.push_stage(bucket, staging, final, config.voterpipe().staging_sweep_minutes)
    else:
        object_store.push_tree(bucket, staging, final)


def published_manifest(directory: Path) -> dict | None:
    """The manifest of a published stage directory (on the bucket for an s3:// root), else None."""
    bucket = remote()
    if bucket is None or not _is_stage_dir(directory):
        return _local_manifest(directory)
    manifest = object_store.stage_manifest(bucket, directory)
    return None if manifest is None else {k: v for k, v in manifest.items() if k != object_store.OBJECTS}


def _local_manifest(directory: Path) -> dict | None:
    return read_manifest(directory) if is_published(directory) else None


def pull(directory: Path) -> None:
    """Bring a stage's input (a stage directory, a raw drop) from an s3:// root into the scratch
    copy; a stage whose local manifest equals the published one is not fetched again."""
    bucket, directory = remote(), Path(directory)
    if bucket is None or not (_is_stage_dir(directory) or _layer_of(directory) == LAYERS["raw"]):
        return  # a local root, or not a stage's input (caches are synced by cache_dir())
    with object_store.local_lock(directory):
        if _is_stage_dir(directory):
            object_store.pull_stage(bucket, directory, _local_manifest, functools.partial(publish_dir, push=False))
        else:
            object_store.pull_tree(bucket, directory)


def published_children(directory: Path) -> dict[str, dict]:
    """{name: manifest} of the published directories right under `directory` (cache/tiger's
    counties); for an s3:// root read from the bucket, without fetching their data."""
    bucket = remote()
    if bucket is not None and Path(directory).resolve().is_relative_to(bucket.local_root):
        return object_store.published_children(bucket, Path(directory))
    return {name: _local_manifest(Path(directory) / name) for name in child_names(directory, local=True)
            if is_published(Path(directory) / name)}


def child_names(directory: Path, local: bool = False) -> list[str]:
    """The names of the subdirectories of a directory under the data root (on the bucket for an
    s3:// root unless `local`): the states and snapshots of 01_raw/, say."""
    bucket = None if local else remote()
    if bucket is not None:
        return object_store.subdirectories(bucket, bucket.key(directory))
    return sorted(p.name for p in Path(directory).iterdir() if p.is_dir()) if Path(directory).is_dir() else []


def sweep_remote() -> dict[str, list[str]]:
    """s3:// root: sweep_stage() every stage (a killed writer's prefix outlives the grace when its
    stage is not published again); for a periodic job such as cron. {stage key: prefixes deleted}."""
    bucket = remote()
    if bucket is None:
        return {}
    layers = [data_root() / name for name in LAYERS.values() if name != LAYERS["raw"]]
    return object_store.sweep_layers(bucket, layers, config.voterpipe().staging_sweep_minutes)


def push_file(path: Path) -> None:
    """Upload one file written under the scratch copy to its place on an s3:// root (a record)."""
    bucket = remote()
    if bucket is not None and Path(path).resolve().is_relative_to(bucket.local_root):
        object_store.upload(bucket, Path(path), bucket.key(path))


def remote_files(directory: Path, marker: str) -> dict[str, dict]:
    """{name: {size, mtime_ns}} of a raw drop's files on the bucket (not hidden, not the marker)."""
    return object_store.drop_files(remote(), directory, marker)


def check_remote() -> None:
    """Fail at once, naming the endpoint, when an s3:// data root's bucket is missing or unreachable."""
    bucket = remote()
    if bucket is not None:
        object_store.check_bucket(bucket)


@contextlib.contextmanager
def synced_caches() -> Iterator[None]:
    """Around a task's work: each shared cache is synced down on its first use inside (again for
    every task), and the new parts go up after it, also when it failed (they are valid results)."""
    _caches.seen.clear()
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            _caches.push(remote())
        raise
    _caches.push(remote())
