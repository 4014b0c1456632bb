"""voters_enriched: one row per voter with its address, geocode, household and cohort labels.

A pure function of the upstream tables, written once as SQL so DuckDB runs it both on Parquet
files (out of core: write_voters_enriched, the voter file both warehouses load) and on in-memory
Arrow tables (build_voters_enriched).
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from queue import Empty, Queue

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import schema, storage
from voterpipe.warehouse import tables as warehouse_tables
from voterpipe.warehouse.duckdb_backend import limit_memory
from voterpipe.warehouse.enriched_blocks import VOTERS_PER_BLOCK, open_join

PART_ROWS = 150_000  # voters joined and sorted at once by write_voters_enriched (memory bound)
ROW_GROUP_ROWS = 122_880  # DuckDB's vector-aligned row group size, as its own Parquet writer used

VOTERS_FROM = "FROM src_voters v\n"  # the probe in _copy_schema narrows it to one voter
RULES_VERSION = "2"  # bump when the join or its columns change: it is part of the stage's identity

# (source alias, source column, enriched column); the enriched columns are
# schema.VOTERS_ENRICHED_LOOKUPS, in that order

LOOKUP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("va", "address_key", "address_key"),
    ("va", "building_key", "building_key"),
    ("va", "parse_status", "address_parse_status"),
    ("a", "standardized_line", "address_line"),
    ("a", "city", "address_city"),
    ("a", "zip5", "address_zip5"),
    ("g", "status", "geocode_status"),
    ("g", "match_type", "geocode_match_type"),
    ("g", "lon", "lon"),
    ("g", "lat", "lat"),
    ("g", "state_fips", "state_fips"),
    ("g", "county_fips", "county_fips"),
    ("g", "tract", "tract"),
    ("g", "block_group", "block_group"),
    ("g", "block", "block"),
    # the geocoded districts sit beside the districts the state reports for the voter; taken
    # from the household, where they are in the state's canonical code form
    ("h", "congressional_district", "geo_congressional_district"),
    ("h", "state_senate_district", "geo_state_senate_district"),
    ("h", "state_house_district", "geo_state_house_district"),
    ("vh", "household_id", "household_id"),
    ("h", "voter_count", "household_voter_count"),
    ("h", "party_mix", "household_party_mix"),
    ("h", "likely_group_quarters", "household_likely_group_quarters"),
    ("h", "building_multi_unit", "household_building_multi_unit"),
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def voters_enriched_sql(state: str, snapshot: date, voter_columns: list[str] = (),
                        cohort_columns: list[str] = ()) -> str:
    """SELECT over the views src_voters, src_voter_addresses, src_addresses, src_geocodes,
    src_voter_households, src_households and src_voter_cohorts: the columns of
    schema.VOTERS_ENRICHED, then any column the voters or voter_cohorts sources carry beyond their
    declared schemas (a column added upstream reaches the warehouse, which migrates for it)."""
    snapshot_text = snapshot.isoformat() if isinstance(snapshot, date) else str(snapshot)
    items = [f"'{state.replace(chr(39), '')}' AS state", f"DATE '{snapshot_text}' AS snapshot"]
    items += [f"v.{_q(c)}" for c in schema.VOTERS.names if c not in ("state", "snapshot")]
    items += [f"{alias}.{_q(column)} AS {_q(target)}" for alias, column, target in LOOKUP_COLUMNS]
    items += [f"c.{_q(column)}" for column in schema.VOTERS_ENRICHED_COHORT_LABELS]
    taken = set(schema.VOTERS_ENRICHED.names)
    items += [f"v.{_q(c)}" for c in voter_columns if c not in taken and c not in schema.VOTERS.names]
    items += [f"c.{_q(c)}" for c in cohort_columns
              if c not in taken and c not in schema.VOTER_COHORTS.names and c not in voter_columns]
    return (
        f"SELECT {', '.join(items)}\n"
        f"{VOTERS_FROM}"
        "LEFT JOIN src_voter_addresses va ON va.voter_id = v.voter_id\n"
        "LEFT JOIN src_addresses a ON a.address_key = va.address_key\n"
        "LEFT JOIN src_geocodes g ON g.address_key = va.address_key\n"
        "LEFT JOIN src_voter_households vh ON vh.voter_id = v.voter_id\n"
        "LEFT JOIN src_households h ON h.household_id = vh.household_id\n"
        "LEFT JOIN src_voter_cohorts c ON c.voter_id = v.voter_id"
    )


def _enriched_select(con: duckdb.DuckDBPyConnection, state: str, snapshot: date) -> str:
    select = voters_enriched_sql(state, snapshot, warehouse_tables.source_columns(con, "voters"),
                                 warehouse_tables.source_columns(con, "voter_cohorts"))
    # voter_id order: a reader of one voter_id range (a parallel PostgreSQL load, a lookup) skips
    # the row groups outside it by their statistics
    return f"{select}\nORDER BY v.voter_id"


def build_voters_enriched(state: str, snapshot: date, tables: dict[str, pa.Table]) -> pa.Table:
    """voters_enriched from in-memory upstream tables keyed voters, voter_addresses, addresses,
    geocodes, voter_households, households, voter_cohorts (a missing one counts as empty),
    sorted by voter_id."""
    con = duckdb.connect()
    try:
        needed = {}
        for name in warehouse_tables.ENRICHED_INPUTS:
            needed[name] = tables[name] if name in tables else warehouse_tables.source_schema(name).empty_table()
        warehouse_tables.register_tables(con, needed)
        return con.sql(_enriched_select(con, state, snapshot)).to_arrow_table()
    finally:
        con.close()


def write_voters_enriched(files, path: Path, memory_limit: str = "", spill_dir: Path | None = None,
                          rows_per_part: int = PART_ROWS, voters_per_block: int = VOTERS_PER_BLOCK) -> dict:
    """Build voters_enriched from the upstream Parquet files (a tables.SourceFiles holding
    ENRICHED_INPUTS) into one Parquet file at `path`, sorted by voter_id; return its row and
    column counts. Refuses a roll that repeats or lacks a voter_id, and checks that the file has
    exactly one row per voter. When every lookup table has one row per key (the usual case), the
    joins are Arrow lookups (enriched_arrow; a roll over `voters_per_block` voters is joined in
    voter_id blocks of half that, spilled beside `path`: enriched_blocks); otherwise the SQL runs on consecutive voter_id
    ranges of about `rows_per_part` voters, each sorted and appended to the file, so memory stays
    bounded without spilling; DuckDB's memory is capped at `memory_limit` ("" = its default),
    spilling to `spill_dir` beyond it."""
    con = _sql_session(files, memory_limit, spill_dir)
    try:
        warehouse_tables.check_unique_voters(con, files)
        voters = warehouse_tables.source_row_count(con, "voters")
        voter_columns = warehouse_tables.source_columns(con, "voters")
        cohort_columns = warehouse_tables.source_columns(con, "voter_cohorts")
        select = voters_enriched_sql(files.state, files.snapshot, voter_columns, cohort_columns)
        file_schema = _copy_schema(con, select, path)
    finally:
        con.close()  # DuckDB's buffers go before the Arrow tables are read
    join = open_join(files.paths, files.state, _as_date(files.snapshot), voter_columns, cohort_columns,
                     voters_per_block, spill_dir=path.parent)
    if join.unique():  # each LEFT JOIN is a lookup: the SQL's rows without its re-scans
        # a row group at a time: the fewest rows held at once (no part straddles two groups)
        # half a row group per part: the next part is taken while one is written, memory as one group
        parts = _ahead(join.parts(min(rows_per_part, ROW_GROUP_ROWS // 2)))
        written, row_groups = _write_parts(parts, path, file_schema)
        del join
    else:
        del join
        written, row_groups = _write_by_sql(files, path, file_schema, select, voters, rows_per_part,
                                            memory_limit, spill_dir)
    # Columns as Arrow sees them: a map (voters' extra) is one column, two Parquet leaves.
    return {"rows": written, "columns": len(pq.read_schema(path)), "row_groups": row_groups}


def _sql_session(files, memory_limit: str, spill_dir: Path | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    limit_memory(con, memory_limit, spill_dir)
    warehouse_tables.register_sources(con, files)
    return con


def _write_by_sql(files, path: Path, file_schema: pa.Schema, select: str, voters: int, rows_per_part: int,
                  memory_limit: str, spill_dir: Path | None) -> tuple[int, int]:
    """The SQL joins on voter_id ranges; a repeated key repeats voters, and the error names the
    input whose key repeats."""
    con = _sql_session(files, memory_limit, spill_dir)
    try:
        parts = (con.sql(f"{select}\n{where}\nORDER BY v.voter_id").to_arrow_table()
                 for where in _voter_id_ranges(con, voters, rows_per_part))
        written, row_groups = _write_parts(parts, path, file_schema)
        if written != voters:
            joined = warehouse_tables.WarehouseTable(
                "voters_enriched", "current_voters", warehouse_tables.ENRICHED_INPUTS, (), "voters")
            raise warehouse_tables.WarehouseInputError(warehouse_tables.explain_row_mismatch(
                con, joined, files, written, voters))
        return written, row_groups
    finally:
        con.close()


def _voter_id_ranges(con: duckdb.DuckDBPyConnection, voters: int, rows_per_part: int) -> list[str]:
    """WHERE clauses splitting src_voters into consecutive voter_id ranges of about
    `rows_per_part` rows, in voter_id order (voter_id is unique and never null:
    check_unique_voters; DuckDB compares text bytewise, as its ORDER BY does)."""
    count = max(1, -(-voters // max(rows_per_part, 1)))
    if count == 1:
        return [""]
    cuts = con.execute("SELECT quantile_disc(voter_id, ?) FROM src_voters",
                       [[i / count for i in range(1, count)]]).fetchall()[0][0]
    literals = [warehouse_tables.quote_literal(c) for c in sorted(set(cuts))]
    ranges = [f"WHERE v.voter_id < {literals[0]}"]
    ranges += [f"WHERE v.voter_id >= {low} AND v.voter_id < {high}" for low, high in zip(literals, literals[1:])]
    return ranges + [f"WHERE v.voter_id >= {literals[-1]}"]


def _copy_schema(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> pa.Schema:
    """The schema DuckDB's own Parquet writer gives the query's rows: it marks a column required
    when the inputs' statistics show it has no nulls (its Arrow results do not say so; with
    LIMIT 0 nor does the writer, hence one row). The one row is one voter joined to the lookups:
    a LIMIT keeps its input's column statistics, and with one voter on the build side the joins
    stream the lookup tables instead of hashing them whole (the full join ran out of DuckDB's
    memory cap at 4M voters)."""
    one_voter = select.replace(VOTERS_FROM, "FROM (SELECT * FROM src_voters LIMIT 1) v\n", 1)
    if one_voter == select:
        raise AssertionError("voters_enriched_sql no longer reads voters as 'FROM src_voters v'")
    probe = path.with_name(path.name + ".schema")
    try:
        storage.write_query_parquet(con, one_voter, probe)
        return pq.read_schema(probe)
    finally:
        probe.unlink(missing_ok=True)


def _write_parts(parts, path: Path, file_schema: pa.Schema) -> tuple[int, int]:
    """Write the tables in order into one Parquet file of ROW_GROUP_ROWS-row groups (the last
    one shorter) in `file_schema`. Returns (rows, row groups)."""
    writer, pending, rows, groups = storage.parquet_writer(path, file_schema), [], 0, 0
    for part in parts:
        part = part.cast(file_schema)
        rows += part.num_rows
        pending.append(part)
        held = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        cut = held.num_rows - held.num_rows % ROW_GROUP_ROWS
        if cut:
            writer.write_table(held.slice(0, cut), row_group_size=ROW_GROUP_ROWS)
            groups += cut // ROW_GROUP_ROWS
        pending = [held.slice(cut)] if cut < held.num_rows else []
        del part, held
        pa.default_memory_pool().release_unused()  # each part's buffers, before the next part's
    if pending:
        writer.write_table(pending[0], row_group_size=ROW_GROUP_ROWS)
        groups += 1
    writer.close()
    return rows, groups


def _ahead(parts):
    """The items of `parts`, each produced by a thread while the caller uses the one before (the
    Arrow takes and the Parquet writer both run outside the GIL: two cores instead of one). If
    the caller stops early (a write failed), the thread is stopped and its parts dropped."""
    queue: Queue = Queue(maxsize=1)
    done, stop = object(), threading.Event()

    def produce() -> None:
        try:
            for part in parts:
                if stop.is_set():
                    return
                queue.put(part)
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    thread = threading.Thread(target=produce, name="voter-file-parts", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a put() waiting for room
            try:
                queue.get(timeout=0.05)
            except Empty:
                pass
        thread.join()


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
