"""The warehouse tables of one (state, snapshot): their upstream Parquet files and the SQL that
builds each table from them (run by DuckDB, which both backends use to read Parquet).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import catalog, schema, storage

log = logging.getLogger("voterpipe.warehouse")

# what the voter file (voters_enriched.parquet) is built from
ENRICHED_INPUTS = ("voters", "voter_addresses", "addresses", "geocodes", "voter_households",
                   "households", "voter_cohorts")
# what a publish reads
PUBLISH_SOURCES = ("voters_enriched", "history", "addresses", "geocodes", "households", "cohort_turnout")


def source_schema(name: str) -> pa.Schema | None:
    """The Arrow schema the catalogue declares for an upstream dataset."""
    return catalog.dataset(name)[1].schema


@dataclass(frozen=True)
class WarehouseTable:
    name: str
    view: str  # the current_* view showing each state's latest snapshot
    sources: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]  # column lists; an index is built if its columns exist
    row_source: str  # the upstream table whose row count this table must equal
    # a text column of row_source to split big loads by (ranges loaded concurrently), or None
    split_key: str | None = None


TABLES: tuple[WarehouseTable, ...] = (
    WarehouseTable("voters_enriched", "current_voters", ("voters_enriched",),
                   (("voter_id",), ("household_id",), ("county_fips", "tract", "block_group")),
                   "voters_enriched", "voter_id"),
    WarehouseTable("households", "current_households", ("households",),
                   (("household_id",), ("county_fips", "tract", "block_group")), "households",
                   "household_id"),
    WarehouseTable("addresses", "current_addresses", ("addresses", "geocodes"),
                   (("address_key",), ("county_fips", "tract", "block_group")), "addresses",
                   "address_key"),
    WarehouseTable("vote_history", "current_vote_history", ("history",),
                   (("voter_id",), ("election_date",)), "history", "voter_id"),
    WarehouseTable("cohort_turnout", "current_cohort_turnout", ("cohort_turnout",),
                   (("dimension", "cohort"), ("geography_level", "geography")), "cohort_turnout"),
)
TABLE_NAMES = tuple(t.name for t in TABLES)
MARKER_TABLE = "publications"
SLICE_COLUMNS = ("state", "snapshot")


class WarehouseInputError(ValueError):
    """An upstream file is missing or breaks the one-row-per-key contract the tables rely on."""


class SnapshotNotPublished(LookupError):
    """retract: the warehouse holds no such (state, snapshot)."""

    def __init__(self, where: str, state: str, snapshot: date, published: list[date]):
        shown = ", ".join(d.isoformat() for d in published) or "none"
        super().__init__(f"{where} holds no published snapshot {state} {snapshot.isoformat()}; "
                         f"published snapshots of {state}: {shown}")


@dataclass(frozen=True)
class SourceFiles:
    """Upstream Parquet files of one (state, snapshot), by catalogue dataset name."""

    state: str
    snapshot: date
    paths: dict[str, Path]

    def digest(self, names: tuple[str, ...]) -> str:
        """sha256 over the named files' sha256 digests: identifies exactly what was loaded."""
        combined = hashlib.sha256()
        for name in names:
            combined.update(f"{name}={_file_digest(self.paths[name])}\n".encode())
        return "sha256:" + combined.hexdigest()


_digest_cache: dict[tuple[str, int, int], str] = {}


def counts_agree_with_marker(markers: dict[str, int], count_rows, where: str) -> bool:
    """Every table has a marker row and holds exactly the rows it records.

    count_rows(table_name) returns the table's row count for the slice, or None when the table
    is gone; `where` names the backend and slice in the log line.
    """
    for name in TABLE_NAMES:
        if name not in markers:
            return False
        actual = count_rows(name)
        if actual is None:
            return False
        if actual != markers[name]:
            log.warning("warehouse %s: %s holds %d rows, marker says %d", where, name, actual, markers[name])
            return False
    return True


def retraction_report(backend: str, state: str, snapshot: date, published: list[date], deleted: int) -> dict:
    """What a retraction did (both backends): rows deleted and the current snapshot before and
    after; logged with counts only."""
    remaining = [d for d in published if d != snapshot]
    log.info("warehouse %s: retracted %s %s (%s rows)", backend, state, snapshot, deleted)
    return {"backend": backend, "state": state, "snapshot": snapshot.isoformat(),
            "rows_deleted": deleted, "current_before": max(published).isoformat(),
            "current_after": max(remaining).isoformat() if remaining else None}


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digest_cache:
        _digest_cache[key] = storage.file_sha256(path)
    return _digest_cache[key]


def source_files(state: str, snapshot: date, root: Path | None = None,
                 names: tuple[str, ...] = PUBLISH_SOURCES) -> SourceFiles:
    """Locate the named upstream files under the data root; raise naming every missing one."""
    paths = {name: catalog.dataset_path(name, state, snapshot, root) for name in names}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise WarehouseInputError(f"cannot publish {state} {snapshot}: missing {', '.join(missing)}")
    return SourceFiles(state=state, snapshot=snapshot, paths=paths)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


_DUCK_TYPES = {
    pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.date32(): "DATE",
    pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
}


def _conformed_select(path: Path, expected: pa.Schema | None) -> str:
    """SELECT over one Parquet file with every expected column (missing ones as typed NULLs)."""
    present = pq.read_schema(path).names
    items = []
    if expected is not None:
        for field in expected:
            if field.name in present:
                items.append(quote_ident(field.name))
            else:
                items.append(f"CAST(NULL AS {_DUCK_TYPES[field.type]}) AS {quote_ident(field.name)}")
        items += [quote_ident(c) for c in present if c not in expected.names]
    else:
        items = [quote_ident(c) for c in present]
    return f"SELECT {', '.join(items)} FROM read_parquet({quote_literal(str(path))})"


def register_sources(con: duckdb.DuckDBPyConnection, files: SourceFiles) -> None:
    """Create temp views src_<name> over the upstream Parquet files on this connection."""
    for name, path in files.paths.items():
        expected = source_schema(name)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident('src_' + name)} AS "
                    + _conformed_select(path, expected))


def register_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    """Like register_sources, from in-memory Arrow tables keyed by dataset name."""
    for name, table in tables.items():
        expected = source_schema(name)
        if expected is not None:
            extra = [c for c in table.column_names if c not in expected.names]
            conformed = schema.conform(table, expected)
            for column in extra:
                conformed = conformed.append_column(column, table.column(column))
            table = conformed
        con.register(f"_arrow_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident('src_' + name)} AS "
                    f"SELECT * FROM {quote_ident('_arrow_' + name)}")


def source_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {quote_ident('src_' + name)}").fetchall()]


def _slice_select(con, source: str, state: str, snapshot: date) -> str:
    """All columns of a source with state and snapshot first, set to the slice being published."""
    columns = [c for c in source_columns(con, source) if c not in SLICE_COLUMNS]
    return (f"SELECT {quote_literal(state)} AS state, DATE {quote_literal(snapshot.isoformat())} "
            f"AS snapshot, {', '.join(quote_ident(c) for c in columns)} "
            f"FROM {quote_ident('src_' + source)}")


def addresses_sql(con, state: str, snapshot: date) -> str:
    """Addresses with their geocode; the address's own state column becomes address_state."""
    address_columns = [c for c in source_columns(con, "addresses") if c not in SLICE_COLUMNS]
    taken = set(address_columns) | set(SLICE_COLUMNS)
    items = [f"a.{quote_ident(c)}" for c in address_columns]
    items.append("a.state AS address_state")
    renames = {"status": "geocode_status", "backend": "geocode_backend",
               "match_type": "geocode_match_type"}
    for column in source_columns(con, "geocodes"):
        if column == "address_key":
            continue
        alias = renames.get(column, column)
        if alias in taken:
            alias = f"geocode_{column}"
        items.append(f"g.{quote_ident(column)} AS {quote_ident(alias)}")
    return (f"SELECT {quote_literal(state)} AS state, DATE {quote_literal(snapshot.isoformat())} "
            f"AS snapshot, {', '.join(items)} FROM src_addresses a "
            f"LEFT JOIN src_geocodes g ON g.address_key = a.address_key")


def table_sql(con: duckdb.DuckDBPyConnection, table: str, state: str, snapshot: date) -> str:
    """The SELECT producing one warehouse table for the slice, over the registered sources."""
    if table == "addresses":
        return addresses_sql(con, state, snapshot)
    source = {"voters_enriched": "voters_enriched", "households": "households",
              "vote_history": "history", "cohort_turnout": "cohort_turnout"}[table]
    return _slice_select(con, source, state, snapshot)


# the lookups a table joins must have one row per key, or rows would be duplicated
UNIQUE_KEYS = {
    "voters": "voter_id", "voter_addresses": "voter_id", "addresses": "address_key",
    "geocodes": "address_key", "voter_households": "voter_id", "households": "household_id",
    "voter_cohorts": "voter_id", "voters_enriched": "voter_id",
}


def source_row_count(con: duckdb.DuckDBPyConnection, source: str) -> int:
    return con.execute(f"SELECT count(*) FROM {quote_ident('src_' + source)}").fetchall()[0][0]


def explain_row_mismatch(con: duckdb.DuckDBPyConnection, table: WarehouseTable,
                         files: SourceFiles | None, loaded: int, expected: int) -> str:
    """Name the upstream files whose keys repeat (the usual cause of a row-count mismatch)."""
    problems = []
    for source in table.sources:
        key = UNIQUE_KEYS.get(source)
        if key is None:
            continue
        duplicates = con.execute(
            f"SELECT count(*) - count(DISTINCT {quote_ident(key)}) FROM {quote_ident('src_' + source)}"
        ).fetchall()[0][0]
        if duplicates:
            where = files.paths[source] if files else source
            problems.append(f"{where}: {duplicates} repeated {key} values")
    detail = "; ".join(problems) or "no repeated keys found"
    return f"{table.name}: built {loaded} rows, expected {expected} (one per {table.row_source} row): {detail}"


def check_unique_voters(con: duckdb.DuckDBPyConnection, files: SourceFiles | None = None) -> None:
    """voters_enriched has one row per voter: refuse a voters file that repeats a voter_id."""
    repeated = con.execute(
        "SELECT count(*) - count(DISTINCT voter_id), count(*) - count(voter_id) FROM src_voters"
    ).fetchall()[0]
    where = files.paths["voters"] if files else "voters"
    if repeated[1]:
        raise WarehouseInputError(f"{where}: {repeated[1]} rows without a voter_id")
    if repeated[0]:
        raise WarehouseInputError(f"{where}: {repeated[0]} repeated voter_id values")
