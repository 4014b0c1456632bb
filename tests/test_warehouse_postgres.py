"""The PostgreSQL warehouse against a real server: $VOTERPIPE_TEST_PG_DSN, or a throwaway
cluster started by tests/pg_server.py (skipped, with the reason, when neither is possible)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from datetime import date
from pathlib import Path

import luigi
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402
import warehouse_data  # noqa: E402

from voterpipe.warehouse import (  # noqa: E402
    TABLE_NAMES, PostgresWarehouse, WarehouseConnectionError, WarehouseInputError,
    publish_snapshot, source_files,
)
from voterpipe.warehouse.pg_dsn import describe_dsn, redact  # noqa: E402

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[1]
NOV = date(2026, 11, 1)
OCT = date(2026, 10, 1)


@pytest.fixture
def warehouse(pg):
    schema = f"vp_test_{uuid.uuid4().hex[:8]}"
    yield PostgresWarehouse(pg.dsn, schema)
    conn = psycopg2.connect(pg.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def _query(pg, text, params=None):
    return pg_server.query(pg.dsn, text, params)


def _write(root, state, snapshot, voters, **kwargs):
    tables = warehouse_data.upstream_tables(state, snapshot, voters, **kwargs)
    warehouse_data.write_upstream(root, state, snapshot, tables)
    return tables


def test_publish_then_query(pg, warehouse, data_root):
    _write(data_root, "nc", NOV, 40, history_per_voter=2)
    assert not warehouse.is_published("nc", NOV)

    report = publish_snapshot(warehouse, "nc", NOV)

    s = warehouse.schema
    assert {name: t["rows"] for name, t in report["tables"].items()} == {
        "voters_enriched": 40, "households": 20, "addresses": 20, "vote_history": 80,
        "cohort_turnout": 4}
    assert warehouse.is_published("nc", NOV)
    assert _query(pg, f"SELECT count(*), count(DISTINCT voter_id), count(household_id), "
                      f"count(county_fips), min(birth_year) > 1900 FROM {s}.voters_enriched") == [
        (40, 40, 40, 40, True)]
    # types survive the trip: dates, floats, booleans, integers
    row = _query(pg, f"SELECT snapshot, birth_date IS NOT NULL, lon < 0, "
                     f"household_likely_group_quarters, household_voter_count "
                     f"FROM {s}.voters_enriched WHERE voter_id = 'NC0'")
    assert row == [(NOV, True, True, False, 2)]
    markers = _query(pg, f"SELECT table_name, row_count, checksum LIKE 'sha256:%%', nul_stripped "
                         f"FROM {s}.publications ORDER BY table_name")
    assert markers == sorted([(name, report["tables"][name]["rows"], True, 0) for name in TABLE_NAMES])
    indexed = {r[0] for r in _query(
        pg, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        [s, "voters_enriched__nc_20261101"])}
    assert any("(voter_id)" in d for d in indexed)
    assert any("(household_id)" in d for d in indexed)
    assert any("(county_fips, tract, block_group)" in d for d in indexed)


def test_republish_replaces_never_duplicates(pg, warehouse, data_root):
    _write(data_root, "nc", NOV, 30)
    publish_snapshot(warehouse, "nc", NOV)
    publish_snapshot(warehouse, "nc", NOV)
    s = warehouse.schema
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched") == [(30,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.publications") == [(len(TABLE_NAMES),)]

    _write(data_root, "nc", NOV, 22, seed=5)  # the upstream stage was rebuilt
    publish_snapshot(warehouse, "nc", NOV)
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched") == [(22,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.households") == [(11,)]
    # exactly one partition per table for the slice, no staging leftovers
    tables = {r[0] for r in _query(pg, "SELECT tablename FROM pg_tables WHERE schemaname = %s", [s])}
    assert {t for t in tables if "__" in t} == {f"{name}__nc_20261101" for name in TABLE_NAMES}
    assert warehouse.is_published("nc", NOV)


def test_two_snapshots_side_by_side_and_current_views(pg, warehouse, data_root):
    _write(data_root, "nc", OCT, 10)
    _write(data_root, "nc", NOV, 12)
    _write(data_root, "oh", OCT, 6)
    publish_snapshot(warehouse, "nc", NOV)
    publish_snapshot(warehouse, "oh", OCT)
    publish_snapshot(warehouse, "nc", OCT)  # published last but older: not current

    s = warehouse.schema
    assert _query(pg, f"SELECT state, snapshot, count(*) FROM {s}.voters_enriched "
                      "GROUP BY 1, 2 ORDER BY 1, 2") == [("nc", OCT, 10), ("nc", NOV, 12), ("oh", OCT, 6)]
    for view, expected in [("current_voters", [("nc", NOV, 12), ("oh", OCT, 6)]),
                           ("current_households", [("nc", NOV, 6), ("oh", OCT, 3)]),
                           ("current_addresses", [("nc", NOV, 6), ("oh", OCT, 3)]),
                           ("current_vote_history", [("nc", NOV, 12), ("oh", OCT, 6)]),
                           ("current_cohort_turnout", [("nc", NOV, 4), ("oh", OCT, 4)])]:
        assert _query(pg, f"SELECT state, snapshot, count(*) FROM {s}.{view} "
                          "GROUP BY 1, 2 ORDER BY 1, 2") == expected, view


def test_hostile_values_arrive_intact_and_nul_is_stripped_and_counted(pg, warehouse, data_root):
    _write(data_root, "nc", NOV, 20, hostile=True)
    report = publish_snapshot(warehouse, "nc", NOV)
    s = warehouse.schema
    names = {r[0] for r in _query(pg, f"SELECT last_name FROM {s}.voters_enriched")}
    lines = {r[0] for r in _query(pg, f"SELECT res_address_line FROM {s}.voters_enriched")}
    expected = {value.replace("\x00", "") for value in warehouse_data.HOSTILE}
    assert expected <= names and expected <= lines
    # the empty string stays an empty string, distinct from NULL
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched WHERE last_name = ''") == [(1,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched WHERE last_name IS NULL") == [(0,)]
    stripped = report["tables"]["voters_enriched"]
    assert stripped["nul_stripped_by_column"]["last_name"] == 1
    assert stripped["nul_stripped_by_column"]["res_address_line"] == 1
    assert _query(pg, f"SELECT nul_stripped FROM {s}.publications WHERE table_name = 'voters_enriched'") == [
        (stripped["nul_stripped"],)]
    assert warehouse.is_published("nc", NOV)


def test_incompatible_data_is_rejected_with_reason_and_old_slice_kept(pg, warehouse, data_root):
    tables = _write(data_root, "nc", NOV, 10)
    publish_snapshot(warehouse, "nc", NOV)
    turnout = tables["cohort_turnout"]
    index = turnout.column_names.index("registered")
    tables["cohort_turnout"] = turnout.set_column(index, "registered", turnout.column("registered").cast(pa.string()))
    warehouse_data.write_upstream(data_root, "nc", NOV, tables)
    with pytest.raises(WarehouseInputError, match=r"cohort_turnout\.registered is bigint .* text"):
        publish_snapshot(warehouse, "nc", NOV)
    assert warehouse.is_published("nc", NOV)
    assert _query(pg, f"SELECT count(*) FROM {warehouse.schema}.voters_enriched") == [(10,)]


def test_complete_cross_checks_row_counts(pg, warehouse, data_root):
    _write(data_root, "nc", NOV, 10)
    publish_snapshot(warehouse, "nc", NOV)
    conn = psycopg2.connect(pg.dsn)
    with conn, conn.cursor() as cur:
        cur.execute(f"DELETE FROM {warehouse.schema}.households WHERE household_id = 'a1'")
    conn.close()
    assert not warehouse.is_published("nc", NOV)


KILL_SCRIPT = """
import os, sys
from datetime import date
from pathlib import Path
from voterpipe.warehouse import PostgresWarehouse, publish_snapshot
publish_snapshot(PostgresWarehouse(os.environ["VOTERPIPE_PG_DSN"], sys.argv[1],
                                   rows_per_connection=int(sys.argv[4])), "nc",
                 date.fromisoformat(sys.argv[2]), Path(sys.argv[3]))
"""


def test_killed_publish_leaves_old_snapshot_readable_and_rerun_completes(pg, warehouse, data_root):
    _write(data_root, "nc", NOV, 50)
    publish_snapshot(warehouse, "nc", NOV)
    _write(data_root, "nc", NOV, 60_000, seed=9)  # a rebuilt, much larger snapshot

    env = {**os.environ, "VOTERPIPE_PG_DSN": pg.dsn, "PYTHONPATH": str(REPO_ROOT)}
    # 20,000 rows per connection: the 60,000 voters load over two connections at once
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, warehouse.schema, NOV.isoformat(),
                             str(data_root), "20000"], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watcher = psycopg2.connect(pg.dsn)
    watcher.autocommit = True
    copying = None
    deadline = time.monotonic() + 60
    try:
        with watcher.cursor() as cur:
            while time.monotonic() < deadline and proc.poll() is None:
                cur.execute(
                    "SELECT p.relid::regclass::text, p.tuples_processed FROM pg_stat_progress_copy p "
                    "JOIN pg_stat_activity a ON a.pid = p.pid "
                    "WHERE a.application_name = 'voterpipe-warehouse' AND p.tuples_processed > 1000")
                found = cur.fetchone()
                if found:
                    copying = found
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
    finally:
        watcher.close()
    proc.wait(timeout=30)
    assert copying is not None, f"never saw the COPY running: {proc.stderr.read().decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    # the old snapshot is untouched and complete
    s = warehouse.schema
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched") == [(50,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.current_voters") == [(50,)]
    assert warehouse.is_published("nc", NOV)

    publish_snapshot(warehouse, "nc", NOV)
    assert _query(pg, f"SELECT count(*), count(DISTINCT voter_id) FROM {s}.voters_enriched") == [
        (60_000, 60_000)]
    assert warehouse.is_published("nc", NOV)
    leftovers = _query(pg, "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                           "AND tablename LIKE %s", [s, "%loading"])
    assert leftovers == []
    assert _unattached_parts(pg, s) == [("publications",)]


def test_password_never_in_logs_or_errors(pg, warehouse, data_root, caplog, capfd, monkeypatch):
    if not pg.password:
        pytest.skip("the test DSN has no password to look for")
    caplog.set_level(logging.DEBUG)
    _write(data_root, "nc", NOV, 8)
    publish_snapshot(warehouse, "nc", NOV)
    assert "host=" in caplog.text  # the server is named in logs...
    assert pg.password not in repr(warehouse) and pg.password not in warehouse.describe()

    wrong = pg.dsn.replace(pg.password, pg.password + "-wrong")
    parts = psycopg2.extensions.parse_dsn(pg.dsn)
    url = (f"postgresql://{parts.get('user', 'x')}:{pg.password}@{parts.get('host', 'localhost')}:1/"
           f"{parts.get('dbname', 'postgres')}")
    malformed = f"{pg.dsn} this-is-not=a-known-option"
    errors = []
    for dsn in (wrong, url, malformed):
        with pytest.raises(WarehouseConnectionError) as caught:
            PostgresWarehouse(dsn, warehouse.schema).publish(source_files("nc", NOV))
        logging.getLogger("voterpipe.warehouse").error("publish failed", exc_info=caught.value)
        errors.append("".join(traceback.format_exception(caught.value)))
    assert "password authentication failed" in errors[0]

    # the same through Luigi, which logs the failing complete() with its traceback
    pytest.importorskip("voterpipe.tasks.cohorts")
    from voterpipe.tasks.publish import PublishSnapshot

    monkeypatch.setenv("VOTERPIPE_PG_DSN", wrong)
    config = luigi.configuration.get_config()
    config.set("warehouse", "backend", "postgres")
    config.set("warehouse", "schema", warehouse.schema)
    try:
        assert not luigi.build([PublishSnapshot(state="nc", snapshot=NOV)], local_scheduler=True)
    finally:
        config.set("warehouse", "backend", "duckdb")
        config.set("warehouse", "schema", "voterpipe")
    out, err = capfd.readouterr()
    everything = caplog.text + out + err + "".join(errors)
    assert "password authentication failed" in everything
    for secret in (pg.password, pg.password + "-wrong"):
        assert secret not in everything


def test_redact_and_describe_dsn():
    dsn = "host=db.example port=5432 dbname=vp user=loader password='s3 cr\\'et'"
    assert "s3" not in describe_dsn(dsn) and describe_dsn(dsn) == "host=db.example port=5432 dbname=vp user=loader"
    assert redact("failed for s3 cr'et here", dsn) == "failed for *** here"
    url = "postgresql://loader:hunter2@db.example:5432/vp"
    assert redact(f"could not connect: {url}", url) == "could not connect: postgresql://loader:***@db.example:5432/vp"


@pytest.mark.parametrize("rows_per_connection", [250_000, 5_000], ids=["one-connection", "parallel"])
def test_two_states_publish_concurrently(pg, warehouse, data_root, rows_per_connection):
    """Loads overlap and both swaps lock the same parents: neither may deadlock or fail."""
    import threading

    _write(data_root, "nc", NOV, 15_000)
    _write(data_root, "oh", NOV, 15_000, seed=4)
    errors = []

    def publish(state):
        try:
            PostgresWarehouse(pg.dsn, warehouse.schema, rows_per_connection=rows_per_connection).publish(
                source_files(state, NOV))
        except Exception as exc:  # reported below with the state that failed
            errors.append((state, exc))

    threads = [threading.Thread(target=publish, args=(state,)) for state in ("nc", "oh")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert _query(pg, f"SELECT state, count(*) FROM {warehouse.schema}.current_voters "
                      "GROUP BY 1 ORDER BY 1") == [("nc", 15_000), ("oh", 15_000)]


def test_schema_migrates_when_upstream_adds_a_column(pg, warehouse, data_root):
    _write(data_root, "nc", OCT, 6)
    publish_snapshot(warehouse, "nc", OCT)
    tables = warehouse_data.upstream_tables("nc", NOV, 8)
    cohorts = tables["voter_cohorts"]
    tables["voter_cohorts"] = cohorts.append_column("precinct_cluster", pa.array(["x"] * cohorts.num_rows))
    warehouse_data.write_upstream(data_root, "nc", NOV, tables)
    publish_snapshot(warehouse, "nc", NOV)

    s = warehouse.schema
    assert _query(pg, f"SELECT snapshot, count(precinct_cluster), count(*) FROM {s}.voters_enriched "
                      "GROUP BY 1 ORDER BY 1") == [(OCT, 0, 6), (NOV, 8, 8)]
    assert _query(pg, f"SELECT count(precinct_cluster) FROM {s}.current_voters") == [(8,)]
    assert warehouse.is_published("nc", OCT) and warehouse.is_published("nc", NOV)


# -- parallel load: big tables are split by key range over several connections ----------------

def _parallel(pg, warehouse):
    """The same schema, loading any table of 1,000+ rows over two connections."""
    return PostgresWarehouse(pg.dsn, warehouse.schema, copy_connections=2, rows_per_connection=1_000)


def _unattached_parts(pg, schema):
    return _query(pg, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = %s AND c.relkind = 'r' AND NOT c.relispartition", [schema])


def test_parallel_load_splits_by_key_and_keeps_every_guarantee(pg, warehouse, data_root):
    parallel = _parallel(pg, warehouse)
    s = warehouse.schema
    _write(data_root, "nc", NOV, 4_000, hostile=True)
    report = publish_snapshot(parallel, "nc", NOV)
    assert report["tables"]["voters_enriched"]["copy_connections"] == 2
    assert report["tables"]["cohort_turnout"]["copy_connections"] == 1
    stripped = report["tables"]["voters_enriched"]["nul_stripped_by_column"]
    assert stripped["last_name"] == 1 and stripped["res_address_line"] == 1

    # the slice is itself partitioned by voter_id; each range holds a share of the rows
    leaves = _query(pg, "SELECT c.relname, count(*) OVER () FROM pg_inherits i "
                        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                        "WHERE p.relname = 'voters_enriched__nc_20261101' ORDER BY 1")
    assert [name for name, _ in leaves] == ["voters_enriched__nc_20261101__p0", "voters_enriched__nc_20261101__p1"]
    sizes = [_query(pg, f'SELECT count(*) FROM {s}."{name}"')[0][0] for name, _ in leaves]
    assert sum(sizes) == 4_000 and min(sizes) > 1_000
    # the parts' indexes serve the parent's partitioned indexes
    assert _query(pg, "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                  [s, "voters_enriched__nc_20261101__p1"]) == [(3,)]
    assert _query(pg, f"SELECT count(*), count(DISTINCT voter_id) FROM {s}.current_voters") == [(4_000, 4_000)]
    expected = {value.replace("\x00", "") for value in warehouse_data.HOSTILE}
    assert expected <= {r[0] for r in _query(pg, f"SELECT last_name FROM {s}.voters_enriched")}
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched WHERE last_name = ''") == [(1,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.vote_history") == [(4_000,)]
    assert parallel.is_published("nc", NOV)

    # republishing (now with fewer rows) replaces the slice; nothing is left unattached
    _write(data_root, "nc", NOV, 3_000, seed=3)
    publish_snapshot(parallel, "nc", NOV)
    assert _query(pg, f"SELECT count(*), count(DISTINCT voter_id) FROM {s}.voters_enriched") == [(3_000, 3_000)]
    assert _unattached_parts(pg, s) == [("publications",)]
    assert parallel.is_published("nc", NOV)


def test_parts_of_whole_row_groups_load_the_same_rows_as_the_select(pg, warehouse, data_root, monkeypatch):
    import pyarrow.parquet as pq

    from voterpipe import catalog
    from voterpipe.warehouse import pg_parts

    _write(data_root, "nc", NOV, 4_000, hostile=True)
    path = catalog.dataset_path("voters_enriched", "nc", NOV, data_root)
    pq.write_table(pq.read_table(path).sort_by("voter_id"), path, row_group_size=500)
    shortcuts, read_row_groups = [], pg_parts.row_group_batches

    def recording(*args):
        batches = read_row_groups(*args)
        shortcuts.append((args[0].name, batches is not None))
        return batches

    monkeypatch.setattr(pg_parts, "row_group_batches", recording)
    publish_snapshot(_parallel(pg, warehouse), "nc", NOV)
    assert shortcuts.count(("voters_enriched", True)) == 2  # both parts read whole row groups
    one = PostgresWarehouse(pg.dsn, warehouse.schema + "_one")  # one connection: the DuckDB select
    try:
        publish_snapshot(one, "nc", NOV)
        digests = [_query(pg, f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY voter_id)) "
                              f'FROM "{schema}".voters_enriched t')[0]
                   for schema in (warehouse.schema, one.schema)]
        assert digests[0] == digests[1] and digests[0][0] == 4_000
    finally:
        _query_commit(pg, f'DROP SCHEMA IF EXISTS "{one.schema}" CASCADE')


@pytest.mark.parametrize("ordered", [True, False], ids=["sorted-row-groups", "shuffled-row-groups"])
def test_part_bounds_move_to_row_group_starts_only_when_the_file_is_sorted_by_the_key(tmp_path, ordered):
    import duckdb
    import pyarrow.parquet as pq

    from voterpipe.warehouse import tables as wt
    from voterpipe.warehouse.pg_parts import part_bounds

    keys = [f"V{i:05d}" for i in range(10_000)]
    if not ordered:  # each row group then spans the whole key range
        keys = keys[::2] + keys[1::2]
        keys = [k for pair in zip(keys[:5_000], keys[5_000:]) for k in pair][::-1]
    path = tmp_path / "voters_enriched.parquet"
    pq.write_table(pa.table({"voter_id": keys}), path, row_group_size=1_500)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW src_voters_enriched AS SELECT * FROM read_parquet('{path}')")
    table = next(t for t in wt.TABLES if t.name == "voters_enriched")
    exact = part_bounds(con, table, 10_000, 3, 1_000)
    snapped = part_bounds(con, table, 10_000, 3, 1_000, path)
    assert [b for b, _ in exact[1:]] == ["V03333", "V06666"]
    if ordered:  # row groups start at rows 3,000 and 6,000: the nearest to 3,333 and 6,666
        assert snapped == [(None, "V03000"), ("V03000", "V06000"), ("V06000", None)]
    else:
        assert snapped == exact


def test_failed_parallel_range_leaves_old_snapshot_and_no_orphan_parts(pg, warehouse, data_root):
    parallel = _parallel(pg, warehouse)
    s = warehouse.schema
    _write(data_root, "nc", NOV, 50)
    publish_snapshot(parallel, "nc", NOV)

    tables = warehouse_data.upstream_tables("nc", NOV, 4_000, seed=2)
    voters = tables["voters"]
    # a birth date PostgreSQL cannot store, in the upper voter_id range only: that range's COPY
    # fails while the other range's load runs (or has committed) on its own connection
    births = voters.column("birth_date").to_pylist()
    ids = voters.column("voter_id").to_pylist()
    bad = max(range(len(ids)), key=lambda i: ids[i])
    position = voters.column_names.index("birth_date")
    days = pa.array([(b - date(1970, 1, 1)).days for b in births], pa.int32()).to_numpy().copy()
    days[bad] = -3_000_000  # about 6200 BC; PostgreSQL dates start at 4713 BC
    tables["voters"] = voters.set_column(position, "birth_date", pa.array(days).cast(pa.date32()))
    warehouse_data.write_upstream(data_root, "nc", NOV, tables)

    with pytest.raises(Exception, match="date out of range") as raised:
        publish_snapshot(parallel, "nc", NOV)
    assert "publishing nc 2026-11-01 failed, the published data is unchanged" in str(raised.value)
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched") == [(50,)]
    assert _query(pg, f"SELECT count(*) FROM {s}.current_voters") == [(50,)]
    assert warehouse.is_published("nc", NOV)
    assert _unattached_parts(pg, s) == [("publications",)]


def test_parts_left_by_a_killed_publish_are_dropped_by_the_next(pg, warehouse, data_root):
    parallel = _parallel(pg, warehouse)
    s = warehouse.schema
    _write(data_root, "nc", NOV, 2_500)
    publish_snapshot(parallel, "nc", NOV)
    # what a publish killed after its ranges committed leaves behind: committed, unattached parts
    for name in ("voters_enriched__nc_20261101__p0_0badc0de", "households__nc_20261101__p1_0badc0de"):
        _query_commit(pg, f'CREATE TABLE {s}."{name}" (LIKE {s}.voters_enriched)')
    # another slice's in-flight parts are not this publish's to drop
    _query_commit(pg, f'CREATE TABLE {s}."voters_enriched__oh_20261101__p0_12345678" (x int)')
    assert warehouse.is_published("nc", NOV)  # readers never see parts

    publish_snapshot(parallel, "nc", NOV)
    assert sorted(_unattached_parts(pg, s)) == [("publications",), ("voters_enriched__oh_20261101__p0_12345678",)]
    assert _query(pg, f"SELECT count(*) FROM {s}.voters_enriched") == [(2_500,)]
    assert parallel.is_published("nc", NOV)


def test_types_without_a_binary_rendering_travel_as_csv(pg, warehouse, data_root):
    from decimal import Decimal

    tables = warehouse_data.upstream_tables("nc", NOV, 1_200)
    voters = tables["voters"]
    scores = pa.array([Decimal(i) / 100 for i in range(voters.num_rows)], pa.decimal128(10, 2))
    tables["voters"] = voters.append_column("score", scores)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables)
    for loader in (warehouse, _parallel(pg, warehouse)):
        publish_snapshot(loader, "nc", NOV)
        s = warehouse.schema
        assert _query(pg, f"SELECT sum(score), count(*) FROM {s}.voters_enriched") == [
            (sum(Decimal(i) / 100 for i in range(1_200)), 1_200)]
        assert loader.is_published("nc", NOV)


def _query_commit(pg, text):
    conn = psycopg2.connect(pg.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text)
    finally:
        conn.close()
