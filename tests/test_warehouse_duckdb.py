"""The embedded DuckDB warehouse and the voters_enriched builder, on small synthetic tables."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import duckdb
import luigi
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import warehouse_data  # noqa: E402

from voterpipe import schema, storage  # noqa: E402
from voterpipe.warehouse import (  # noqa: E402
    TABLE_NAMES, DuckDBWarehouse, WarehouseInputError, publish_snapshot, source_files,
)
from voterpipe.warehouse.enriched import build_voters_enriched, write_voters_enriched  # noqa: E402
from voterpipe.warehouse.tables import ENRICHED_INPUTS  # noqa: E402

NOV = date(2026, 11, 1)
OCT = date(2026, 10, 1)


def _write(root, state, snapshot, voters, **kwargs):
    tables = warehouse_data.upstream_tables(state, snapshot, voters, **kwargs)
    warehouse_data.write_upstream(root, state, snapshot, tables)
    return tables


def _query(warehouse, text, params=None):
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        return con.execute(text, params or []).fetchall()
    finally:
        con.close()


# -- voters_enriched as a pure function ----------------------------------------------------------

def test_enriched_joins_address_geocode_household_and_cohort_labels():
    voters = schema.conform(pa.table({
        "state": ["nc"] * 3, "voter_id": ["V1", "V2", "V3"], "last_name": ["A", "B", "C"],
        "congressional_district": ["4", "4", "4"],
    }), schema.VOTERS)
    voter_addresses = schema.conform(pa.table({
        "voter_id": ["V1", "V2", "V3"], "address_key": ["K1", "K1", None],
        "parse_status": ["ok", "ok", "missing"]}), schema.VOTER_ADDRESSES)
    addresses = schema.conform(pa.table({
        "address_key": ["K1"], "standardized_line": ["1 MAIN ST"], "zip5": ["27601"],
        "state": ["NC"]}), schema.ADDRESSES)
    geocodes = schema.conform(pa.table({
        "address_key": ["K1"], "status": ["match"], "county_fips": ["183"], "tract": ["052000"],
        "congressional_district": ["2"], "lon": [-78.6], "lat": [35.8]}), schema.GEOCODES)
    voter_households = schema.conform(pa.table({
        "voter_id": ["V1", "V2", "V3"], "household_id": ["K1", "K1", None]}), schema.VOTER_HOUSEHOLDS)
    households = schema.conform(pa.table({
        "household_id": ["K1"], "voter_count": pa.array([2], pa.int32()),
        "party_mix": ["mixed"], "congressional_district": ["2"]}), schema.HOUSEHOLDS)  # the geocode's, canonical
    cohorts = pa.table({"voter_id": ["V1", "V2", "V3"], "generation": ["Gen X", "Gen Z", "Boomer"],
                        "party": ["DEM", "REP", "unknown"]})

    out = build_voters_enriched("nc", NOV, {
        "voters": voters, "voter_addresses": voter_addresses, "addresses": addresses,
        "geocodes": geocodes, "voter_households": voter_households, "households": households,
        "voter_cohorts": cohorts,
    }).to_pylist()

    assert [r["voter_id"] for r in out] == ["V1", "V2", "V3"]
    assert all(r["state"] == "nc" and r["snapshot"] == NOV for r in out)
    first = out[0]
    assert first["address_line"] == "1 MAIN ST" and first["address_zip5"] == "27601"
    assert first["geocode_status"] == "match" and first["county_fips"] == "183"
    assert first["lon"] == pytest.approx(-78.6)
    # the state-reported district and the geocoded one are both kept, under distinct names
    assert first["congressional_district"] == "4" and first["geo_congressional_district"] == "2"
    assert first["household_id"] == "K1" and first["household_voter_count"] == 2
    assert first["household_party_mix"] == "mixed" and first["generation"] == "Gen X"
    # voter_cohorts' copy of a voter column does not shadow the voter's own column
    assert "cohort_party" not in first
    missing = out[2]
    assert missing["address_key"] is None and missing["address_parse_status"] == "missing"
    assert missing["geocode_status"] is None and missing["household_id"] is None
    assert missing["generation"] == "Boomer"


def test_voter_file_is_one_row_per_voter_sorted_by_voter_id(data_root, tmp_path):
    tables = warehouse_data.upstream_tables("nc", NOV, 300, seed=5)
    # the roll arrives in file order, not voter_id order
    tables["voters"] = tables["voters"].take(pa.array(list(range(299, -1, -1))))
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    path = tmp_path / "voters_enriched.parquet"

    written = write_voters_enriched(source_files("nc", NOV, data_root, ENRICHED_INPUTS), path)

    in_memory = build_voters_enriched("nc", NOV, tables)
    on_disk = pq.read_table(path)
    assert written == {"rows": 300, "columns": in_memory.num_columns, "row_groups": 1}
    assert on_disk.column_names == in_memory.column_names
    assert on_disk.to_pylist() == in_memory.to_pylist()
    ids = on_disk.column("voter_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == 300
    # voter_cohorts.household_size repeats households.voter_count: published once
    assert "household_size" not in on_disk.column_names
    assert "household_voter_count" in on_disk.column_names


def test_voter_file_joined_in_voter_id_ranges_is_the_same_file(data_root, tmp_path):
    tables = warehouse_data.upstream_tables("nc", NOV, 300, seed=11)
    tables["voters"] = tables["voters"].take(pa.array(list(range(299, -1, -1))))
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)

    whole = write_voters_enriched(files, tmp_path / "whole.parquet")
    ranged = write_voters_enriched(files, tmp_path / "ranged.parquet", rows_per_part=70)

    assert ranged == whole
    one, five = pq.read_table(tmp_path / "whole.parquet"), pq.read_table(tmp_path / "ranged.parquet")
    assert five.schema.equals(one.schema) and five.equals(one)
    ids = five.column("voter_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == 300


def test_memory_cap_and_spill_directory_change_no_output(data_root, tmp_path):
    from voterpipe.warehouse.duckdb_backend import limit_memory
    tables = warehouse_data.upstream_tables("nc", NOV, 200, seed=7)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    spill = tmp_path / "spill" / "duckdb"

    write_voters_enriched(files, tmp_path / "free.parquet")
    write_voters_enriched(files, tmp_path / "capped.parquet", memory_limit="64MB", spill_dir=spill)

    assert pq.read_table(tmp_path / "capped.parquet").equals(pq.read_table(tmp_path / "free.parquet"))
    capped, default = duckdb.connect(), duckdb.connect()
    limit_memory(capped, "64MB", spill)
    limit, directory = capped.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    default_limit = default.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    default.execute("SET memory_limit = '64MB'")
    assert limit != default_limit
    assert limit == default.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert directory == str(spill) and spill.is_dir()


def test_voter_file_task_runs_before_publish(data_root):
    from voterpipe.tasks.publish import PublishSnapshot
    from voterpipe.tasks.voter_file import BuildVoterFile

    warehouse_data.write_upstream(data_root, "nc", NOV,
                                  warehouse_data.upstream_tables("nc", NOV, 30), voter_file=False)
    voter_file = BuildVoterFile(state="nc", snapshot=NOV)
    assert not voter_file.complete()
    assert luigi.build([PublishSnapshot(state="nc", snapshot=NOV)], local_scheduler=True,
                       log_level="WARNING")
    assert voter_file.complete()
    manifest = voter_file.output().manifest()
    assert manifest["rows"] == 30 and manifest["files"] == ["voters_enriched.parquet"]
    assert voter_file.output().path == data_root / "07_reporting" / "nc" / NOV.isoformat() / "voter_file"
    assert _query(DuckDBWarehouse(data_root / "warehouse.duckdb"),
                  "SELECT count(*) FROM current_voters") == [(30,)]


# -- publishing ---------------------------------------------------------------------------------

def test_publish_then_query(data_root):
    _write(data_root, "nc", NOV, 40, history_per_voter=2)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    assert not warehouse.is_published("nc", NOV)

    report = publish_snapshot(warehouse, "nc", NOV)

    assert {name: t["rows"] for name, t in report["tables"].items()} == {
        "voters_enriched": 40, "households": 20, "addresses": 20, "vote_history": 80,
        "cohort_turnout": 4}
    assert warehouse.is_published("nc", NOV)
    assert _query(warehouse, "SELECT count(*), count(DISTINCT voter_id), count(household_id), "
                             "count(county_fips) FROM voters_enriched") == [(40, 40, 40, 40)]
    assert _query(warehouse, "SELECT DISTINCT state, snapshot FROM addresses") == [("nc", NOV)]
    # addresses carry their geocode; the address's own state column is renamed
    assert _query(warehouse, "SELECT count(*) FROM addresses WHERE geocode_status = 'match' "
                             "AND address_state = 'NC'") == [(20,)]
    markers = warehouse.publications()
    assert {(m["table_name"], m["row_count"]) for m in markers} == {
        ("voters_enriched", 40), ("households", 20), ("addresses", 20), ("vote_history", 80),
        ("cohort_turnout", 4)}
    assert all(m["checksum"].startswith("sha256:") for m in markers)


def test_republish_replaces_never_duplicates(data_root):
    _write(data_root, "nc", NOV, 30)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    first = publish_snapshot(warehouse, "nc", NOV)
    publish_snapshot(warehouse, "nc", NOV)
    assert _query(warehouse, "SELECT count(*) FROM voters_enriched") == [(30,)]
    assert len(warehouse.publications()) == len(TABLE_NAMES)

    _write(data_root, "nc", NOV, 24, seed=7)  # the stage was rebuilt with other data
    second = publish_snapshot(warehouse, "nc", NOV)
    assert _query(warehouse, "SELECT count(*) FROM voters_enriched") == [(24,)]
    assert _query(warehouse, "SELECT count(*) FROM households") == [(12,)]
    assert second["tables"]["voters_enriched"]["checksum"] != first["tables"]["voters_enriched"]["checksum"]
    assert warehouse.is_published("nc", NOV)


def test_two_snapshots_side_by_side_and_current_views(data_root):
    _write(data_root, "nc", OCT, 10)
    _write(data_root, "nc", NOV, 12)
    _write(data_root, "oh", OCT, 6)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    publish_snapshot(warehouse, "nc", NOV)
    publish_snapshot(warehouse, "oh", OCT)
    publish_snapshot(warehouse, "nc", OCT)  # an older snapshot published last is not "current"

    assert _query(warehouse, "SELECT state, snapshot, count(*) FROM voters_enriched "
                             "GROUP BY ALL ORDER BY ALL") == [("nc", OCT, 10), ("nc", NOV, 12),
                                                              ("oh", OCT, 6)]
    for view, expected in [("current_voters", [("nc", NOV, 12), ("oh", OCT, 6)]),
                           ("current_households", [("nc", NOV, 6), ("oh", OCT, 3)]),
                           ("current_addresses", [("nc", NOV, 6), ("oh", OCT, 3)]),
                           ("current_vote_history", [("nc", NOV, 12), ("oh", OCT, 6)]),
                           ("current_cohort_turnout", [("nc", NOV, 4), ("oh", OCT, 4)])]:
        assert _query(warehouse, f"SELECT state, snapshot, count(*) FROM {view} "
                                 "GROUP BY ALL ORDER BY ALL") == expected, view
    assert warehouse.is_published("nc", OCT) and warehouse.is_published("nc", NOV)
    assert not warehouse.is_published("oh", NOV)


def test_hostile_values_arrive_intact(data_root):
    _write(data_root, "nc", NOV, 20, hostile=True)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    publish_snapshot(warehouse, "nc", NOV)
    names = {row[0] for row in _query(warehouse, "SELECT last_name FROM voters_enriched")}
    assert set(warehouse_data.HOSTILE) <= names  # DuckDB keeps NUL characters too
    lines = {row[0] for row in _query(warehouse, "SELECT res_address_line FROM voters_enriched")}
    assert set(warehouse_data.HOSTILE) <= lines


def test_complete_cross_checks_row_counts(data_root):
    _write(data_root, "nc", NOV, 10)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    publish_snapshot(warehouse, "nc", NOV)
    con = duckdb.connect(str(warehouse.path))
    con.execute("DELETE FROM vote_history WHERE voter_id = 'NC3'")
    con.close()
    assert not warehouse.is_published("nc", NOV)  # the marker alone is not trusted


def test_bad_input_is_rejected_and_old_slice_kept(data_root, tmp_path):
    _write(data_root, "nc", NOV, 10)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    publish_snapshot(warehouse, "nc", NOV)

    tables = warehouse_data.upstream_tables("nc", NOV, 16, seed=3)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables)
    # a geocoder bug returns two rows for one address: the addresses table would repeat it
    geocodes = storage.stage_dir("geocoded", "nc", NOV, data_root) / "geocodes.parquet"
    storage.write_parquet(pa.concat_tables([tables["geocodes"], tables["geocodes"].slice(0, 1)]), geocodes)
    with pytest.raises(WarehouseInputError, match=r"geocodes\.parquet: 1 repeated address_key"):
        publish_snapshot(warehouse, "nc", NOV)
    assert _query(warehouse, "SELECT count(*) FROM voters_enriched") == [(10,)]
    assert warehouse.is_published("nc", NOV)
    # ... and the voter file, whose join would repeat voters, is not built from it
    with pytest.raises(WarehouseInputError, match=r"geocodes\.parquet: 1 repeated address_key"):
        write_voters_enriched(source_files("nc", NOV, data_root, ENRICHED_INPUTS), tmp_path / "v.parquet")

    tables = warehouse_data.upstream_tables("nc", NOV, 16, seed=3)
    tables["voters"] = pa.concat_tables([tables["voters"], tables["voters"].slice(2, 1)])
    with pytest.raises(WarehouseInputError, match=r"voters\.parquet: 1 repeated voter_id"):
        warehouse_data.write_upstream(data_root, "nc", NOV, tables)
    assert _query(warehouse, "SELECT count(*) FROM voters_enriched") == [(10,)]


def test_missing_upstream_file_is_named(data_root):
    _write(data_root, "nc", NOV, 4)
    (data_root / "04_geocoded" / "nc" / NOV.isoformat() / "geocodes.parquet").unlink()
    with pytest.raises(WarehouseInputError, match="geocodes.parquet"):
        source_files("nc", NOV, data_root)


def test_publish_snapshot_task_uses_the_configured_duckdb(data_root):
    pytest.importorskip("voterpipe.tasks.cohorts")
    from voterpipe.tasks.publish import PublishSnapshot

    _write(data_root, "nc", NOV, 12)
    task = PublishSnapshot(state="nc", snapshot=NOV)
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert task.complete()
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    assert _query(warehouse, "SELECT count(*) FROM current_voters") == [(12,)]
