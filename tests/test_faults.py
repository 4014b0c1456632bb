"""Fault suite: `voterpipe run` (a subprocess, as in tests/test_chaos.py) while the world fails
around it: PostgreSQL stops in the middle of a publish, the disk fills up (a small tmpfs data
root), the Census-compatible service commits every fault it knows at once. Each run must fail
clearly or succeed, never leave a corrupt output, and the next run must succeed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg2
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402
import chaos_runs as chaos  # noqa: E402
from geocoder_faults import FAULTS, FaultPlan  # noqa: E402

from voterpipe import storage, synth  # noqa: E402
from voterpipe.config import DATA_ROOT_ENV  # noqa: E402
from voterpipe.geocode.service import make_server  # noqa: E402
from voterpipe.geocode.tiger import TigerGeocoder  # noqa: E402

pytestmark = pytest.mark.chaos

FIRST, SECOND = chaos.SNAPSHOT, date(2026, 11, 8)
TASK_FAILED = 30


def run(root: Path, config: Path | None = None, env: dict | None = None, snapshot: date = FIRST,
        timeout: float = chaos.RUN_TIMEOUT, file_size_limit: int | None = None,
        task: str = "EnrichSnapshot") -> tuple[int, str]:
    process = chaos.PipelineProcess(root, config, env or {}, snapshot=snapshot, file_size_limit=file_size_limit,
                                    task=task)
    code = process.finish(timeout)
    return code, process.log


def last_words(log: str) -> str:
    return log.rsplit("===== Luigi Execution Summary =====", 1)[-1]


def write_next_snapshot(root: Path) -> None:
    """SECOND: FIRST's population a week later (some moved, some new, some removed)."""
    previous = os.environ.get(DATA_ROOT_ENV)
    os.environ[DATA_ROOT_ENV] = str(root)
    try:
        synth.write_drop(state="nc", voters=chaos.VOTERS, snapshot=SECOND, seed=5, from_snapshot=FIRST)
    finally:
        if previous is None:
            os.environ.pop(DATA_ROOT_ENV, None)
        else:
            os.environ[DATA_ROOT_ENV] = previous


@pytest.fixture(scope="module")
def chaos_seed_root(tmp_path_factory) -> Path:
    return chaos.build_seed_root(tmp_path_factory.mktemp("fault-seed") / "data")


# ---- PostgreSQL stopped mid-publish --------------------------------------------------------------

@pytest.fixture(scope="module")
def own_pg():
    """A server of this module's own: the test stops and restarts it."""
    try:
        server = pg_server.start_server()
    except pg_server.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server available: {exc}")
    yield server
    server.stop()


def pg_ctl(server: pg_server.PostgresServer, *args: str) -> None:
    done = subprocess.run([*server.run_as, str(server.bin_dir / "pg_ctl"), *args, "-D",
                           str(server.directory / "data"), "-w", "-t", "60"],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr


query = pg_server.query


def wait_for_blocked_publish(dsn: str, timeout: float = 120) -> None:
    """Until a session waits on a lock while writing the publication marker (the publish has
    loaded every table in its transaction and is about to commit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND query ILIKE '%publications%'")[0][0]:
            return
        time.sleep(0.1)
    raise TimeoutError("the publish never reached its marker")


def test_postgres_stopped_mid_publish_keeps_the_old_snapshot_and_a_rerun_completes(
        own_pg, chaos_seed_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(chaos_seed_root, root)
    schema = "vp_fault_stop"
    config, env, dsn = chaos.backend_setup("postgres", (own_pg.dsn, None), tmp_path, schema)
    code, log = run(root, config, env)
    assert code == 0, log[-3000:]
    first_voters = query(dsn, f"SELECT count(*) FROM {schema}.current_voters")[0][0]
    write_next_snapshot(root)

    # Hold the marker table so the publish of SECOND stops just before it commits, then stop the server.
    holder = psycopg2.connect(dsn)
    holder.cursor().execute(f"LOCK TABLE {schema}.publications IN EXCLUSIVE MODE")
    publishing = chaos.PipelineProcess(root, config, env, snapshot=SECOND)
    try:
        wait_for_blocked_publish(dsn)
        pg_ctl(own_pg, "stop", "-m", "immediate")
    finally:
        holder.close()
    code = publishing.finish(timeout=180)
    said = last_words(publishing.log)
    assert code == TASK_FAILED, publishing.log[-3000:]
    assert "PublishSnapshot" in said and "the published data is unchanged" in said, said
    assert "server closed the connection" in said, said
    assert own_pg.password not in publishing.log

    pg_ctl(own_pg, "start", "-l", str(own_pg.directory / "server.log"))
    pg_server._wait_until_accepting(own_pg)
    assert query(dsn, f"SELECT DISTINCT snapshot FROM {schema}.current_voters") == [(FIRST,)]
    assert query(dsn, f"SELECT count(*) FROM {schema}.current_voters")[0][0] == first_voters
    assert query(dsn, f"SELECT DISTINCT snapshot FROM {schema}.publications") == [(FIRST,)]
    assert query(dsn, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' "
                      f"AND tablename LIKE '%{SECOND:%Y%m%d}%'") == []  # nothing half-made left

    code, log = run(root, config, env, snapshot=SECOND)
    assert code == 0, log[-3000:]
    second = pq.read_table(storage.stage_dir("reporting/voter_file", "nc", SECOND, root)
                           / "voters_enriched.parquet", columns=["voter_id"])
    assert query(dsn, f"SELECT DISTINCT snapshot FROM {schema}.current_voters") == [(SECOND,)]
    assert query(dsn, f"SELECT count(*), count(DISTINCT voter_id) FROM {schema}.current_voters")[0] == \
        (second.num_rows, second.num_rows)
    assert query(dsn, f"SELECT count(*) FROM {schema}.voters_enriched WHERE snapshot = '{FIRST}'")[0][0] \
        == first_voters
    assert query(dsn, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' "
                      f"AND tablename LIKE '%{SECOND:%Y%m%d}%'") != []


# ---- the disk fills up ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(chaos_seed_root, tmp_path_factory) -> dict:
    """What an uninterrupted DuckDB run on a roomy disk writes."""
    root = tmp_path_factory.mktemp("fault-reference") / "data"
    shutil.copytree(chaos_seed_root, root)
    code, log = run(root)
    assert code == 0, log[-3000:]
    return {"files": chaos.file_digests(root), "warehouse": chaos.duckdb_digests(root / "warehouse.duckdb")}


class SmallDisk:
    """A tmpfs of `kilobytes` where the machine lets us mount one; else RLIMIT_FSIZE, the most
    bytes a run may write to any one file."""

    def __init__(self, directory: Path, kilobytes: int):
        self.directory = directory
        directory.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k,mode=0700", "tmpfs",
                                  str(directory)], capture_output=True, text=True)
        self.tmpfs = mounted.returncode == 0
        self.file_size_limit = None if self.tmpfs else kilobytes * 1024 // 4

    def make_room(self) -> None:
        if self.tmpfs:
            done = subprocess.run(["mount", "-o", "remount,size=256m", str(self.directory)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        self.file_size_limit = None

    def release(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", str(self.directory)], capture_output=True)


@pytest.mark.parametrize("kilobytes", [700, 1000, 2000])
def test_a_full_disk_fails_clearly_corrupts_nothing_and_the_next_run_succeeds(
        kilobytes, chaos_seed_root, reference, tmp_path):
    disk = SmallDisk(tmp_path / "disk", kilobytes)
    try:
        root = disk.directory / "data"
        shutil.copytree(chaos_seed_root, root)
        code, log = run(root, file_size_limit=disk.file_size_limit)
        said = last_words(log)
        assert code == TASK_FAILED, log[-3000:]
        cause = "No space left on device" if disk.tmpfs else "File too large"
        failures = [line for line in said.splitlines() if " failed: " in line]
        assert failures and all(cause in line for line in failures), said
        assert chaos.stage_outputs_complete_and_equal(root, reference["files"]) == []
        leftovers = [p for layer in chaos.STAGE_LAYERS for p in (root / layer).rglob(f"*{storage._STAGING_MARK}*")]
        assert leftovers == []

        disk.make_room()
        code, log = run(root)
        assert code == 0, log[-3000:]
        files = chaos.file_digests(root)
        assert {n: c for n, (c, _) in files.items()} == {n: c for n, (c, _) in reference["files"].items()}
        assert chaos.duckdb_digests(root / "warehouse.duckdb") == reference["warehouse"]
        print(f"{kilobytes} kB ({'tmpfs' if disk.tmpfs else 'RLIMIT_FSIZE'}): {failures}")
    finally:
        disk.release()


# ---- the Census-compatible service commits every fault at once -----------------------------------

def census_config(directory: Path, url: str) -> Path:
    config = directory / "census-luigi.cfg"
    config.write_text("[geocoder]\nbackend = census\n"
                      f"census_url = {url}\nbatch_size = 10\nbatches_in_flight = 4\n"
                      "timeout_seconds = 1.0\nmax_retries = 6\n")
    return config


def geocodes_of(root: Path) -> pd.DataFrame:
    path = storage.stage_dir("geocoded", "nc", FIRST, root) / "geocodes.parquet"
    return pq.read_table(path).to_pandas().drop(columns=["backend"]).set_index("address_key").sort_index()


def test_census_service_with_every_fault_at_once_accounts_for_every_address(chaos_seed_root, tmp_path):
    """Every fault of tests/geocoder_faults.py in the first requests (HTTP 400 among them, which
    is not retried: that run fails, keeping the batches already answered); the rerun completes.
    Every address of the stage has exactly one geocode, the same as a run without faults."""
    engine = TigerGeocoder.load(chaos_seed_root / "cache" / "tiger")
    clean_root, faulty_root = tmp_path / "clean" / "data", tmp_path / "faulty" / "data"
    for root in (clean_root, faulty_root):
        shutil.copytree(chaos_seed_root, root)
    clean = make_server("127.0.0.1", 0, engine).start()
    plan = FaultPlan(schedule=[fault for fault in FAULTS if fault != "http_400"] + ["http_400"],
                     slow_seconds=2.0)
    faulty = make_server("127.0.0.1", 0, engine, plan).start()
    try:
        code, log = run(clean_root, census_config(tmp_path / "clean", clean.url), task="GeocodeAddresses")
        assert code == 0, log[-3000:]
        config = census_config(tmp_path / "faulty", faulty.url)
        code, log = run(faulty_root, config, task="GeocodeAddresses")
        said = last_words(log)
        assert code == TASK_FAILED and "GeocodeAddresses" in said and "HTTP 400" in said, log[-3000:]
        assert not storage.is_published(storage.stage_dir("geocoded", "nc", FIRST, faulty_root))
        code, log = run(faulty_root, config, task="GeocodeAddresses")
        assert code == 0, log[-3000:]
    finally:
        clean.stop()
        faulty.stop()
    assert sorted(set(fault for fault in plan.faults_served() if fault)) == sorted(FAULTS)

    addresses = pq.read_table(storage.stage_dir("addresses", "nc", FIRST, faulty_root) / "addresses.parquet",
                              columns=["address_key"]).to_pandas()
    geocodes, expected = geocodes_of(faulty_root), geocodes_of(clean_root)
    assert geocodes.index.is_unique and sorted(geocodes.index) == sorted(addresses["address_key"])
    pd.testing.assert_frame_equal(geocodes, expected)
    manifest = storage.read_manifest(storage.stage_dir("geocoded", "nc", FIRST, faulty_root))
    assert manifest["cache_hits"] > 0  # the batches answered before the HTTP 400 were kept
    assert sum(manifest["status_counts"].values()) == len(addresses)
