"""A way back: `voterpipe retract` takes a published snapshot out of the warehouse (the current_*
views move back to the previous snapshot in one transaction) and marks its stage outputs for
rebuilding; `voterpipe rebuild --from STAGE` rebuilds a stage and everything downstream. Real
runs on DuckDB and on a real PostgreSQL server (tests/pg_server.py)."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path

import luigi
import psycopg2
import psycopg2.extensions
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402
import bad_snapshots as bad  # noqa: E402
import warehouse_data  # noqa: E402

from voterpipe import catalog, storage  # noqa: E402
from voterpipe.config import PG_DSN_ENV  # noqa: E402
from voterpipe.warehouse import PostgresWarehouse, SnapshotNotPublished, publish_snapshot  # noqa: E402

REFUSED = 3
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)




def _published_stages(root: Path, snapshot: date) -> list[str]:
    return [name for name in catalog.STAGES if name != "raw"
            and storage.is_published(catalog.stage(name).directory("nc", snapshot, root))]


def test_retract_on_duckdb_moves_current_back_and_marks_the_stages(root, capsys):
    bad.next_drop(root)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == 0, output
    assert bad.current_snapshots(root) == {bad.SECOND}

    code, output = bad.run("retract", "--state", "nc", "--snapshot", "2026-11-08", capsys=capsys)
    assert code == 0, output
    assert "retracted nc 2026-11-08 from the duckdb warehouse" in output
    assert "current snapshot of nc: 2026-11-08 -> 2026-11-01" in output
    assert "stages marked for rebuilding: canonical, addresses, geocoded" in output
    assert bad.current_snapshots(root) == {bad.FIRST}
    assert _published_stages(root, bad.SECOND) == []
    assert len(_published_stages(root, bad.FIRST)) == len(catalog.STAGES) - 1  # untouched

    code, output = bad.run("retract", "--state", "nc", "--snapshot", "2026-11-08", capsys=capsys)
    assert code == REFUSED
    assert "retract refused" in output and "holds no published snapshot nc 2026-11-08" in output
    assert "published snapshots of nc: 2026-11-01" in output

    # the next run rebuilds every stage and publishes it again
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == 0, output
    assert bad.current_snapshots(root) == {bad.SECOND}


def test_rebuild_from_a_stage_rebuilds_it_and_downstream_only(root, capsys):
    canonical = catalog.stage("canonical").directory("nc", bad.FIRST, root) / "voters.parquet"
    geocodes = catalog.stage("geocoded").directory("nc", bad.FIRST, root) / "geocodes.parquet"
    before = canonical.stat().st_mtime_ns, geocodes.stat().st_mtime_ns
    code, output = bad.run("rebuild", "--state", "nc", "--snapshot", "2026-11-01", "--from", "geocoded",
                           "--local-scheduler", capsys=capsys)
    assert code == 0, output
    assert "marked for rebuilding nc 2026-11-01: geocoded, households, cohorts, voter_file, report, publish" \
        in output
    assert canonical.stat().st_mtime_ns == before[0]  # upstream: kept
    assert geocodes.stat().st_mtime_ns != before[1]  # rebuilt
    assert bad.current_snapshots(root) == {bad.FIRST}

    code, output = bad.run("rebuild", "--state", "nc", "--snapshot", "2019-01-01", "--from", "canonical",
                           capsys=capsys)
    assert code == REFUSED and "rebuild refused: no snapshot nc 2019-01-01" in output
    code, output = bad.run("rebuild", "--state", "nc", "--snapshot", "2026-11-01", "--from", "nowhere",
                           capsys=capsys)
    assert code == REFUSED and "unknown stage 'nowhere'" in output


# ---- PostgreSQL --------------------------------------------------------------------------------

@pytest.fixture
def pg_schema(pg_dsn):
    schema = f"vp_retract_{uuid.uuid4().hex[:8]}"
    yield schema
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


_query = pg_server.query


def test_retract_on_postgres_drops_the_partitions_and_moves_the_views_back(pg_dsn, pg_schema, data_root):
    warehouse = PostgresWarehouse(pg_dsn, pg_schema)
    for snapshot, voters in ((OCT, 10), (NOV, 12)):
        warehouse_data.write_upstream(data_root, "nc", snapshot, warehouse_data.upstream_tables("nc", snapshot, voters))
        publish_snapshot(warehouse, "nc", snapshot)
    views = ("current_voters", "current_households", "current_addresses", "current_vote_history",
             "current_cohort_turnout")
    for view in views:
        assert _query(pg_dsn, f"SELECT DISTINCT snapshot FROM {pg_schema}.{view}") == [(NOV,)]

    report = warehouse.retract("nc", NOV)
    assert report["current_before"] == "2026-11-01" and report["current_after"] == "2026-10-01"
    assert report["rows_deleted"]["voters_enriched"] == 12
    for view in views:
        assert _query(pg_dsn, f"SELECT DISTINCT snapshot FROM {pg_schema}.{view}") == [(OCT,)], view
    partitions = {row[0] for row in _query(
        pg_dsn, f"SELECT tablename FROM pg_tables WHERE schemaname = '{pg_schema}' AND tablename LIKE '%%__nc_%%'")}
    assert partitions and not any(name.endswith("20261101") for name in partitions)
    assert not warehouse.is_published("nc", NOV) and warehouse.is_published("nc", OCT)
    with pytest.raises(SnapshotNotPublished, match="published snapshots of nc: 2026-10-01"):
        warehouse.retract("nc", NOV)


def test_retract_command_on_postgres_after_a_real_run(root, pg_dsn, pg_schema, monkeypatch, capsys):
    monkeypatch.setenv(PG_DSN_ENV, pg_dsn)
    config = luigi.configuration.get_config()
    monkeypatch.setitem(config["warehouse"], "backend", "postgres")
    monkeypatch.setitem(config["warehouse"], "schema", pg_schema)
    for snapshot in (bad.FIRST, bad.SECOND):
        if snapshot == bad.SECOND:
            bad.next_drop(root)
        code, output = bad.run_snapshot(snapshot, capsys=capsys)
        assert code == 0, output
    assert _query(pg_dsn, f"SELECT DISTINCT snapshot FROM {pg_schema}.current_voters") == [(bad.SECOND,)]

    code, output = bad.run("retract", "--state", "nc", "--snapshot", "2026-11-08", capsys=capsys)
    assert code == 0, output
    assert "from the postgres warehouse" in output and "2026-11-08 -> 2026-11-01" in output
    assert pg_dsn.split("password=")[-1] not in output  # the DSN's password never shows
    assert _query(pg_dsn, f"SELECT DISTINCT snapshot FROM {pg_schema}.current_voters") == [(bad.FIRST,)]
    code, output = bad.run("retract", "--state", "nc", "--snapshot", "2026-11-08", capsys=capsys)
    assert code == REFUSED and "holds no published snapshot nc 2026-11-08" in output
