"""The PostgreSQL warehouse (psycopg2): COPY streamed from the upstream Parquet files into one
partition per (state, snapshot), swapped in atomically.

How a publish stays atomic and idempotent:
- every table is partitioned BY RANGE (state, snapshot); each slice is one partition covering
  [(state, snapshot), (state, snapshot + 1 day)) (pg_schema.py: the tables, indexes and views);
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
  parts; parts a killed process committed are dropped by the next publish of the slice
  (pg_parts.py).
- the marker column nul_stripped records how many NUL characters the COPY stripped from the
  table (pg_copy.py: how rows are rendered, and why NUL cannot be loaded).
- The DSN's password never reaches a log line or an exception message (pg_dsn.py).
"""

from __future__ import annotations

import logging
import time
from datetime import date

import duckdb
import psycopg2
import psycopg2.errors
from psycopg2 import sql

from voterpipe.warehouse import copy_binary
from voterpipe.warehouse import pg_dsn
from voterpipe.warehouse import tables as wt
from voterpipe.warehouse.pg_copy import (
    BATCH_ROWS, WarehouseLoadError, copy_batches, describe_pg_error,
)
from voterpipe.warehouse.pg_dsn import WarehouseConnectionError, describe_dsn, redact
from voterpipe.warehouse.pg_parts import (
    TableLoad, drop_orphan_parts, drop_parts_quietly, load_parts, part_bounds, rollback_quietly, swap_in_parts,
)
from voterpipe.warehouse.pg_read import row_group_batches
from voterpipe.warehouse.pg_schema import (
    attach_slice, create_slice_table, ensure_schema, index_and_analyse, partition_names, relation_exists,
)
from voterpipe.warehouse.tables import SnapshotNotPublished, SourceFiles, WarehouseInputError

log = logging.getLogger("voterpipe.warehouse")

COPY_CONNECTIONS = 2  # the server parses COPY on one core per connection
ROWS_PER_CONNECTION = 250_000  # below this a second connection costs more than it saves


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
            layouts = ensure_schema(conn, self.schema, arrow_schemas)
            with conn.cursor() as cur:
                cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                            [f"voterpipe:{self.schema}:{state}:{snapshot.isoformat()}"])
                drop_orphan_parts(cur, self.schema, state, snapshot)
                staged = []
                for table in wt.TABLES:
                    load = TableLoad(self.connect, self.schema, files, table, selects[table.name],
                                     arrow_schemas[table.name], layouts[table.name])
                    table_staged, report["tables"][table.name] = self._stage_table(cur, duck, load, parts)
                    staged.append(table_staged)
                swap_started = time.perf_counter()
                for table, stage, table_parts, loaded, checksum, nul_stripped in staged:
                    if table_parts:
                        swap_in_parts(cur, self.schema, table, table_parts, layouts[table.name], state, snapshot)
                    else:
                        self._swap_in(cur, table, stage, state, snapshot)
                    self._write_marker(cur, state, snapshot, table.name, loaded, checksum,
                                       sum(nul_stripped.values()))
            conn.commit()
            parts.clear()
            report["swap_seconds"] = round(time.perf_counter() - swap_started, 3)
        except psycopg2.Error as exc:
            rollback_quietly(conn)
            drop_parts_quietly(self.connect, self.schema, parts)
            raise WarehouseLoadError(
                f"publishing {state} {snapshot} failed, the published data is unchanged: "
                f"{redact(describe_pg_error(exc), self._dsn)}") from None
        except BaseException:
            rollback_quietly(conn)
            drop_parts_quietly(self.connect, self.schema, parts)
            raise
        finally:
            duck.close()
            if conn is not None:
                conn.close()
        report["seconds"] = round(time.perf_counter() - started, 3)
        log.info("warehouse postgres: published %s %s in %.2fs", state, snapshot, report["seconds"])
        return report

    def _stage_table(self, cur, duck, load: TableLoad, parts: list[str]):
        """Load one table's new slice (a staging table in this transaction, or committed parts over
        several connections) and check its row count; return what the swap needs, and the
        table's report entry."""
        files, table = load.files, load.table
        state, snapshot = files.state, files.snapshot
        table_started = time.perf_counter()
        expected = wt.source_row_count(duck, table.row_source)
        bounds = part_bounds(duck, table, expected, self.copy_connections, self.rows_per_connection,
                             files.paths.get(table.row_source))
        if len(bounds) > 1:
            loaded, nul_stripped, timings, table_parts = load_parts(load, bounds, parts)
            stage = None
        else:
            stage, loaded, nul_stripped, timings = self._load_stage(cur, duck, load)
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

    def _load_stage(self, cur, duck, load: TableLoad):
        """One COPY into a staging table created inside the publishing transaction."""
        state, snapshot = load.files.state, load.files.snapshot
        final, stage = partition_names(load.table.name, state, snapshot)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(stage)))
        create_slice_table(cur, self.schema, stage, final, load.layout, state, snapshot)
        columns = load.arrow_schema.names
        timings = {}
        started = time.perf_counter()
        # the whole file's row groups as they are when the table is its source's columns
        reader = row_group_batches(load.table, load.files.paths[load.table.row_source], (None, None),
                                   load.arrow_schema, state, snapshot, BATCH_ROWS) \
            or duck.sql(load.select).to_arrow_reader(BATCH_ROWS)
        try:
            copied, nul_stripped = copy_batches(cur, self.schema, stage, reader, columns,
                                                 copy_binary.supports(load.arrow_schema))
        finally:
            reader.close()
        timings["copy_seconds"] = round(time.perf_counter() - started, 3)
        index_and_analyse(cur, self.schema, stage, load.table, columns, timings)
        return stage, copied, nul_stripped, timings

    def _swap_in(self, cur, table: wt.WarehouseTable, stage: str, state: str, snapshot: date) -> None:
        final, _ = partition_names(table.name, state, snapshot)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(final)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(self._name(stage), sql.Identifier(final)))
        attach_slice(cur, self.schema, table.name, final, state, snapshot)

    # completeness ---------------------------------------------------------------------------

    def is_published(self, state: str, snapshot: date) -> bool:
        """The marker says every table was published AND each table holds that many rows."""
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                if not relation_exists(cur, self.schema, wt.MARKER_TABLE):
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

    # retraction -----------------------------------------------------------------------------

    def retract(self, state: str, snapshot: date) -> dict:
        """Drop the (state, snapshot) partition of every table and delete its marker rows in one
        transaction: the current_* views then show the state's previous published snapshot."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                            [f"voterpipe:{self.schema}:{state}:{snapshot.isoformat()}"])
                published = []
                if relation_exists(cur, self.schema, wt.MARKER_TABLE):
                    cur.execute(sql.SQL("SELECT DISTINCT snapshot FROM {} WHERE state = %s ORDER BY 1")
                                .format(self._name(wt.MARKER_TABLE)), [state])
                    published = [row[0] for row in cur.fetchall()]
                if snapshot not in published:
                    raise SnapshotNotPublished(f"postgres {self.describe()}", state, snapshot, published)
                cur.execute(sql.SQL("SELECT table_name, row_count FROM {} WHERE state = %s AND snapshot = %s")
                            .format(self._name(wt.MARKER_TABLE)), [state, snapshot])
                deleted = dict(cur.fetchall())
                for table in wt.TABLES:
                    final, _ = partition_names(table.name, state, snapshot)
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(final)))
                cur.execute(sql.SQL("DELETE FROM {} WHERE state = %s AND snapshot = %s")
                            .format(self._name(wt.MARKER_TABLE)), [state, snapshot])
            conn.commit()
        except psycopg2.Error as exc:
            rollback_quietly(conn)
            raise WarehouseLoadError(f"retracting {state} {snapshot} failed, the warehouse is unchanged: "
                                     f"{redact(describe_pg_error(exc), self._dsn)}") from None
        except BaseException:
            rollback_quietly(conn)
            raise
        finally:
            conn.close()
        return wt.retraction_report(self.backend, state, snapshot, published, deleted)

    def publications(self) -> list[dict]:
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                if not relation_exists(cur, self.schema, wt.MARKER_TABLE):
                    return []
                cur.execute(sql.SQL("SELECT * FROM {} ORDER BY state, snapshot, table_name")
                            .format(self._name(wt.MARKER_TABLE)))
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()
