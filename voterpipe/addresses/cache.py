"""Persistent parse cache: cache key (raw address + ZIP) -> standardised result, one directory
per normalisation rules version (parse.RULES_VERSION), made of immutable part files written
atomically. Several processes may append at once: each writes its own uniquely named part.

Parts are uncompressed Arrow IPC files, memory-mapped on load, so opening the cache costs next to
nothing however large it is; Parquet parts written by earlier versions are still read (and
merged into an Arrow part by the next compaction).

A crash mid-write leaves at most a hidden temp file (ignored); a part is visible only once
complete. `compact()` merges parts into one file whose metadata names the parts it replaces, so
a crash between writing it and deleting them never double-counts an entry. Compactions take the
directory's lock (cache_lock), so two never merge the same parts; appends need no lock, and a
compaction deletes only parts it listed and read, after its merged file is in place, so an
append racing it is never lost.
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
from voterpipe.addresses.keyhash import StringIndex, group_strings
from voterpipe.cache_lock import compaction_lock

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

    def __init__(self, root: Path, rules_version: str, compact_after: int | None = COMPACT_AFTER_PARTS):
        """compact_after: compact inline when an append leaves more parts than this (None: never;
        partition tasks leave it to the CompactCaches task)."""
        self.compact_after = compact_after
        self.directory = Path(root) / f"rules-{rules_version}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._table: pa.Table | None = None
        self._index: StringIndex | None = None

    def _visible_parts(self) -> list[Path]:
        for attempt in range(5):
            parts = sorted(p for p in self.directory.iterdir()
                           if p.suffix in _SUFFIXES and not p.name.startswith("."))
            try:
                replaced = _replaced_by_compactions(parts)
                break
            except FileNotFoundError:  # a compaction replaced that compacted part meanwhile: list again
                if attempt == 4:
                    raise
        for name in replaced:  # leftovers of a compaction interrupted before its deletes
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
        return [p for p in parts if p.name not in replaced]

    def _read_parts(self) -> tuple[list[Path], list[pa.Table]]:
        for attempt in range(5):
            try:
                parts = self._visible_parts()
                return parts, [_read_part(p) for p in parts]
            except FileNotFoundError:  # another process compacted the parts away: list again
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def table(self) -> pa.Table:
        if self._table is None:
            parts, tables = self._read_parts()
            table = pa.concat_tables(tables) if tables else CACHE_SCHEMA.empty_table()
            if sum(p.name.startswith("compact-") for p in parts) > 1:
                # Compactions on two machines (the lock is per machine) may have merged the same
                # parts: count each key once until the next compaction merges them.
                table = _first_per_key(table)
            self._table = table
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
        if self.compact_after is not None and len(self._visible_parts()) > self.compact_after:
            self.compact()
        return path

    def append_stream(self, tables) -> Path | None:
        """append() for rows that come as a sequence of tables: one part, never all in memory."""
        path = self.directory / f"part-{uuid.uuid4().hex}{_ARROW}"
        rows = _write_part((t.select(CACHE_SCHEMA.names).cast(CACHE_SCHEMA) for t in tables), path, CACHE_SCHEMA)
        if rows == 0:
            return None
        self._table = None
        self._index = None
        if self.compact_after is not None and len(self._visible_parts()) > self.compact_after:
            self.compact()
        return path

    def slices(self, rows: int = 262_144):
        """The rows of table() as consecutive tables of at most `rows`, each from a mapping of its
        own, so the file pages a caller touches are released with the slice."""
        parts, tables = self._read_parts()
        counts = [t.num_rows for t in tables]
        if sum(p.name.startswith("compact-") for p in parts) > 1:
            del tables
            whole = self.table()
            for start in range(0, whole.num_rows, rows):
                yield whole.slice(start, rows)
            return
        del tables  # drop these mappings: each slice maps its part afresh
        for part, count in zip(parts, counts):
            for start in range(0, count, rows):
                yield _read_part(part).slice(start, rows)

    def parts(self) -> int:
        """How many part files a reader opens now."""
        return len(self._visible_parts())

    def compact(self, wait_seconds: float = 0.0) -> int:
        """Merge the visible parts into one; return how many it replaced (0 when there was
        nothing to merge, or another process held the lock for `wait_seconds`)."""
        with compaction_lock(self.directory, wait_seconds) as held:
            if not held:
                return 0
            parts = self._visible_parts()
            if len(parts) < 2:
                return 0
            try:
                merged = _first_per_key(pa.concat_tables([_read_part(p) for p in parts]))
            except FileNotFoundError:  # a compaction by a version without the lock
                return 0
            meta = {_REPLACES: json.dumps([p.name for p in parts]).encode()}
            _write_part(merged.replace_schema_metadata(meta), self.directory / f"compact-{uuid.uuid4().hex}{_ARROW}")
            for part in parts:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)
        self._table = None
        self._index = None
        return len(parts)


def _replaced_by_compactions(parts: list[Path]) -> set[str]:
    replaced: set[str] = set()
    for part in parts:
        if part.name.startswith("compact-"):
            meta = _read_schema(part).metadata or {}
            replaced.update(json.loads(meta.get(_REPLACES, b"[]")))
    return replaced


def _first_per_key(table: pa.Table) -> pa.Table:
    """One row per cache_key (the first): parts written by two processes that parsed the same
    new string at once hold it twice, with the same result."""
    codes, first = group_strings(table["cache_key"].combine_chunks())
    if len(first) == table.num_rows:
        return table
    return table.take(pa.array(np.sort(first)))


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


def _write_part(rows, path: Path, schema: pa.Schema | None = None) -> int:
    """One immutable part, made visible by an atomic rename once complete and fsynced; `rows` is
    a table or (with `schema`) a sequence of tables. Nothing is written when there are no rows."""
    tables = [rows] if isinstance(rows, pa.Table) else rows
    written = 0
    with contextlib.ExitStack() as stack:
        writer = None
        for table in tables:
            if table.num_rows == 0:
                continue
            if writer is None:
                handle = stack.enter_context(storage.atomic_file(path, "wb"))
                writer = stack.enter_context(pa.ipc.new_file(handle, schema or table.schema))
            writer.write_table(table)
            written += table.num_rows
    return written
