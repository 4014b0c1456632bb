"""The embedded warehouse: one DuckDB file; a snapshot's slice of every table is replaced in
one transaction straight from the upstream Parquet files (read_parquet).
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from voterpipe.warehouse import dictionary, tables as wt
from voterpipe.warehouse.tables import (
    SnapshotNotPublished, SourceFiles, WarehouseInputError, quote_ident, quote_literal,
)

log = logging.getLogger("voterpipe.warehouse")
LOCK_WAIT_SECONDS = 600.0  # a publish of a large state takes minutes


class DuckDBWarehouse:
    """DuckDB keeps every string as given (including NUL characters); it builds no indexes
    because its zone maps already prune by (state, snapshot) and ART indexes slow bulk loads."""

    backend = "duckdb"

    def __init__(self, path: Path, memory_limit: str = "", spill_dir: Path | None = None):
        self.path = Path(path)
        self.memory_limit = memory_limit  # for publish; "" keeps DuckDB's default (80% of RAM)
        self.spill_dir = spill_dir

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    def connect(self, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
        """A connection; while another process holds the file (a publish writing, another worker's
        completeness check reading), wait for it rather than fail: with --workers N that is normal."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, pause = time.monotonic() + wait_seconds, 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                log.info("warehouse duckdb: %s is in use by another process; waiting", self.path.name)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def publish(self, files: SourceFiles) -> dict:
        """Replace the (state, snapshot) slice of every warehouse table; all or nothing."""
        started = time.perf_counter()
        state, snapshot = files.state, files.snapshot
        report: dict = {"backend": self.backend, "state": state, "snapshot": snapshot.isoformat(),
                        "tables": {}}
        con = self.connect()
        try:
            # rows in a table have no order; not preserving the Parquet order lets DuckDB insert
            # in parallel with less buffering
            con.execute("SET preserve_insertion_order = false")
            limit_memory(con, self.memory_limit, self.spill_dir)
            wt.register_sources(con, files)
            con.execute("BEGIN TRANSACTION")
            _ensure_marker_table(con)
            for table in wt.TABLES:
                table_started = time.perf_counter()
                select = wt.table_sql(con, table.name, state, snapshot)
                _ensure_table(con, table.name, select)
                con.execute(f"DELETE FROM {quote_ident(table.name)} WHERE state = ? AND snapshot = ?",
                            [state, snapshot])
                loaded = con.execute(f"INSERT INTO {quote_ident(table.name)} BY NAME {select}").fetchall()[0][0]
                expected = wt.source_row_count(con, table.row_source)
                if loaded != expected:
                    raise WarehouseInputError(wt.explain_row_mismatch(con, table, files, loaded, expected))
                checksum = files.digest(table.sources)
                con.execute(
                    f"INSERT OR REPLACE INTO {wt.MARKER_TABLE} "
                    "(state, snapshot, table_name, row_count, checksum, nul_stripped, published_at) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?)",
                    [state, snapshot, table.name, loaded, checksum,
                     datetime.now(timezone.utc).replace(tzinfo=None)],
                )
                seconds = time.perf_counter() - table_started
                report["tables"][table.name] = {"rows": loaded, "seconds": round(seconds, 3),
                                                "checksum": checksum, "nul_stripped": 0}
                log.info("warehouse duckdb %s %s: %s loaded %d rows in %.2fs",
                         state, snapshot, table.name, loaded, seconds)
            _create_views(con)
            dictionary.apply_duckdb_comments(con)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # no transaction was open yet
            raise
        finally:
            con.close()
        report["seconds"] = round(time.perf_counter() - started, 3)
        return report

    def is_published(self, state: str, snapshot: date) -> bool:
        """The marker says every table was published AND each table holds that many rows."""
        if not self.path.exists():
            return False
        con = self.connect(read_only=True)
        try:
            known = {row[0] for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
            if wt.MARKER_TABLE not in known or not set(wt.TABLE_NAMES) <= known:
                return False
            markers = dict(con.execute(
                f"SELECT table_name, row_count FROM {wt.MARKER_TABLE} WHERE state = ? AND snapshot = ?",
                [state, snapshot]).fetchall())

            def count_rows(name: str) -> int:
                return con.execute(f"SELECT count(*) FROM {quote_ident(name)} WHERE state = ? AND snapshot = ?",
                                   [state, snapshot]).fetchall()[0][0]

            return wt.counts_agree_with_marker(markers, count_rows, f"duckdb {state} {snapshot}")
        finally:
            con.close()

    def retract(self, state: str, snapshot: date) -> dict:
        """Delete the (state, snapshot) slice of every table and its marker rows in one
        transaction: the current_* views then show the state's previous published snapshot."""
        if not self.path.exists():
            raise SnapshotNotPublished(repr(self), state, snapshot, [])
        con = self.connect()
        try:
            con.execute("BEGIN TRANSACTION")
            _ensure_marker_table(con)
            published = [row[0] for row in con.execute(
                f"SELECT DISTINCT snapshot FROM {wt.MARKER_TABLE} WHERE state = ? ORDER BY 1", [state]).fetchall()]
            if snapshot not in published:
                raise SnapshotNotPublished(repr(self), state, snapshot, published)
            deleted = {}
            for table in wt.TABLES:
                if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                               "AND table_name = ?", [table.name]).fetchall()[0][0]:
                    deleted[table.name] = con.execute(
                        f"DELETE FROM {quote_ident(table.name)} WHERE state = ? AND snapshot = ?",
                        [state, snapshot]).fetchall()[0][0]
            con.execute(f"DELETE FROM {wt.MARKER_TABLE} WHERE state = ? AND snapshot = ?", [state, snapshot])
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            con.close()
        return wt.retraction_report(self.backend, state, snapshot, published, deleted)

    def publications(self) -> list[dict]:
        if not self.path.exists():
            return []
        con = self.connect(read_only=True)
        try:
            cursor = con.execute(f"SELECT * FROM {wt.MARKER_TABLE} ORDER BY state, snapshot, table_name")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        except duckdb.CatalogException:
            return []
        finally:
            con.close()


def limit_memory(con: duckdb.DuckDBPyConnection, memory_limit: str, spill_dir: Path | None) -> None:
    """Cap DuckDB's buffer memory (e.g. "1GB"; "" leaves its default, 80% of RAM) and let it spill
    to `spill_dir` beyond that; changes speed, never results."""
    if memory_limit:
        con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    if spill_dir is not None:
        Path(spill_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # spilled rows hold names
        con.execute(f"SET temp_directory = {quote_literal(str(spill_dir))}")


def _ensure_marker_table(con: duckdb.DuckDBPyConnection) -> None:
    # published_at is UTC (a plain TIMESTAMP: TIMESTAMPTZ values need pytz to reach Python)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {wt.MARKER_TABLE} ("
        "state VARCHAR NOT NULL, snapshot DATE NOT NULL, table_name VARCHAR NOT NULL, "
        "row_count BIGINT NOT NULL, checksum VARCHAR NOT NULL, nul_stripped BIGINT NOT NULL, "
        "published_at TIMESTAMP NOT NULL, PRIMARY KEY (state, snapshot, table_name))"
    )


def _ensure_table(con: duckdb.DuckDBPyConnection, name: str, select: str) -> None:
    """Create the table from the query's columns, or add the columns a newer query brings."""
    wanted = con.execute(f"DESCRIBE {select}").fetchall()
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [name]).fetchall()[0][0]
    if not exists:
        columns = ", ".join(f"{quote_ident(row[0])} {row[1]}" for row in wanted)
        con.execute(f"CREATE TABLE {quote_ident(name)} ({columns})")
        return
    have = {row[0]: row[1] for row in con.execute(f"DESCRIBE {quote_ident(name)}").fetchall()}
    for column, column_type, *_ in wanted:
        if column not in have:
            con.execute(f"ALTER TABLE {quote_ident(name)} ADD COLUMN {quote_ident(column)} {column_type}")
        elif have[column] != column_type and column_type != '"NULL"':
            raise WarehouseInputError(
                f"{name}.{column} is {have[column]} in the warehouse but the new data has {column_type}")


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    for table in wt.TABLES:
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_ident(table.view)} AS SELECT t.* "
            f"FROM {quote_ident(table.name)} t JOIN (SELECT state, max(snapshot) AS snapshot "
            f"FROM {wt.MARKER_TABLE} WHERE table_name = {quote_literal(table.name)} GROUP BY state) latest "
            "ON t.state = latest.state AND t.snapshot = latest.snapshot"
        )
