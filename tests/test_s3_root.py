"""An s3:// data root on a real S3-compatible server (moto on 127.0.0.1): every stage runs through
it, its tables equal a local root's, a rerun does nothing (also from an empty scratch copy), a
half-written stage is never complete and is swept, an unreachable store names its endpoint."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path

import luigi
import luigi.execution_summary
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402
from s3_server import free_port, s3_root, s3_server  # noqa: E402,F401 - pytest fixtures

from voterpipe import catalog, cli, config, object_store, storage, synth  # noqa: E402
from voterpipe.geocode.tiger import import_tiger_dir  # noqa: E402
from voterpipe.tasks import EnrichSnapshot, ImportSnapshot  # noqa: E402
from voterpipe.tasks.base import GATES_FAILED  # noqa: E402
from voterpipe.tasks.outcome import retcodes  # noqa: E402

pytestmark = [pytest.mark.s3, pytest.mark.slow]

SNAPSHOT = date(2026, 11, 1)
SECOND = date(2026, 11, 8)
TABLE_STAGES = [s for s in catalog.STAGES.values() if any(d.schema is not None for d in s.datasets)]


def _build(*tasks):
    luigi.task_register.Register.clear_instance_cache()
    result = luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")
    return result, luigi.execution_summary._summary_dict(result.worker)


def _write_drop(voters: int = 600) -> None:
    """The synthetic NC drop and its TIGER data, as a user uploads them: raw files to 01_raw/ (the
    marker too), TIGER imported into the data root."""
    synth.write_drop(state="nc", voters=voters, snapshot=SNAPSHOT, seed=7, dirty_rate=0.01)
    for path in storage.raw_dir("nc", SNAPSHOT).iterdir():
        storage.push_file(path)  # synth marks the drop after publishing it
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")


def _bucket_table(root, stage, entry):
    """A dataset read straight from the bucket, from the run prefix the stage's manifest names."""
    bucket = storage.remote()
    directory = stage.directory("nc", SNAPSHOT)
    manifest = object_store.stage_manifest(bucket, directory)
    key = f"{bucket.key(directory)}/{manifest[object_store.OBJECTS]['prefix']}/{entry.file}"
    return pq.read_table(key, filesystem=bucket.fs)


@pytest.fixture
def sweep_minutes():
    def set_minutes(value: float) -> None:
        luigi.configuration.get_config().set("voterpipe", "staging_sweep_minutes", str(value))
        luigi.task_register.Register.clear_instance_cache()  # config instances read it anew

    yield set_minutes
    luigi.configuration.get_config().remove_option("voterpipe", "staging_sweep_minutes")


def test_every_stage_on_s3_equals_a_local_run_and_rerun_does_nothing(s3_root, tmp_path, monkeypatch):
    local_root = tmp_path / "local"
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(local_root))
    _write_drop()
    local, _ = _build(EnrichSnapshot(state="nc", snapshot=SNAPSHOT))
    assert local.status.name == "SUCCESS", local.summary_text

    monkeypatch.setenv(config.DATA_ROOT_ENV, s3_root.url)
    _write_drop()
    first, ran = _build(EnrichSnapshot(state="nc", snapshot=SNAPSHOT))
    assert first.status.name == "SUCCESS", first.summary_text
    assert {t.task_family for t in ran["completed"]} >= {s.task for s in catalog.STAGES.values() if s.name != "raw"}
    for stage in TABLE_STAGES:
        for entry in (d for d in stage.datasets if d.schema is not None and not d.optional):
            expected = pq.read_table(stage.directory("nc", SNAPSHOT, local_root) / entry.file)
            assert _bucket_table(s3_root, stage, entry).equals(expected), f"{stage.name}/{entry.file}"
    assert any(k.startswith("cache/geocodes/") for k in s3_root.keys("cache/"))  # shared caches went up
    assert any(k.startswith("cache/addresses/") for k in s3_root.keys("cache/"))

    keys = s3_root.keys()
    again, ran = _build(EnrichSnapshot(state="nc", snapshot=SNAPSHOT))
    assert again.status.name == "SUCCESS" and not ran["completed"], again.summary_text
    assert s3_root.keys() == keys

    # the next drop, run by a second worker with an empty scratch copy: the first snapshot's
    # stages are complete from the bucket alone, and its raw drop is not fetched to find it complete
    synth.write_drop(state="nc", voters=600, snapshot=SECOND, seed=7, from_snapshot=SNAPSHOT)
    for path in storage.raw_dir("nc", SECOND).iterdir():
        storage.push_file(path)
    worker2 = tmp_path / "worker2"
    monkeypatch.setenv(config.SCRATCH_ENV, str(worker2))
    second, ran = _build(EnrichSnapshot(state="nc", snapshot=SECOND))
    assert second.status.name == "SUCCESS", second.summary_text
    assert {t.snapshot for t in ran["completed"]} == {SECOND}
    cohorts = storage.read_manifest(catalog.stage("cohorts").directory("nc", SECOND))
    assert cohorts["previous_snapshot"] == SNAPSHOT.isoformat()
    assert (worker2 / "01_raw/nc/2026-11-08").is_dir() and not (worker2 / "01_raw/nc/2026-11-01").exists()


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        conn.close()


@pytest.mark.postgres
def test_with_postgres_a_new_worker_finds_the_stages_and_the_warehouse_published(s3_root, pg, tmp_path, monkeypatch):
    schema = f"vp_s3_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VOTERPIPE_PG_DSN", pg.dsn)
    parser = luigi.configuration.get_config()
    before = {option: parser.get("warehouse", option, None) for option in ("backend", "schema")}
    parser.set("warehouse", "backend", "postgres")
    parser.set("warehouse", "schema", schema)
    try:
        _write_drop(voters=300)
        first, _ = _build(EnrichSnapshot(state="nc", snapshot=SNAPSHOT))
        assert first.status.name == "SUCCESS", first.summary_text
        assert "07_reporting/nc/2026-11-01/published/manifest.json" in s3_root.keys()
        voters = pq.ParquetFile(catalog.dataset_path("voters_enriched", "nc", SNAPSHOT)).metadata.num_rows

        monkeypatch.setenv(config.SCRATCH_ENV, str(tmp_path / "worker2"))
        again, ran = _build(EnrichSnapshot(state="nc", snapshot=SNAPSHOT))
        assert again.status.name == "SUCCESS" and not ran["completed"], again.summary_text
        assert not list((tmp_path / "worker2").rglob("*.parquet"))  # found complete without fetching data
        assert pg_server.query(pg.dsn, f"SELECT count(*) FROM {schema}.voters_enriched") == [(voters,)]
    finally:
        for option, value in before.items():
            if value is None:
                parser.remove_option("warehouse", option)
            else:
                parser.set("warehouse", option, value)
        _drop_schema(pg.dsn, schema)


def test_a_half_written_stage_is_never_complete_and_its_prefix_is_swept(s3_root, monkeypatch, sweep_minutes):
    _write_drop()
    task = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
    stage_keys = "02_canonical/nc/2026-11-01/"
    parser = luigi.configuration.get_config()
    parser.set("quality", "rejected_lines", "0")  # the drop has rejects: the gate fails, nothing is published
    try:
        assert _build(task)[0].status.name == "FAILED"
    finally:
        parser.remove_option("quality", "rejected_lines")
    assert s3_root.keys(stage_keys) == [f"{stage_keys}{GATES_FAILED}"]  # the values, where the stage would be
    real_write = object_store.write_bytes

    def killed_before_manifest(bucket, key, data):
        if key.endswith(f"/{object_store.MANIFEST}") and "02_canonical" in key:
            raise ConnectionAbortedError("worker lost")  # dies after the objects, before the manifest
        real_write(bucket, key, data)

    monkeypatch.setattr(object_store, "write_bytes", killed_before_manifest)
    failed, _ = _build(task)
    assert failed.status.name == "FAILED"
    monkeypatch.setattr(object_store, "write_bytes", real_write)
    leftover = [k for k in s3_root.keys(stage_keys) if not k.endswith(GATES_FAILED)]
    assert leftover and all(k.split("/")[3].startswith("run-") for k in leftover)
    assert not any(k.endswith("manifest.json") for k in leftover)
    assert not ImportSnapshot(state="nc", snapshot=SNAPSHOT).complete()

    result, _ = _build(ImportSnapshot(state="nc", snapshot=SNAPSHOT))
    assert result.status.name == "SUCCESS", result.summary_text
    published = object_store.stage_manifest(storage.remote(), task.stage_target().path)
    current = published[object_store.OBJECTS]["prefix"]
    assert set(s3_root.keys(stage_keys)) > set(leftover)  # a younger leftover is kept (a live writer?)
    assert f"{stage_keys}{GATES_FAILED}" not in s3_root.keys(stage_keys)  # gone, as from a local root

    # objects of a newer run half uploaded beside a complete stage change nothing
    junk = f"{s3_root.prefix}/{stage_keys}run-29990101T000000Z-00000000/voters.parquet"
    s3_root.server.client().put_object(Bucket=s3_root.bucket, Key=junk, Body=b"half")
    luigi.task_register.Register.clear_instance_cache()
    assert ImportSnapshot(state="nc", snapshot=SNAPSHOT).complete()

    sweep_minutes(0)
    swept = storage.sweep_remote()  # what a periodic job runs over every stage of the bucket
    assert list(swept) == [storage.remote().key(task.stage_target().path)]
    assert len(swept[storage.remote().key(task.stage_target().path)]) == 2
    assert {k.split("/")[3] for k in s3_root.keys(stage_keys) if k.count("/") > 3} == {current}
    luigi.task_register.Register.clear_instance_cache()
    assert ImportSnapshot(state="nc", snapshot=SNAPSHOT).complete()


def test_shared_cache_parts_move_both_ways_and_compaction_removes_replaced_parts(s3_root, tmp_path, monkeypatch):
    def parts(worker: str) -> Path:  # a task's cache directory on one worker, synced down on first use
        monkeypatch.setenv(config.SCRATCH_ENV, str(tmp_path / worker))
        directory = storage.cache_dir("geocodes") / "tiger" / "b__v"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    with storage.synced_caches():
        (parts("w1") / "001-a.parquet").write_bytes(b"part a")
    with storage.synced_caches():
        second = parts("w2")
        assert (second / "001-a.parquet").read_bytes() == b"part a"
        (second / "002-compact.parquet").write_bytes(b"a, compacted")  # written before the part it replaces goes
        (second / "001-a.parquet").unlink()
    assert s3_root.keys("cache/geocodes/") == ["cache/geocodes/tiger/b__v/002-compact.parquet"]

    with storage.synced_caches():
        again = parts("w1")
        assert (again / "002-compact.parquet").exists()
        assert not (again / "001-a.parquet").exists()  # replaced elsewhere: not uploaded again
        (again / "003-b.parquet").write_bytes(b"part b")
    assert s3_root.keys("cache/geocodes/") == [f"cache/geocodes/tiger/b__v/{name}"
                                               for name in ("002-compact.parquet", "003-b.parquet")]


def test_an_unreachable_store_is_a_clear_error_naming_the_endpoint(s3_root, monkeypatch, capsys):
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(object_store.ObjectStoreError, match=endpoint.replace(".", r"\.")):
        ImportSnapshot(state="nc", snapshot=SNAPSHOT).complete()
    code = cli.main(["run", "--state", "nc", "--snapshot", SNAPSHOT.isoformat(), "--local-scheduler"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == retcodes()["scheduling_error"]
    assert endpoint in lines[0] and "Traceback" not in "".join(lines)

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_root.server.endpoint)
    monkeypatch.setenv(config.DATA_ROOT_ENV, "s3://no-such-bucket/root")
    code = cli.main(["run", "--state", "nc", "--snapshot", SNAPSHOT.isoformat(), "--local-scheduler"])
    assert code == retcodes()["scheduling_error"]
    assert "no bucket 'no-such-bucket'" in capsys.readouterr().err
