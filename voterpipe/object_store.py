"""The object-storage side of an s3:// data root (pyarrow.fs.S3FileSystem): a stage's objects go
under a run prefix and its manifest, written last, names that prefix; stage directories, raw drops
and caches are mirrored between the bucket and the worker's local scratch copy.

storage.py decides when; this module only moves objects. Remote layout = local layout under the
root, except a stage directory: <stage>/manifest.json names <stage>/run-<utc>-<id>/ holding its files.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.fs as pafs

MANIFEST = "manifest.json"
OBJECTS = "objects"  # the remote manifest's key naming its run prefix and files (not in local copies)
RUN_MARK = "run-"
_COPY_BLOCK = 8 << 20
PARALLEL_TRANSFERS = 8


class ObjectStoreError(RuntimeError):
    """The object store could not be reached or refused a request; the message names the endpoint."""


@dataclass(frozen=True)
class Bucket:
    """An s3:// data root and the local directory mirroring it."""

    url: str  # s3://bucket/prefix
    local_root: Path
    endpoint: str  # '' = AWS itself

    @property
    def base(self) -> str:
        return self.url[len("s3://"):].rstrip("/")

    @property
    def fs(self) -> pafs.S3FileSystem:
        return _filesystem(self.endpoint, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""))

    def key(self, local: Path) -> str:
        """The object key (bucket/prefix/...) mirroring a local path under local_root."""
        relative = Path(local).resolve().relative_to(self.local_root).as_posix()
        return self.base if relative == "." else f"{self.base}/{relative}"

    def where(self) -> str:
        return self.endpoint or "AWS S3 (no endpoint_url set)"


@functools.lru_cache(maxsize=8)
def _filesystem(endpoint: str, region: str) -> pafs.S3FileSystem:
    options = {"connect_timeout": 5.0, "request_timeout": 60.0,
               "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=4)}
    if endpoint:
        options["endpoint_override"] = endpoint
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


@contextlib.contextmanager
def _errors(bucket: Bucket, action: str, key: str) -> Iterator[None]:
    """A missing object stays FileNotFoundError; anything else names the endpoint and the key."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ObjectStoreError(f"object storage at {bucket.where()} failed to {action} s3://{key}: {reason}"
                               f" (check [s3] endpoint_url / $AWS_ENDPOINT_URL and the AWS credentials)") from None


# single objects ----------------------------------------------------------------------------------
def read_json(bucket: Bucket, key: str) -> dict | None:
    """The JSON object at `key`, or None when there is none."""
    try:
        with _errors(bucket, "read", key), bucket.fs.open_input_stream(key) as stream:
            return json.loads(stream.read())
    except FileNotFoundError:
        return None


def write_bytes(bucket: Bucket, key: str, data: bytes) -> None:
    with _errors(bucket, "write", key), bucket.fs.open_output_stream(key) as stream:
        stream.write(data)


def listing(bucket: Bucket, key: str) -> dict[str, pafs.FileInfo]:
    """Every object under `key`/ by its path relative to it (recursive; {} when none)."""
    selector = pafs.FileSelector(key, recursive=True, allow_not_found=True)
    with _errors(bucket, "list", key):
        infos = bucket.fs.get_file_info(selector)
    return {info.path[len(key) + 1:]: info for info in infos if info.type == pafs.FileType.File}


_manifests_read: dict[tuple[str, int, int], dict] = {}  # (key, size, mtime_ns) -> manifest, per process


def published_children(bucket: Bucket, directory: Path) -> dict[str, dict]:
    """{name: manifest} of the directories right under `directory` whose manifest is uploaded
    (a TIGER county: its manifest goes last); each manifest version is read once per process."""
    found = {}
    for name, info in sorted(listing(bucket, bucket.key(directory)).items()):
        child, _, rest = name.partition("/")
        if rest != MANIFEST:
            continue
        version = (info.path, info.size, info.mtime_ns)
        if version not in _manifests_read:
            manifest = read_json(bucket, info.path)
            if manifest is None:
                continue
            _manifests_read[version] = manifest
        found[child] = _manifests_read[version]
    return found


def check_bucket(bucket: Bucket) -> None:
    """ObjectStoreError naming the endpoint unless the bucket exists and can be reached."""
    name = bucket.base.split("/", 1)[0]
    with _errors(bucket, "find the bucket of", bucket.base):
        found = bucket.fs.get_file_info(name)
    if found.type == pafs.FileType.NotFound:
        raise ObjectStoreError(f"object storage at {bucket.where()} has no bucket {name!r} (data root {bucket.url})")


def subdirectories(bucket: Bucket, key: str) -> list[str]:
    """The names of the 'directories' right under `key` (one delimited listing)."""
    selector = pafs.FileSelector(key, recursive=False, allow_not_found=True)
    with _errors(bucket, "list", key):
        infos = bucket.fs.get_file_info(selector)
    return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)


def drop_files(bucket: Bucket, directory: Path, marker: str) -> dict[str, dict]:
    """{name: {size, mtime_ns}} of a raw drop's objects, as drops.data_files: not hidden, not the marker."""
    found = listing(bucket, bucket.key(directory))
    return {name: {"size": info.size, "mtime_ns": info.mtime_ns} for name, info in sorted(found.items())
            if name.rsplit("/", 1)[-1] != marker and not any(p.startswith(".") for p in name.split("/"))}


@contextlib.contextmanager
def local_lock(directory: Path) -> Iterator[None]:
    """One process at a time fetches (or syncs) a directory of this machine's scratch copy."""
    import fcntl
    import hashlib

    locks = Path(tempfile.gettempdir()) / "voterpipe-locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(str(Path(directory).resolve()).encode()).hexdigest()[:16]
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upload(bucket: Bucket, local: Path, key: str) -> None:
    with _errors(bucket, "upload to", key), open(local, "rb") as source, \
            bucket.fs.open_output_stream(key) as target:
        for block in iter(lambda: source.read(_COPY_BLOCK), b""):
            target.write(block)


def download(bucket: Bucket, key: str, local: Path, mtime_ns: int | None = None) -> None:
    """Copy one object to `local` through a hidden temp file (readers never see half a file); the
    local mtime is the object's, so size/mtime checks compare like with like."""
    local.parent.mkdir(parents=True, exist_ok=True)
    temp = local.parent / f".{local.name}.{uuid.uuid4().hex[:8]}.download"
    try:
        with _errors(bucket, "download", key), bucket.fs.open_input_stream(key) as source, \
                open(temp, "wb") as target:
            for block in iter(lambda: source.read(_COPY_BLOCK), b""):
                target.write(block)
        if mtime_ns is not None:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, local)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def delete(bucket: Bucket, keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(FileNotFoundError), _errors(bucket, "delete", key):
            bucket.fs.delete_file(key)


# stages: objects under a run prefix, the manifest last ---------------------------------------------
def stage_manifest(bucket: Bucket, final: Path) -> dict | None:
    """The published manifest of a stage directory (with its OBJECTS entry), or None."""
    return read_json(bucket, f"{bucket.key(final)}/{MANIFEST}")


def push_stage(bucket: Bucket, staging: Path, final: Path, sweep_minutes: float) -> str:
    """Upload a built stage directory under a new run prefix beside `final`, then its manifest
    naming that prefix; return the prefix. Until the manifest is written the stage is unchanged."""
    base = bucket.key(final)
    run = f"{RUN_MARK}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    paths = sorted(p for p in Path(staging).rglob("*") if p.is_file() and p.name != MANIFEST)
    files = {path.relative_to(staging).as_posix(): path.stat().st_size for path in paths}
    in_parallel(lambda path: upload(bucket, path, f"{base}/{run}/{path.relative_to(staging).as_posix()}"), paths)
    manifest = json.loads((Path(staging) / MANIFEST).read_text(encoding="utf-8"))
    manifest[OBJECTS] = {"prefix": run, "files": files}
    write_bytes(bucket, f"{base}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    # records beside the old publication (a failed gate's values, an unpublished manifest) go, as
    # they do when the local directory is replaced
    delete(bucket, [f"{base}/{name}" for name in listing(bucket, base) if "/" not in name and name != MANIFEST])
    sweep_stage(bucket, final, sweep_minutes, keep=run)
    return run


def sweep_stage(bucket: Bucket, final: Path, older_than_minutes: float, keep: str | None = None) -> list[str]:
    """Delete the run prefixes beside `final` that no manifest names, once their newest object is
    older than `older_than_minutes` (a live writer may still be uploading a younger one)."""
    base = bucket.key(final)
    if keep is None:
        current = stage_manifest(bucket, final)
        keep = ((current or {}).get(OBJECTS) or {}).get("prefix")
    newest: dict[str, int] = {}
    for name, info in listing(bucket, base).items():
        prefix = name.split("/", 1)[0]
        if "/" in name and prefix.startswith(RUN_MARK) and prefix != keep:
            newest[prefix] = max(newest.get(prefix, 0), info.mtime_ns or 0)
    cutoff = time.time_ns() - int(older_than_minutes * 60e9)
    swept = sorted(prefix for prefix, mtime in newest.items() if mtime <= cutoff)
    for prefix in swept:
        with _errors(bucket, "delete", f"{base}/{prefix}"):
            bucket.fs.delete_dir(f"{base}/{prefix}")
    return swept


def leftover_stages(bucket: Bucket, layer: Path) -> list[Path]:
    """The stage directories under a layer whose run prefixes are not all named by a manifest, or
    may not be: more than one run prefix, or run prefixes and no manifest (one listing)."""
    runs: dict[str, set[str]] = {}
    published = set()
    for name in listing(bucket, bucket.key(layer)):
        parts = name.split("/")
        if parts[-1] == MANIFEST:
            published.add("/".join(parts[:-1]))
        marks = [i for i, part in enumerate(parts[:-1]) if part.startswith(RUN_MARK)]
        if marks:
            runs.setdefault("/".join(parts[:marks[0]]), set()).add(parts[marks[0]])
    return [layer / stage for stage, prefixes in sorted(runs.items())
            if len(prefixes) > 1 or stage not in published]


def sweep_layers(bucket: Bucket, layers: list[Path], older_than_minutes: float) -> dict[str, list[str]]:
    """sweep_stage() for every stage directory of `layers` with leftovers; {stage key: prefixes deleted}."""
    swept = {}
    for layer in layers:
        for directory in leftover_stages(bucket, layer):
            if gone := sweep_stage(bucket, directory, older_than_minutes):
                swept[bucket.key(directory)] = gone
    return swept


def fetch_stage(bucket: Bucket, final: Path, manifest: dict, target: Path) -> None:
    """Download the files the remote `manifest` names into the local directory `target`."""
    objects = manifest.get(OBJECTS) or {}
    base = f"{bucket.key(final)}/{objects.get('prefix', '')}"
    in_parallel(lambda name: download(bucket, f"{base}/{name}", target / name), sorted(objects.get("files", {})))


def in_parallel(action, items: list) -> None:
    """Run `action` on every item, a few at a time (object stores answer each request with some
    latency); the first error is raised once all are done."""
    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_TRANSFERS, len(items))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


def pull_stage(bucket: Bucket, final: Path, local_manifest, publish) -> None:
    """Copy a published stage into the local directory `final` unless its local manifest is the
    published one; `publish(final)` is the local atomic publication (storage.publish_dir)."""
    for attempt in range(3):
        manifest = stage_manifest(bucket, final)
        if manifest is None:
            raise FileNotFoundError(f"s3://{bucket.key(final)} is not published (no {MANIFEST}) on {bucket.where()}")
        objects = manifest.pop(OBJECTS, None)
        if local_manifest(final) == manifest:
            return
        try:
            with publish(final) as staging:
                fetch_stage(bucket, final, {OBJECTS: objects}, staging)
                (Path(staging) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                                      encoding="utf-8")
            return
        except FileNotFoundError:  # republished and its prefix swept while we read: read again
            if attempt == 2:
                raise


def unpublish_stage(bucket: Bucket, final: Path, aside: str) -> bool:
    """Move a stage's manifest aside (copy, then delete): the stage is no longer complete."""
    base = bucket.key(final)
    with _errors(bucket, "move aside", f"{base}/{MANIFEST}"):
        try:
            bucket.fs.copy_file(f"{base}/{MANIFEST}", f"{base}/{aside}")
        except FileNotFoundError:
            return False
        bucket.fs.delete_file(f"{base}/{MANIFEST}")
    return True


# plain trees: raw drops, TIGER counties, caches ------------------------------------------------
def push_tree(bucket: Bucket, local_dir: Path, final: Path) -> None:
    """Upload the files of `local_dir` to the keys of `final`; a manifest goes last."""
    base = bucket.key(final)
    files = sorted((p for p in Path(local_dir).rglob("*") if p.is_file()), key=lambda p: p.name == MANIFEST)
    for path in files:
        upload(bucket, path, f"{base}/{path.relative_to(local_dir).as_posix()}")


def pull_tree(bucket: Bucket, local_dir: Path) -> int:
    """Make `local_dir` mirror the objects under its key: download what is missing or differs in
    size or mtime, delete local files the store does not hold. Return the files downloaded."""
    remote = listing(bucket, bucket.key(local_dir))
    changed = [(name, info) for name, info in sorted(remote.items()) if not _same(local_dir / name, info)]
    in_parallel(lambda item: download(bucket, item[1].path, local_dir / item[0], item[1].mtime_ns), changed)
    if local_dir.is_dir():
        for path in local_dir.rglob("*"):
            name = path.relative_to(local_dir).as_posix()
            if path.is_file() and name not in remote and not path.name.startswith("."):
                path.unlink()
    return len(changed)


def _same(path: Path, info: pafs.FileInfo) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == info.size and stat.st_mtime_ns == info.mtime_ns
