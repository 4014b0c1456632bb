"""Persistent parse cache: cache key (raw address + ZIP) -> standardised result, one directory
per normalisation rules version (parse.RULES_VERSION), made of immutable part files written
atomically. Several processes may append at once: each writes its own uniquely named part.

Parts are uncompressed Arrow IPC files, memory-mapped on load, so opening the cache costs next to
nothing however large it is; Parquet parts written by earlier versions are still read (and
merged into an Arrow part by the next compaction).

A crash mid-write leaves at most a hidden temp file (ignored); a part is visible only once
complete. `compact()` merges parts into one file whose metadata names the parts it replaces, so
a crash between writing it and deleting them never double-counts an entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import storage
from voterpipe.addresses.keyhash import StringIndex

_s = pa.string()
CACHE_SCHEMA = pa.schema(
    [("cache_key", _s), ("house_number", _s), ("pre_dir", _s), ("street_name", _s),
     ("street_type", _s), ("post_dir", _s), ("unit_type", _s), ("unit_number", _s),
     ("standardized_line", _s), ("parse_status", _s), ("address_key", _s), ("building_key", _s)]
)
_REPLACES = b"voterpipe.replaces"
COMPACT_AFTER_PARTS = 16


class AddressCache:
    """The cache for one rules version under `root` (e.g. storage.cache_dir('addresses'))."""

    def __init__(self, root: Path, rules_version: str):
        self.directory = Path(root) / f"rules-{rules_version}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._table: pa.Table | None = None
        self._index: StringIndex | None = None

    def _visible_parts(self) -> list[Path]:
        parts = sorted(p for p in self.directory.iterdir()
                       if p.suffix in _SUFFIXES and not p.name.startswith("."))
        replaced: set[str] = set()
        for part in parts:
            if part.name.startswith("compact-"):
                meta = _read_schema(part).metadata or {}
                replaced.update(json.loads(meta.get(_REPLACES, b"[]")))
        for name in replaced:  # leftovers of a compaction interrupted before its deletes
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
        return [p for p in parts if p.name not in replaced]

    def _read_parts(self) -> list[pa.Table]:
        for attempt in range(3):
            try:
                return [_read_part(p) for p in self._visible_parts()]
            except FileNotFoundError:  # another process compacted the parts away: list again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def table(self) -> pa.Table:
        if self._table is None:
            tables = self._read_parts()
            self._table = pa.concat_tables(tables) if tables else CACHE_SCHEMA.empty_table()
        return self._table

    def __len__(self) -> int:
        return self.table().num_rows

    def positions(self, keys: pa.Array) -> np.ndarray:
        """The row of each of `keys` in table(), or -1 when it is not cached."""
        cached = self.table()
        if self._index is None:
            self._index = StringIndex(cached["cache_key"].combine_chunks())
        return self._index.positions(keys.cast(_s))

    def append(self, rows: pa.Table) -> Path | None:
        """Add new entries as one immutable part file (atomic rename)."""
        if rows.num_rows == 0:
            return None
        rows = rows.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA)
        path = self.directory / f"part-{uuid.uuid4().hex}{_ARROW}"
        _write_part(rows, path)
        if self._table is not None:
            self._table = pa.concat_tables([self._table, rows])
            self._index = None
        if len(self._visible_parts()) > COMPACT_AFTER_PARTS:
            self.compact()
        return path

    def compact(self) -> None:
        parts = self._visible_parts()
        if len(parts) < 2:
            return
        try:
            merged = pa.concat_tables([_read_part(p) for p in parts])
        except FileNotFoundError:
            return  # another process is compacting the same parts
        meta = {_REPLACES: json.dumps([p.name for p in parts]).encode()}
        merged = merged.replace_schema_metadata(meta)
        _write_part(merged, self.directory / f"compact-{uuid.uuid4().hex}{_ARROW}")
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        self._table = None
        self._index = None


_ARROW = ".arrow"
_SUFFIXES = (_ARROW, ".parquet")  # .parquet: parts written before the cache moved to Arrow IPC


def _read_schema(path: Path) -> pa.Schema:
    if path.suffix == ".parquet":
        return pq.read_schema(path)
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).schema


def _read_part(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path, schema=CACHE_SCHEMA)
    # The table keeps the mapping alive; it stays valid even if a compaction unlinks the file.
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return table.replace_schema_metadata(None).cast(CACHE_SCHEMA)


def _write_part(rows: pa.Table, path: Path) -> None:
    """One immutable part, made visible by an atomic rename once complete and fsynced."""
    with storage.atomic_file(path, "wb") as handle:
        with pa.ipc.new_file(handle, rows.schema) as writer:
            writer.write_table(rows)
