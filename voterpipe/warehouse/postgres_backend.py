"""The PostgreSQL warehouse (psycopg2): COPY streamed from the upstream Parquet files into one
partition per (state, snapshot), swapped in atomically.

How a publish stays atomic and idempotent:
- every table is partitioned BY RANGE (state, snapshot); each slice is one partition covering
  [(state, snapshot), (state, snapshot + 1 day));
- in ONE transaction: per table, a staging table is created, filled with COPY (FREEZE; with
  wal_level=minimal PostgreSQL also skips WAL for it), indexed and analysed; then the old
  partition of the slice is dropped, the staging table renamed and attached, and the marker rows
  written. Readers see the old slice until COMMIT and the new one after it; a failure or a kill
  at any point rolls everything back, leaving the old slice as it was. Republishing replaces.
- a big table (rows_per_connection rows or more per connection) is loaded faster over
  copy_connections connections at once, each COPYing one range of the table's split key into a
  "part" table it commits itself; the parts are attached (as partitions of the slice, which is
  then partitioned by the split key) only inside the publishing transaction, so readers still
  switch from the whole old slice to the whole new one at COMMIT. A failed publish drops its
  parts; parts a killed process committed are dropped by the next publish of the slice.
- the marker column nul_stripped records how many NUL characters the COPY stripped from the
  table (pg_copy.py: how rows are rendered, and why NUL cannot be loaded).
- The DSN's password never reaches a log line or an exception message (pg_dsn.py).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import psycopg2
import psycopg2.errors
from psycopg2 import sql

from voterpipe.warehouse import copy_binary
from voterpipe.warehouse import pg_dsn
from voterpipe.warehouse import tables as wt
from voterpipe.warehouse.pg_copy import (
    BATCH_ROWS, WarehouseLoadError, arrow_to_pg_type, copy_batches, describe_pg_error,
)
from voterpipe.warehouse.pg_dsn import WarehouseConnectionError, describe_dsn, redact
from voterpipe.warehouse.tables import SourceFiles, WarehouseInputError

log = logging.getLogger("voterpipe.warehouse")

COPY_CONNECTIONS = 2  # the server parses COPY on one core per connection
ROWS_PER_CONNECTION = 250_000  # below this a second connection costs more than it saves
SCHEMA_LOCK_KEY = 0x766F746572  # pg_advisory_xact_lock key serialising schema changes


class PostgresWarehouse:
    backend = "postgres"

    def __init__(self, dsn: str, schema: str = "voterpipe", copy_connections: int = COPY_CONNECTIONS,
                 rows_per_connection: int = ROWS_PER_CONNECTION):
        """copy_connections: how many connections load one big table at once (each COPYs a range
        of the table's split key); a table gets one per rows_per_connection rows, at least one."""
        if not dsn:
            raise WarehouseConnectionError(
                "no PostgreSQL DSN: set $VOTERPIPE_PG_DSN or [warehouse] dsn in luigi.cfg")
        self._dsn = dsn
        self.schema = schema
        self.copy_connections = max(1, int(copy_connections))
        self.rows_per_connection = max(1, int(rows_per_connection))

    def __repr__(self) -> str:
        return f"PostgresWarehouse({describe_dsn(self._dsn)!r}, schema={self.schema!r})"

    def describe(self) -> str:
        return f"{describe_dsn(self._dsn)} schema={self.schema}"

    def connect(self):
        return pg_dsn.connect(self._dsn, application_name="voterpipe-warehouse")

    def _name(self, name: str) -> sql.Composed:
        return sql.Identifier(self.schema, name)

    # schema ---------------------------------------------------------------------------------

    def ensure_schema(self, conn, table_schemas: dict[str, pa.Schema]) -> dict[str, dict[str, str]]:
        """Create or migrate (add columns, indexes, views) in a transaction of its own; return
        every table's columns and PostgreSQL types, in table order."""
        layouts = {}
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            cur.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "state text NOT NULL, snapshot date NOT NULL, table_name text NOT NULL, "
                "row_count bigint NOT NULL, checksum text NOT NULL, "
                "nul_stripped bigint NOT NULL DEFAULT 0, "
                "published_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (state, snapshot, table_name))").format(self._name(wt.MARKER_TABLE)))
            for table in wt.TABLES:
                arrow_schema = table_schemas[table.name]
                existing = self._columns(cur, table.name)
                changed = existing is None
                if existing is None:
                    columns = sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(arrow_to_pg_type(f)))
                        for f in arrow_schema)
                    cur.execute(sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (state, snapshot)")
                                .format(self._name(table.name), columns))
                    log.info("warehouse postgres: created table %s.%s", self.schema, table.name)
                    existing = {f.name: arrow_to_pg_type(f) for f in arrow_schema}
                else:
                    for field in arrow_schema:
                        wanted = arrow_to_pg_type(field)
                        if field.name not in existing:
                            cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                                self._name(table.name), sql.Identifier(field.name), sql.SQL(wanted)))
                            existing[field.name] = wanted
                            changed = True
                            log.info("warehouse postgres: added column %s.%s", table.name, field.name)
                        elif existing[field.name] != wanted and not pa.types.is_null(field.type):
                            raise WarehouseInputError(
                                f"{table.name}.{field.name} is {existing[field.name]} in the warehouse "
                                f"but the new data has {wanted}")
                layouts[table.name] = existing
                # DDL only where something is missing: even a no-op CREATE INDEX IF NOT EXISTS
                # or CREATE OR REPLACE VIEW takes locks that queue behind readers and other publishes
                for columns in self._indexes(table, existing):
                    if not self._exists(cur, _index_name(table.name, columns)):
                        cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                            sql.Identifier(_index_name(table.name, columns)), self._name(table.name),
                            sql.SQL(", ").join(map(sql.Identifier, columns))))
                if not changed and self._exists(cur, table.view):
                    continue
                cur.execute(sql.SQL(
                    "CREATE OR REPLACE VIEW {} AS SELECT t.* FROM {} t JOIN ("
                    "SELECT state, max(snapshot) AS snapshot FROM {} WHERE table_name = {} "
                    "GROUP BY state) latest ON t.state = latest.state AND t.snapshot = latest.snapshot"
                ).format(self._name(table.view), self._name(table.name),
                         self._name(wt.MARKER_TABLE), sql.Literal(table.name)))
        return layouts

    def _exists(self, cur, relation: str) -> bool:
        cur.execute("SELECT to_regclass(%s)", [self._name(relation).as_string(cur)])
        return cur.fetchone()[0] is not None

    def _columns(self, cur, table: str) -> dict[str, str] | None:
        cur.execute("SELECT to_regclass(%s)", [sql.Identifier(self.schema, table).as_string(cur)])
        oid_name = cur.fetchone()[0]
        if oid_name is None:
            return None
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [sql.Identifier(self.schema, table).as_string(cur)])
        return dict(cur.fetchall())

    @staticmethod
    def _indexes(table: wt.WarehouseTable, columns) -> list[tuple[str, ...]]:
        return [cols for cols in table.indexes if all(c in columns for c in cols)]

    # publish --------------------------------------------------------------------------------

    def publish(self, files: SourceFiles) -> dict:
        """Replace the (state, snapshot) slice of every warehouse table in one transaction."""
        started = time.perf_counter()
        state, snapshot = files.state, files.snapshot
        report: dict = {"backend": self.backend, "state": state, "snapshot": snapshot.isoformat(),
                        "tables": {}}
        log.info("warehouse postgres: publishing %s %s to %s", state, snapshot, self.describe())
        duck = duckdb.connect()
        conn = None
        parts: list[str] = []  # committed part tables not yet attached (dropped on failure)
        copy_binary.warm_up()
        try:
            wt.register_sources(duck, files)
            selects = {t.name: wt.table_sql(duck, t.name, state, snapshot) for t in wt.TABLES}
            arrow_schemas = {name: duck.sql(f"SELECT * FROM ({select}) LIMIT 0").to_arrow_table().schema
                             for name, select in selects.items()}
            conn = self.connect()
            layouts = self.ensure_schema(conn, arrow_schemas)
            with conn.cursor() as cur:
                cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                            [f"voterpipe:{self.schema}:{state}:{snapshot.isoformat()}"])
                self._drop_orphan_parts(cur, state, snapshot)
                staged = []
                for table in wt.TABLES:
                    table_staged, report["tables"][table.name] = self._stage_table(
                        cur, duck, files, table, selects[table.name], arrow_schemas[table.name],
                        layouts[table.name], parts)
                    staged.append(table_staged)
                swap_started = time.perf_counter()
                for table, stage, table_parts, loaded, checksum, nul_stripped in staged:
                    if table_parts:
                        self._swap_in_parts(cur, table, table_parts, layouts[table.name], state, snapshot)
                    else:
                        self._swap_in(cur, table, stage, state, snapshot)
                    self._write_marker(cur, state, snapshot, table.name, loaded, checksum,
                                       sum(nul_stripped.values()))
            conn.commit()
            parts.clear()
            report["swap_seconds"] = round(time.perf_counter() - swap_started, 3)
        except psycopg2.Error as exc:
            _rollback_quietly(conn)
            self._drop_parts_quietly(parts)
            raise WarehouseLoadError(
                f"publishing {state} {snapshot} failed, the published data is unchanged: "
                f"{redact(describe_pg_error(exc), self._dsn)}") from None
        except BaseException:
            _rollback_quietly(conn)
            self._drop_parts_quietly(parts)
            raise
        finally:
            duck.close()
            if conn is not None:
                conn.close()
        report["seconds"] = round(time.perf_counter() - started, 3)
        log.info("warehouse postgres: published %s %s in %.2fs", state, snapshot, report["seconds"])
        return report

    def _stage_table(self, cur, duck, files: SourceFiles, table: wt.WarehouseTable, select: str,
                     arrow_schema: pa.Schema, layout: dict[str, str], parts: list[str]):
        """Load one table's new slice (a staging table in this transaction, or committed parts over
        several connections) and check its row count; return what the swap needs, and the
        table's report entry."""
        state, snapshot = files.state, files.snapshot
        table_started = time.perf_counter()
        expected = wt.source_row_count(duck, table.row_source)
        bounds = self._part_bounds(duck, table, expected)
        if len(bounds) > 1:
            loaded, nul_stripped, timings, table_parts = self._load_parts(
                files, table, select, arrow_schema, layout, state, snapshot, bounds, parts)
            stage = None
        else:
            stage, loaded, nul_stripped, timings = self._load_stage(
                cur, duck, table, select, arrow_schema, layout, state, snapshot)
            table_parts = []
        if loaded != expected:
            raise WarehouseInputError(wt.explain_row_mismatch(duck, table, files, loaded, expected))
        seconds = time.perf_counter() - table_started
        checksum = files.digest(table.sources)
        entry = {"rows": loaded, "seconds": round(seconds, 3), "checksum": checksum,
                 "nul_stripped": sum(nul_stripped.values()),
                 "nul_stripped_by_column": dict(nul_stripped), "copy_connections": len(bounds),
                 **timings}
        log.info("warehouse postgres %s %s: %s staged %d rows over %d connection(s) in "
                 "%.2fs (%.0f rows/s)%s", state, snapshot, table.name, loaded, len(bounds),
                 seconds, loaded / max(seconds, 1e-9),
                 f", stripped NUL characters {dict(nul_stripped)}" if nul_stripped else "")
        return (table, stage, table_parts, loaded, checksum, nul_stripped), entry

    def _write_marker(self, cur, state: str, snapshot: date, table_name: str, rows: int,
                      checksum: str, nul_stripped: int) -> None:
        cur.execute(sql.SQL(
            "INSERT INTO {} (state, snapshot, table_name, row_count, checksum, nul_stripped, "
            "published_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (state, snapshot, table_name) DO UPDATE SET "
            "row_count = EXCLUDED.row_count, checksum = EXCLUDED.checksum, "
            "nul_stripped = EXCLUDED.nul_stripped, published_at = EXCLUDED.published_at"
        ).format(self._name(wt.MARKER_TABLE)), [state, snapshot, table_name, rows, checksum, nul_stripped])

    def _partition_names(self, table: str, state: str, snapshot: date) -> tuple[str, str]:
        final = f"{table}__{state}_{snapshot:%Y%m%d}"
        return final, f"{final}__loading"

    def _create_stage_table(self, cur, name: str, final: str, layout: dict[str, str], state: str,
                            snapshot: date, extra_check: sql.Composable | None = None) -> None:
        # spelled out rather than LIKE parent: LIKE would hold a lock on the parent for the whole
        # load, and two publishes of different states would then deadlock at their swaps
        definitions = [sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
                       for column, pg_type in layout.items()]
        check = sql.SQL("state = {} AND snapshot = {}").format(sql.Literal(state), sql.Literal(snapshot))
        if extra_check is not None:
            check = sql.SQL("{} AND {}").format(check, extra_check)
        cur.execute(sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({}))").format(
            self._name(name), sql.SQL(", ").join(definitions), sql.Identifier(f"{final}__slice"), check))

    def _index_and_analyse(self, cur, name: str, table: wt.WarehouseTable, columns: list[str],
                           timings: dict, unique_names: bool = False) -> None:
        """unique_names: name each index after the table. PostgreSQL's own choice truncates long
        names to 63 characters, so two parts loading at once would pick the same name and the
        second COMMIT would fail (neither transaction sees the other's index)."""
        started = time.perf_counter()
        index_columns = self._indexes(table, columns)
        for position, key in enumerate(index_columns):
            index_name = sql.Identifier(f"{name}__i{position}") if unique_names else sql.SQL("")
            cur.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                index_name, self._name(name), sql.SQL(", ").join(map(sql.Identifier, key))))
        timings["index_seconds"] = round(time.perf_counter() - started, 3)
        # statistics for the columns queries filter and join on, so the first queries after a
        # publish plan well; autovacuum analyses the rest (a full ANALYZE of ~80 columns costs
        # about as much as one index build)
        started = time.perf_counter()
        analysed = list(dict.fromkeys(["state", "snapshot", *(c for key in index_columns for c in key)]))
        cur.execute(sql.SQL("ANALYZE {} ({})").format(
            self._name(name), sql.SQL(", ").join(map(sql.Identifier, analysed))))
        timings["analyze_seconds"] = round(time.perf_counter() - started, 3)

    def _load_stage(self, cur, duck, table: wt.WarehouseTable, select: str, arrow_schema: pa.Schema,
                    layout: dict[str, str], state: str, snapshot: date):
        """One COPY into a staging table created inside the publishing transaction."""
        final, stage = self._partition_names(table.name, state, snapshot)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(stage)))
        self._create_stage_table(cur, stage, final, layout, state, snapshot)
        columns = arrow_schema.names
        timings = {}
        started = time.perf_counter()
        reader = duck.sql(select).to_arrow_reader(BATCH_ROWS)
        try:
            copied, nul_stripped = copy_batches(cur, self.schema, stage, reader, columns,
                                                 copy_binary.supports(arrow_schema))
        finally:
            reader.close()
        timings["copy_seconds"] = round(time.perf_counter() - started, 3)
        self._index_and_analyse(cur, stage, table, columns, timings)
        return stage, copied, nul_stripped, timings

    # parallel load ----------------------------------------------------------------------------
    #
    # A big table is split into ranges of its split key; each range is loaded by its own
    # connection into a "part" table that it commits (one connection cannot write into another's
    # uncommitted table). Parts stay invisible to readers: they are attached, as the partitions of
    # a slice partitioned by the split key, only in the publishing transaction. A failed publish
    # drops its parts; parts left by a killed process are dropped by the next publish of the slice.

    def _part_bounds(self, duck, table: wt.WarehouseTable, expected: int) -> list[tuple]:
        """[(low, high), ...] split-key ranges (None = unbounded), one per connection; one range
        when the table is small, has no split key, or the key has NULLs (a range holds none)."""
        connections = min(self.copy_connections, expected // max(self.rows_per_connection, 1))
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
        edges = [None, *splits, None]
        return list(zip(edges[:-1], edges[1:]))

    def _load_parts(self, files: SourceFiles, table: wt.WarehouseTable, select: str,
                    arrow_schema: pa.Schema, layout: dict[str, str], state: str, snapshot: date,
                    bounds: list[tuple], parts: list[str]):
        """Load the table's key ranges concurrently, one connection each; record every committed
        part in `parts` (the caller drops them if the publish fails)."""
        final, _ = self._partition_names(table.name, state, snapshot)
        token = uuid.uuid4().hex[:8]
        names = [f"{final}__p{i}_{token}" for i in range(len(bounds))]
        abort = threading.Event()
        results: list = [None] * len(bounds)
        lock = threading.Lock()

        def load(index: int) -> None:
            try:
                results[index] = self._load_part(files, table, select, arrow_schema, layout, state,
                                                 snapshot, names[index], bounds[index], abort,
                                                 lambda: _append_locked(lock, parts, names[index]))
            except BaseException as exc:
                abort.set()
                results[index] = exc

        started = time.perf_counter()
        threads = [threading.Thread(target=load, args=(i,), name=f"copy-{table.name}-{i}")
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

    def _load_part(self, files: SourceFiles, table: wt.WarehouseTable, select: str,
                   arrow_schema: pa.Schema, layout: dict[str, str], state: str, snapshot: date,
                   name: str, bound: tuple, abort: threading.Event, committed):
        final, _ = self._partition_names(table.name, state, snapshot)
        started = time.perf_counter()
        key = table.split_key
        duck = duckdb.connect()
        conn = self.connect()
        try:
            wt.register_sources(duck, files)
            low, high = bound
            where = [f"{wt.quote_ident(key)} >= {wt.quote_literal(low)}" if low is not None else None,
                     f"{wt.quote_ident(key)} < {wt.quote_literal(high)}" if high is not None else None]
            where = " AND ".join(w for w in where if w)
            # the range is compared byte-wise ("C" collation), as DuckDB compares the strings
            in_range = sql.SQL(" AND ").join(
                [sql.SQL("{} IS NOT NULL").format(sql.Identifier(key))]
                + ([sql.SQL('({} COLLATE "C") >= {}').format(sql.Identifier(key), sql.Literal(low))]
                   if low is not None else [])
                + ([sql.SQL('({} COLLATE "C") < {}').format(sql.Identifier(key), sql.Literal(high))]
                   if high is not None else []))
            with conn.cursor() as cur:
                cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
                self._create_stage_table(cur, name, final, layout, state, snapshot, in_range)
                reader = duck.sql(f"SELECT * FROM ({select}) WHERE {where}").to_arrow_reader(BATCH_ROWS)
                try:
                    copied, nul_stripped = copy_batches(cur, self.schema, name, reader, arrow_schema.names,
                                                         copy_binary.supports(arrow_schema), abort)
                finally:
                    reader.close()
                timings = {"copy_seconds": round(time.perf_counter() - started, 3)}
                self._index_and_analyse(cur, name, table, arrow_schema.names, timings, unique_names=True)
            if abort.is_set():
                raise WarehouseLoadError("cancelled because a parallel load of the same table failed")
            committed()  # recorded before COMMIT: if COMMIT's answer is lost the part may exist
            conn.commit()
        except BaseException:
            _rollback_quietly(conn)
            raise
        finally:
            conn.close()
            duck.close()
        timings["seconds"] = round(time.perf_counter() - started, 3)
        return copied, nul_stripped, timings

    def _swap_in_parts(self, cur, table: wt.WarehouseTable, table_parts: list[tuple[str, tuple]],
                       layout: dict[str, str], state: str, snapshot: date) -> None:
        """Replace the slice with a table partitioned by the split key whose partitions are the
        parts (their indexes become the partitions of the parent's indexes; nothing is rebuilt)."""
        final, _ = self._partition_names(table.name, state, snapshot)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(final)))
        definitions = [sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
                       for column, pg_type in layout.items()]
        cur.execute(sql.SQL('CREATE TABLE {} ({}) PARTITION BY RANGE ({} COLLATE "C")').format(
            self._name(final), sql.SQL(", ").join(definitions), sql.Identifier(table.split_key)))
        for index, (name, (low, high)) in enumerate(table_parts):
            part = f"{final}__p{index}"
            cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(self._name(name), sql.Identifier(part)))
            cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                self._name(final), self._name(part),
                sql.Literal(low) if low is not None else sql.SQL("MINVALUE"),
                sql.Literal(high) if high is not None else sql.SQL("MAXVALUE")))
        self._attach_slice(cur, table.name, final, state, snapshot)

    def _drop_orphan_parts(self, cur, state: str, snapshot: date) -> None:
        """Drop part tables of this slice that a killed publish committed but never attached
        (the caller holds the slice's lock, so no live publish of the slice owns them)."""
        prefixes = [f"{self._partition_names(t.name, state, snapshot)[0]}__p" for t in wt.TABLES]
        cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r' AND NOT c.relispartition",
                    [self.schema])
        for (name,) in cur.fetchall():
            if any(name.startswith(prefix) for prefix in prefixes):
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(name)))
                log.info("warehouse postgres: dropped %s.%s left by an interrupted publish",
                         self.schema, name)

    def _drop_parts_quietly(self, parts: list[str]) -> None:
        """Best effort after a failed publish; what is missed here the next publish drops."""
        if not parts:
            return
        try:
            conn = self.connect()
        except WarehouseConnectionError:
            return
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in parts:
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(name)))
        except psycopg2.Error:
            pass
        finally:
            conn.close()

    def _attach_slice(self, cur, table_name: str, final: str, state: str, snapshot: date) -> None:
        cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}, {}) TO ({}, {})").format(
            self._name(table_name), self._name(final), sql.Literal(state), sql.Literal(snapshot),
            sql.Literal(state), sql.Literal(snapshot + timedelta(days=1))))

    def _swap_in(self, cur, table: wt.WarehouseTable, stage: str, state: str, snapshot: date) -> None:
        final, _ = self._partition_names(table.name, state, snapshot)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(final)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(self._name(stage), sql.Identifier(final)))
        self._attach_slice(cur, table.name, final, state, snapshot)

    # completeness ---------------------------------------------------------------------------

    def is_published(self, state: str, snapshot: date) -> bool:
        """The marker says every table was published AND each table holds that many rows."""
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                if not self._exists(cur, wt.MARKER_TABLE):
                    return False
                cur.execute(sql.SQL("SELECT table_name, row_count FROM {} WHERE state = %s AND snapshot = %s")
                            .format(self._name(wt.MARKER_TABLE)), [state, snapshot])
                markers = dict(cur.fetchall())

                def count_rows(name: str) -> int | None:
                    try:
                        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE state = %s AND snapshot = %s")
                                    .format(self._name(name)), [state, snapshot])
                    except psycopg2.errors.UndefinedTable:
                        return None  # the marker outlived a dropped table
                    return cur.fetchone()[0]

                return wt.counts_agree_with_marker(markers, count_rows, f"postgres {state} {snapshot}")
        finally:
            conn.close()

    def publications(self) -> list[dict]:
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                if not self._exists(cur, wt.MARKER_TABLE):
                    return []
                cur.execute(sql.SQL("SELECT * FROM {} ORDER BY state, snapshot, table_name")
                            .format(self._name(wt.MARKER_TABLE)))
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()


def _rollback_quietly(conn) -> None:
    """Roll back if the connection still works; a dead one already rolled back server-side."""
    if conn is None or conn.closed:
        return
    try:
        conn.rollback()
    except psycopg2.Error:
        pass


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}__{'_'.join(columns)}__idx"[:63]


def _append_locked(lock: threading.Lock, items: list, item) -> None:
    with lock:
        items.append(item)
