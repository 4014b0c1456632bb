"""Scale out (issue 18): one real luigid, three `luigi` worker processes with their own scratch
directories, the data root on a moto S3 server and the warehouse on PostgreSQL. Two states x two
snapshots run with each task run once and outputs equal (by content) to one local process; a
worker killed with SIGKILL mid-run has its work finished by the others; an object store that goes
away for 10 s leaves nothing half-written taken as complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import chaos_runs  # noqa: E402
import luigid_cluster  # noqa: E402
import ops_servers as ops  # noqa: E402
from s3_server import s3_root, s3_server  # noqa: E402,F401 - pytest fixtures
from stage_fixtures import data_root_env  # noqa: E402

from voterpipe import catalog, storage, synth  # noqa: E402
from voterpipe.config import DATA_ROOT_ENV, PG_DSN_ENV  # noqa: E402
from voterpipe.geocode.tiger import import_tiger_dir  # noqa: E402

pytestmark = [pytest.mark.scaleout, pytest.mark.s3, pytest.mark.postgres]

STATES = {"nc": 3, "oh": 4}  # state -> synthetic seed
SNAPSHOTS = [date(2026, 11, 1), date(2026, 11, 8)]
VOTERS = 300
ONE_STATE = "nc"  # the kill and outage tests run one state's two snapshots (half the time)
STAGE_TASKS = {"ImportSnapshot", "NormaliseAddresses", "GeocodeAddresses", "BuildHouseholds", "AnalyseCohorts",
               "BuildVoterFile", "ReportSnapshot", "PublishSnapshot"}
SEEDED = ("01_raw", "cache/tiger")  # what an operator puts on the bucket before the first run
RUN_TIMEOUT = 240


def _warehouse(schema: str) -> dict[str, dict]:
    return {"warehouse": {"backend": "postgres", "schema": schema}}


def _top(states) -> list[str]:
    return ["EnrichStates", "--states", ",".join(states)]


def _stage_dirs(root: Path) -> list[Path]:
    return [stage.directory(state, day, root) for state in STATES for day in SNAPSHOTS
            for stage in catalog.STAGES.values() if stage.name not in ("raw", "publish")]


def _of_states(files: dict, states) -> dict:
    return {name: digests for name, digests in files.items() if name.split("/")[1] in states}


def _warehouse_digests(dsn: str, schema: str, states) -> dict[str, tuple[str, int]]:
    """chaos_runs' digest of every warehouse table, over the rows of these states only."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) "
                        "FROM information_schema.columns WHERE table_schema = %s GROUP BY table_name", [schema])
            tables = cur.fetchall()
            found = {}
            for name, columns in tables:
                kept = [c for c in columns if c not in chaos_runs.AUDIT_COLUMNS]
                if any(f"__{other}_" in name for other in STATES if other not in states):
                    continue  # another state's partition
                where = " WHERE state = ANY(%s)" if "state" in columns else ""
                cur.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in kept)} FROM "{schema}"."{name}"{where}',
                            [list(states)] if where else None)
                rows = cur.fetchall()
                found[name] = (chaos_runs._rows_digest(rows, ",".join(kept)), len(rows))
        return found
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> Path:
    """Raw drops of both states (each second snapshot continues the first) and their TIGER data."""
    root = tmp_path_factory.mktemp("seed") / "data"
    root.mkdir()
    with data_root_env(root):
        for state, number in STATES.items():
            previous = None
            for day in SNAPSHOTS:
                synth.write_drop(state=state, voters=VOTERS, snapshot=day, seed=number, from_snapshot=previous)
                previous = day
            import_tiger_dir(storage.cache_dir("synth") / state / "tiger")
    return root


@pytest.fixture(scope="module")
def reference(seed, pg, tmp_path_factory) -> dict:
    """One local process (`luigi ... --local-scheduler`) on a local data root: its outputs' digests."""
    root = tmp_path_factory.mktemp("reference") / "data"
    shutil.copytree(seed, root)
    config = root.parent / "luigi.cfg"
    config.write_text("[warehouse]\nbackend = postgres\nschema = scale_reference\n")
    env = {**os.environ, DATA_ROOT_ENV: str(root), PG_DSN_ENV: pg.dsn, "LUIGI_CONFIG_PATH": str(config)}
    run = subprocess.run([str(ops.BIN / "luigi"), "--module", "voterpipe.tasks", *_top(STATES), "--local-scheduler"],
                         cwd=ops.REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"files": chaos_runs.file_digests(root), "schema": "scale_reference"}


def _upload_seed(seed: Path, s3_root) -> None:
    client = s3_root.server.client()
    for part in SEEDED:
        # each drop's _READY marker last, as a sender writes it: a file newer than the marker must settle
        for path in sorted((seed / part).rglob("*"), key=lambda p: (p.name == "_READY", str(p))):
            if path.is_file():
                client.upload_file(str(path), s3_root.bucket, f"{s3_root.prefix}/{path.relative_to(seed).as_posix()}")


def _published_on_bucket(s3_root, local: Path) -> dict[str, tuple[str, str]]:
    """Digests of every stage published on the bucket, read through a fresh scratch copy (the
    manifest decides what is published, as for a worker)."""
    with data_root_env(s3_root.url):
        os.environ["VOTERPIPE_SCRATCH"] = str(local)
        for directory in _stage_dirs(local):
            if storage.published_manifest(directory) is not None:
                storage.pull(directory)
    return chaos_runs.file_digests(local)


@pytest.fixture
def cluster(tmp_path, s3_root, seed, pg):
    """luigid and, once started by the test, three workers on a fresh bucket seeded with the drops."""
    _upload_seed(seed, s3_root)
    with luigid_cluster.Cluster(tmp_path / "cluster") as running:
        running.env = {**s3_root.server.env(s3_root.url), PG_DSN_ENV: pg.dsn}
        yield running


def _start(cluster, schema: str, states, endpoint: str | None = None, plain: int = 0) -> list:
    """Three workers: assistants, the last `plain` of them plain workers (a cron submitter)."""
    env = dict(cluster.env)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    started = cluster.start_workers(3 - plain, _top(states), env, settings=_warehouse(schema))
    return started + cluster.start_workers(plain, _top(states), env, settings=_warehouse(schema), assistant=False)


def _assert_same_outputs(s3_root, tmp_path, pg, reference, schema: str, states) -> None:
    files = _published_on_bucket(s3_root, tmp_path / "readback")
    expected = _of_states(reference["files"], states)
    assert set(files) == set(expected)
    differing = [name for name, (content, _) in files.items() if expected[name][0] != content]
    assert differing == []
    tables = _warehouse_digests(pg.dsn, schema, states)
    expected_tables = _warehouse_digests(pg.dsn, reference["schema"], states)
    assert [name for name in expected_tables if tables.get(name) != expected_tables[name]] == []


def _finished_cleanly(cluster, codes: dict[str, int]) -> bool:
    """luigid holds no FAILED or DISABLED task and no worker crashed. A worker's exit code is its
    own summary only: with tasks run by the others it exits 10 (run_by_other_worker), 20 (a task
    another worker still held looks external to it) or 25 (not_run), so luigid is the judge."""
    unhandled_exception = 40
    return (not cluster.scheduler_tasks("FAILED") and not cluster.scheduler_tasks("DISABLED")
            and all(0 <= code < unhandled_exception for code in codes.values()))


def test_three_workers_run_each_task_once_with_outputs_equal_to_one_local_process(
        cluster, s3_root, reference, pg, tmp_path):
    started = time.monotonic()
    _start(cluster, "scale_three", STATES, plain=1)  # as deployed: assistant services, a plain submitter
    outcome, codes = cluster.finish("EnrichStates", timeout=RUN_TIMEOUT)
    assert outcome == "done" and _finished_cleanly(cluster, codes), (
        f"{outcome} {codes} failed={list(cluster.scheduler_tasks('FAILED'))}\n{cluster.logs()}")

    events = cluster.task_events()
    assert events["failed"] == {}
    assert set(events["done"].values()) == {1}, "a task finished more than once"
    stages = {task: n for task, n in events["running"].items() if task.split("(")[0] in STAGE_TASKS}
    assert len(stages) == len(STATES) * len(SNAPSHOTS) * len(STAGE_TASKS)
    assert set(stages.values()) == {1}, "a stage task was started more than once"
    by_worker = [sum(task.split("(")[0] in STAGE_TASKS for event, task in w.events() if event == "done")
                 for w in cluster.workers]
    assert sum(n > 0 for n in by_worker) >= 2, f"stage tasks per worker: {by_worker}"
    assert {t["name"] for t in cluster.scheduler_tasks("DONE").values()} >= STAGE_TASKS
    _assert_same_outputs(s3_root, tmp_path, pg, reference, "scale_three", STATES)
    print(f"three workers: {time.monotonic() - started:.1f}s, stage tasks per worker {by_worker}")


def test_a_worker_killed_mid_run_has_its_task_finished_by_the_others(cluster, s3_root, reference, pg, tmp_path):
    workers = _start(cluster, "scale_kill", [ONE_STATE])
    victim: dict = {}

    def a_worker_is_inside_a_stage() -> bool:
        done = sum(event == "done" for w in workers for event, _ in w.events())
        for worker in workers:
            task = worker.running_now()
            if done >= 4 and task and task.split("(")[0] in STAGE_TASKS:
                victim.update(worker=worker, task=task)
                return True
        return False

    assert cluster.wait_until(a_worker_is_inside_a_stage, timeout=RUN_TIMEOUT), cluster.logs()
    victim["worker"].kill()
    outcome, codes = cluster.finish("EnrichStates", timeout=RUN_TIMEOUT)
    survivors = [w for w in workers if w is not victim["worker"]]
    assert outcome == "done", cluster.logs()
    assert _finished_cleanly(cluster, {w.name: codes[w.name] for w in survivors}), cluster.logs()
    assert cluster.task_events(survivors)["failed"] == {}

    # the killed task: started by the victim, finished once by a survivor
    assert victim["task"] not in {task for event, task in victim["worker"].events() if event == "done"}
    assert cluster.task_events(survivors)["done"][victim["task"]] == 1
    assert set(cluster.task_events()["done"].values()) == {1}
    _assert_same_outputs(s3_root, tmp_path, pg, reference, "scale_kill", [ONE_STATE])


def test_object_store_gone_for_10s_mid_run_retries_and_never_takes_a_partial_stage(
        cluster, s3_root, reference, pg, tmp_path):
    proxy = luigid_cluster.TcpProxy(s3_root.server.port)
    workers = _start(cluster, "scale_outage", [ONE_STATE], endpoint=f"http://127.0.0.1:{proxy.port}")
    try:
        assert cluster.wait_until(
            lambda: sum(event == "done" and task.split("(")[0] in STAGE_TASKS
                        for w in workers for event, task in w.events()) >= 3, timeout=RUN_TIMEOUT), cluster.logs()
        proxy.close()
        time.sleep(10)
        proxy.reopen()
        outcome, codes = cluster.finish("EnrichStates", timeout=RUN_TIMEOUT)
    finally:
        proxy.close()

    events = cluster.task_events()
    log = "\n".join(w.log() for w in workers)
    assert events["failed"], "the outage failed no task: the test did not test retries"
    assert "object storage at http://127.0.0.1:" in log  # the failure names the endpoint
    if outcome == "done":
        assert set(events["done"]) >= set(events["failed"]), "a failed task was not retried to success"
        _assert_same_outputs(s3_root, tmp_path, pg, reference, "scale_outage", [ONE_STATE])
    else:
        assert outcome == "disabled", cluster.logs()
    # whatever the outcome: every stage published on the bucket is whole and equal to the reference
    files = _published_on_bucket(s3_root, tmp_path / "readback-all")
    assert {n: c for n, (c, _) in files.items()} == {n: reference["files"].get(n, (None,))[0] for n in files}
