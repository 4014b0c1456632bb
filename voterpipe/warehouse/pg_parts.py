"""Parallel load of one big PostgreSQL warehouse table: one connection per range of its split key,
each COPYing into a "part" table it commits; the publish attaches the parts as the slice's partitions.

One connection cannot write into another's uncommitted table, hence committed parts. They stay
invisible to readers: they are attached, as the partitions of a slice partitioned by the split
key, only in the publishing transaction. A failed publish drops its parts; parts left by a killed
process are dropped by the next publish of the slice.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import psycopg2
from psycopg2 import sql

from voterpipe.warehouse import copy_binary
from voterpipe.warehouse import tables as wt
from voterpipe.warehouse.pg_copy import BATCH_ROWS, WarehouseLoadError, copy_batches
from voterpipe.warehouse.pg_dsn import WarehouseConnectionError
from voterpipe.warehouse.pg_read import row_group_batches
from voterpipe.warehouse.pg_schema import (
    attach_slice, create_slice_table, index_and_analyse, partition_names, qualified,
)
from voterpipe.warehouse.tables import SourceFiles

log = logging.getLogger("voterpipe.warehouse")


@dataclass(frozen=True)
class TableLoad:
    """What every part of one table's load shares."""
    connect: Callable[[], object]  # a new psycopg2 connection to the warehouse
    schema: str
    files: SourceFiles
    table: wt.WarehouseTable
    select: str  # DuckDB query of the table's new slice
    arrow_schema: pa.Schema
    layout: dict[str, str]  # the warehouse table's columns and PostgreSQL types


def part_bounds(duck, table: wt.WarehouseTable, expected: int, copy_connections: int,
                rows_per_connection: int, path: Path | None = None) -> list[tuple]:
    """[(low, high), ...] split-key ranges (None = unbounded), one per connection; one range
    when the table is small, has no split key, or the key has NULLs (a range holds none).
    path: the row source's Parquet file; when its row groups are sorted by the key, each split
    moves to the nearest row-group start, so no row group is decoded by two parts."""
    connections = min(copy_connections, expected // max(rows_per_connection, 1))
    if table.split_key is None or connections < 2:
        return [(None, None)]
    key = wt.quote_ident(table.split_key)
    fractions = ", ".join(str(i / connections) for i in range(1, connections))
    nulls, splits = duck.execute(
        f"SELECT count(*) - count({key}), quantile_disc({key}, [{fractions}]) "
        f"FROM {wt.quote_ident('src_' + table.row_source)}").fetchall()[0]
    splits = sorted(set(s for s in splits or [] if s is not None))
    if nulls or not splits:
        return [(None, None)]
    if path is not None:
        splits = _snap_to_row_groups(path, table.split_key, splits, expected)
    edges = [None, *splits, None]
    return list(zip(edges[:-1], edges[1:]))


def _snap_to_row_groups(path: Path, key: str, splits: list, expected: int) -> list:
    """Each split replaced by the first key of the row group starting nearest to it (in rows),
    if the file's row groups hold ascending, non-overlapping key ranges and the move is small."""
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.to_arrow_schema().get_field_index(key)
    starts, rows, at = [], [], 0  # (first key, last key) of each row group; rows before it
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        stats = group.column(column).statistics if column >= 0 else None
        if stats is None or not stats.has_min_max or not isinstance(stats.min, str):
            return splits
        starts.append((stats.min, stats.max))
        rows.append(at)
        at += group.num_rows
    if any(low > high or previous[1] >= low for previous, (low, high) in zip(starts, starts[1:])) \
            or any(low > high for low, high in starts):
        return splits
    snapped = []
    for number, split in enumerate(splits, start=1):
        target = expected * number / (len(splits) + 1)
        group = min(range(1, len(starts)), key=lambda g: abs(rows[g] - target), default=None)
        # strings compare by code point here, byte-wise in DuckDB: the same order for UTF-8
        if group is None or abs(rows[group] - target) > 0.15 * expected:
            return splits
        snapped.append(starts[group][0])
    return sorted(set(snapped)) if len(set(snapped)) == len(snapped) else splits


def load_parts(load: TableLoad, bounds: list[tuple], parts: list[str]):
    """Load the table's key ranges concurrently, one connection each; record every committed part
    in `parts` (the caller drops them if the publish fails). Return the rows loaded, the NULs
    stripped by column, timings, and [(part name, bound), ...] for swap_in_parts."""
    final, _ = partition_names(load.table.name, load.files.state, load.files.snapshot)
    token = uuid.uuid4().hex[:8]
    names = [f"{final}__p{i}_{token}" for i in range(len(bounds))]
    abort = threading.Event()
    results: list = [None] * len(bounds)
    lock = threading.Lock()

    def load_one(index: int) -> None:
        try:
            results[index] = _load_part(load, names[index], bounds[index], abort,
                                        lambda: _append_locked(lock, parts, names[index]))
        except BaseException as exc:
            abort.set()
            results[index] = exc

    started = time.perf_counter()
    threads = [threading.Thread(target=load_one, args=(i,), name=f"copy-{load.table.name}-{i}")
               for i in range(len(bounds))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:  # interrupted: stop the loads before the caller drops their parts
        abort.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
        raise
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        # the first failure is the cause; the others were cancelled because of it
        first = next((e for e in errors if "cancelled because" not in str(e)), errors[0])
        raise first
    loaded = sum(r[0] for r in results)
    nul_stripped: collections.Counter = collections.Counter()
    for r in results:
        nul_stripped.update(r[1])
    timings = {"parts_seconds": [r[2] for r in results],
               "load_seconds": round(time.perf_counter() - started, 3)}
    return loaded, nul_stripped, timings, list(zip(names, bounds))


def _range_filters(key: str, low, high) -> tuple[str, sql.Composable]:
    """The range [low, high) of the split key as a DuckDB WHERE clause and as a PostgreSQL CHECK."""
    where = [f"{wt.quote_ident(key)} >= {wt.quote_literal(low)}" if low is not None else None,
             f"{wt.quote_ident(key)} < {wt.quote_literal(high)}" if high is not None else None]
    # the range is compared byte-wise ("C" collation), as DuckDB compares the strings
    in_range = sql.SQL(" AND ").join(
        [sql.SQL("{} IS NOT NULL").format(sql.Identifier(key))]
        + ([sql.SQL('({} COLLATE "C") >= {}').format(sql.Identifier(key), sql.Literal(low))]
           if low is not None else [])
        + ([sql.SQL('({} COLLATE "C") < {}').format(sql.Identifier(key), sql.Literal(high))]
           if high is not None else []))
    return " AND ".join(w for w in where if w), in_range


def _load_part(load: TableLoad, name: str, bound: tuple, abort: threading.Event, committed):
    """COPY one key range into part table `name` over a connection of its own, and commit it."""
    state, snapshot = load.files.state, load.files.snapshot
    final, _ = partition_names(load.table.name, state, snapshot)
    started = time.perf_counter()
    # one DuckDB thread per part: the parts already read in parallel, and more threads than
    # cores only add scheduling work next to the server's backends
    duck = duckdb.connect(config={"threads": 1})
    conn = load.connect()
    try:
        wt.register_sources(duck, load.files)
        where, in_range = _range_filters(load.table.split_key, *bound)
        columns = load.arrow_schema.names
        with conn.cursor() as cur:
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            create_slice_table(cur, load.schema, name, final, load.layout, state, snapshot, in_range)
            # whole row groups are read as they are; anything else goes through the select
            reader = row_group_batches(load.table, load.files.paths[load.table.row_source], bound,
                                       load.arrow_schema, state, snapshot, BATCH_ROWS) \
                or duck.sql(f"SELECT * FROM ({load.select}) WHERE {where}").to_arrow_reader(BATCH_ROWS)
            try:
                copied, nul_stripped = copy_batches(cur, load.schema, name, reader, columns,
                                                     copy_binary.supports(load.arrow_schema), abort)
            finally:
                reader.close()
            timings = {"copy_seconds": round(time.perf_counter() - started, 3)}
            index_and_analyse(cur, load.schema, name, load.table, columns, timings, unique_names=True)
        if abort.is_set():
            raise WarehouseLoadError("cancelled because a parallel load of the same table failed")
        committed()  # recorded before COMMIT: if COMMIT's answer is lost the part may exist
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise
    finally:
        conn.close()
        duck.close()
    timings["seconds"] = round(time.perf_counter() - started, 3)
    return copied, nul_stripped, timings


def swap_in_parts(cur, schema: str, table: wt.WarehouseTable, table_parts: list[tuple[str, tuple]],
                  layout: dict[str, str], state: str, snapshot: date) -> None:
    """Replace the slice with a table partitioned by the split key whose partitions are the
    parts (their indexes become the partitions of the parent's indexes; nothing is rebuilt)."""
    final, _ = partition_names(table.name, state, snapshot)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(schema, final)))
    definitions = [sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
                   for column, pg_type in layout.items()]
    cur.execute(sql.SQL('CREATE TABLE {} ({}) PARTITION BY RANGE ({} COLLATE "C")').format(
        qualified(schema, final), sql.SQL(", ").join(definitions), sql.Identifier(table.split_key)))
    for index, (name, (low, high)) in enumerate(table_parts):
        part = f"{final}__p{index}"
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(qualified(schema, name), sql.Identifier(part)))
        cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            qualified(schema, final), qualified(schema, part),
            sql.Literal(low) if low is not None else sql.SQL("MINVALUE"),
            sql.Literal(high) if high is not None else sql.SQL("MAXVALUE")))
    attach_slice(cur, schema, table.name, final, state, snapshot)


def drop_orphan_parts(cur, schema: str, state: str, snapshot: date) -> None:
    """Drop part tables of this slice that a killed publish committed but never attached
    (the caller holds the slice's lock, so no live publish of the slice owns them)."""
    prefixes = [f"{partition_names(t.name, state, snapshot)[0]}__p" for t in wt.TABLES]
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' AND NOT c.relispartition",
                [schema])
    for (name,) in cur.fetchall():
        if any(name.startswith(prefix) for prefix in prefixes):
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(schema, name)))
            log.info("warehouse postgres: dropped %s.%s left by an interrupted publish", schema, name)


def drop_parts_quietly(connect: Callable[[], object], schema: str, parts: list[str]) -> None:
    """Best effort after a failed publish; what is missed here the next publish drops."""
    if not parts:
        return
    try:
        conn = connect()
    except WarehouseConnectionError:
        return
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in parts:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(schema, name)))
    except psycopg2.Error:
        pass
    finally:
        conn.close()


def rollback_quietly(conn) -> None:
    """Roll back if the connection still works; a dead one already rolled back server-side."""
    if conn is None or conn.closed:
        return
    try:
        conn.rollback()
    except psycopg2.Error:
        pass


def _append_locked(lock: threading.Lock, items: list, item) -> None:
    with lock:
        items.append(item)
