"""The PostgreSQL warehouse's DDL: create or migrate its tables, indexes and views, and build the
slice tables a publish loads (staging and part tables, their indexes, their attachment)."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

import pyarrow as pa
from psycopg2 import sql

from voterpipe.warehouse import dictionary, tables as wt
from voterpipe.warehouse.pg_copy import arrow_to_pg_type
from voterpipe.warehouse.tables import WarehouseInputError

log = logging.getLogger("voterpipe.warehouse")

SCHEMA_LOCK_KEY = 0x766F746572  # pg_advisory_xact_lock key serialising schema changes
INDEX_WORKERS = 2  # parallel maintenance workers per index build (capped by max_worker_processes)


def qualified(schema: str, name: str) -> sql.Composed:
    return sql.Identifier(schema, name)


def ensure_schema(conn, schema: str, table_schemas: dict[str, pa.Schema]) -> dict[str, dict[str, str]]:
    """Create or migrate (add columns, indexes, views) in a transaction of its own; return every
    table's columns and PostgreSQL types, in table order."""
    layouts = {}
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "state text NOT NULL, snapshot date NOT NULL, table_name text NOT NULL, "
            "row_count bigint NOT NULL, checksum text NOT NULL, "
            "nul_stripped bigint NOT NULL DEFAULT 0, "
            "published_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (state, snapshot, table_name))").format(qualified(schema, wt.MARKER_TABLE)))
        for table in wt.TABLES:
            columns, changed = _create_or_migrate_table(cur, schema, table, table_schemas[table.name])
            layouts[table.name] = columns
            _ensure_indexes_and_view(cur, schema, table, columns, changed)
            dictionary.apply_pg_comments(cur, schema, table.name, columns, "TABLE", changed)
            dictionary.apply_pg_comments(cur, schema, table.view, columns, "VIEW", changed)
        dictionary.apply_pg_comments(cur, schema, wt.MARKER_TABLE, dictionary.MARKER_COLUMNS)
    return layouts


def _create_or_migrate_table(cur, schema: str, table: wt.WarehouseTable,
                             arrow_schema: pa.Schema) -> tuple[dict[str, str], bool]:
    """The table's columns after creating it or adding the new data's new columns, and whether
    anything changed."""
    existing = table_columns(cur, schema, table.name)
    if existing is None:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(arrow_to_pg_type(f)))
            for f in arrow_schema)
        cur.execute(sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (state, snapshot)")
                    .format(qualified(schema, table.name), columns))
        log.info("warehouse postgres: created table %s.%s", schema, table.name)
        return {f.name: arrow_to_pg_type(f) for f in arrow_schema}, True
    changed = False
    for field in arrow_schema:
        wanted = arrow_to_pg_type(field)
        if field.name not in existing:
            cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                qualified(schema, table.name), sql.Identifier(field.name), sql.SQL(wanted)))
            existing[field.name] = wanted
            changed = True
            log.info("warehouse postgres: added column %s.%s", table.name, field.name)
        elif existing[field.name] != wanted and not pa.types.is_null(field.type):
            raise WarehouseInputError(
                f"{table.name}.{field.name} is {existing[field.name]} in the warehouse "
                f"but the new data has {wanted}")
    return existing, changed


def _ensure_indexes_and_view(cur, schema: str, table: wt.WarehouseTable, columns: dict[str, str],
                             changed: bool) -> None:
    # DDL only where something is missing: even a no-op CREATE INDEX IF NOT EXISTS or
    # CREATE OR REPLACE VIEW takes locks that queue behind readers and other publishes
    for key in index_columns(table, columns):
        if not relation_exists(cur, schema, index_name(table.name, key)):
            cur.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(index_name(table.name, key)), qualified(schema, table.name),
                sql.SQL(", ").join(map(sql.Identifier, key))))
    if not changed and relation_exists(cur, schema, table.view):
        return
    cur.execute(sql.SQL(
        "CREATE OR REPLACE VIEW {} AS SELECT t.* FROM {} t JOIN ("
        "SELECT state, max(snapshot) AS snapshot FROM {} WHERE table_name = {} "
        "GROUP BY state) latest ON t.state = latest.state AND t.snapshot = latest.snapshot"
    ).format(qualified(schema, table.view), qualified(schema, table.name),
             qualified(schema, wt.MARKER_TABLE), sql.Literal(table.name)))


def relation_exists(cur, schema: str, relation: str) -> bool:
    cur.execute("SELECT to_regclass(%s)", [qualified(schema, relation).as_string(cur)])
    return cur.fetchone()[0] is not None


def table_columns(cur, schema: str, table: str) -> dict[str, str] | None:
    """Column name -> PostgreSQL type, in column order; None when the table does not exist."""
    if not relation_exists(cur, schema, table):
        return None
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [qualified(schema, table).as_string(cur)])
    return dict(cur.fetchall())


def index_columns(table: wt.WarehouseTable, columns) -> list[tuple[str, ...]]:
    """The table's indexes whose columns all exist."""
    return [cols for cols in table.indexes if all(c in columns for c in cols)]


def index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}__{'_'.join(columns)}__idx"[:63]


def partition_names(table: str, state: str, snapshot: date) -> tuple[str, str]:
    """The slice's partition name and the name of the staging table it is loaded into."""
    final = f"{table}__{state}_{snapshot:%Y%m%d}"
    return final, f"{final}__loading"


def create_slice_table(cur, schema: str, name: str, final: str, layout: dict[str, str], state: str,
                       snapshot: date, extra_check: sql.Composable | None = None) -> None:
    """A plain table with the parent's columns and a CHECK of the slice (ATTACH then skips its scan)."""
    # spelled out rather than LIKE parent: LIKE would hold a lock on the parent for the whole
    # load, and two publishes of different states would then deadlock at their swaps
    definitions = [sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(pg_type))
                   for column, pg_type in layout.items()]
    check = sql.SQL("state = {} AND snapshot = {}").format(sql.Literal(state), sql.Literal(snapshot))
    if extra_check is not None:
        check = sql.SQL("{} AND {}").format(check, extra_check)
    cur.execute(sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({}))").format(
        qualified(schema, name), sql.SQL(", ").join(definitions), sql.Identifier(f"{final}__slice"), check))


def index_and_analyse(cur, schema: str, name: str, table: wt.WarehouseTable, columns: list[str],
                      timings: dict, unique_names: bool = False) -> None:
    """unique_names: name each index after the table. PostgreSQL's own choice truncates long
    names to 63 characters, so two parts loading at once would pick the same name and the
    second COMMIT would fail (neither transaction sees the other's index)."""
    started = time.perf_counter()
    keys = index_columns(table, columns)
    # each index is sorted by the backend and parallel maintenance workers (PostgreSQL's default
    # of 2, set here so a server configured with none still builds them in parallel)
    cur.execute(f"SET LOCAL max_parallel_maintenance_workers = {INDEX_WORKERS}")
    for position, key in enumerate(keys):
        name_sql = sql.Identifier(f"{name}__i{position}") if unique_names else sql.SQL("")
        cur.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            name_sql, qualified(schema, name), sql.SQL(", ").join(map(sql.Identifier, key))))
    timings["index_seconds"] = round(time.perf_counter() - started, 3)
    # statistics for the columns queries filter and join on, so the first queries after a
    # publish plan well; autovacuum analyses the rest (a full ANALYZE of ~80 columns costs
    # about as much as one index build)
    started = time.perf_counter()
    analysed = list(dict.fromkeys(["state", "snapshot", *(c for key in keys for c in key)]))
    cur.execute(sql.SQL("ANALYZE {} ({})").format(
        qualified(schema, name), sql.SQL(", ").join(map(sql.Identifier, analysed))))
    timings["analyze_seconds"] = round(time.perf_counter() - started, 3)


def attach_slice(cur, schema: str, table_name: str, final: str, state: str, snapshot: date) -> None:
    cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}, {}) TO ({}, {})").format(
        qualified(schema, table_name), qualified(schema, final), sql.Literal(state), sql.Literal(snapshot),
        sql.Literal(state), sql.Literal(snapshot + timedelta(days=1))))
