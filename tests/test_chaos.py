"""Crash-resume suite: `voterpipe run` in its own process group, killed with SIGKILL at a random
moment (some trials during the warehouse publish), then rerun to completion; the outputs must
equal an uninterrupted run's, on DuckDB and on PostgreSQL (tests/pg_server.py).

The plan of every trial (backend, where to kill, how far into that step) comes from one seed,
printed in each test id and in every failure; VOTERPIPE_CHAOS_SEED=<seed> replays the plan (the
moment a kill lands still varies by a few milliseconds with the machine's load).

What is compared (measured: two uninterrupted runs write byte-identical Parquet files and CSVs):
every Parquet file of the stage layers by content (rows sorted, schema included) and by bytes,
the report's CSVs by bytes, and every warehouse table and view by its sorted rows with the
audit timestamp publications.published_at left out. Manifests are not compared: the geocode
stage's counts of cache hits legitimately change when a killed run already filled the cache.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg_server  # noqa: E402
from chaos_runs import (  # noqa: E402
    PUBLISH_ANCHOR, STAGE_LAYERS, START_ANCHOR, PipelineProcess, anchor_pattern, backend_setup,
    build_seed_root, duplicate_voter_keys, file_digests, stage_outputs_complete_and_equal, step_durations,
    visible_voters_after_kill, warehouse_digests,
)

from voterpipe import storage  # noqa: E402

pytestmark = pytest.mark.chaos

TRIALS = 20
SEED_ENV = "VOTERPIPE_CHAOS_SEED"
SEED = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1, 10**6))


@dataclass(frozen=True)
class Trial:
    number: int
    backend: str  # duckdb or postgres
    anchor: str  # 'start', a task family, or 'publish' (inside the warehouse load)
    fraction: float  # how far into the anchor's step (as measured in the reference run) to kill

    @property
    def id(self) -> str:
        return f"seed{SEED}-trial{self.number:02d}-{self.backend}-{self.anchor}-{self.fraction:.2f}"


ANCHORS = [START_ANCHOR, "ImportSnapshot", "NormaliseAddresses", "GeocodeAddresses", "BuildHouseholds",
           "AnalyseCohorts", "ReportSnapshot", "BuildVoterFile", "PublishSnapshot", PUBLISH_ANCHOR]


def plan_trials(seed: int) -> list[Trial]:
    """8 trials on PostgreSQL and 12 on DuckDB; 4 PostgreSQL and 2 DuckDB trials kill inside the
    warehouse load, the rest anywhere (before the first task, or inside any task)."""
    rng = random.Random(seed)
    trials = []
    for number in range(TRIALS):
        backend = "postgres" if number % 5 in (1, 3) else "duckdb"
        in_publish = (number % 5 == 1) or (number % 10 == 0)
        anchor = PUBLISH_ANCHOR if in_publish else rng.choice(ANCHORS)
        trials.append(Trial(number, backend, anchor, round(rng.uniform(0.05, 0.9), 2)))
    return trials

# ---- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_root(tmp_path_factory) -> Path:
    return build_seed_root(tmp_path_factory.mktemp("chaos-seed") / "data")


@pytest.fixture(scope="module")
def pg_dsn():
    """(DSN, None), or (None, why there is no server)."""
    dsn = os.environ.get("VOTERPIPE_TEST_PG_DSN")
    if dsn:
        yield dsn, None
        return
    try:
        server = pg_server.start_server()
    except pg_server.PostgresUnavailable as exc:
        yield None, str(exc)
        return
    try:
        yield server.dsn, None
    finally:
        server.stop()



@pytest.fixture(scope="module")
def references(seed_root, pg_dsn, tmp_path_factory):
    """backend -> what an uninterrupted run produces (computed on first use)."""
    cache = {}

    def reference(backend: str) -> dict:
        if backend not in cache:
            directory = tmp_path_factory.mktemp(f"chaos-reference-{backend}")
            root = directory / "data"
            shutil.copytree(seed_root, root)
            schema = "vp_chaos_reference"
            config, env, dsn = backend_setup(backend, pg_dsn, directory, schema)
            run = PipelineProcess(root, config, env)
            code = run.finish()
            assert code == 0, run.log[-3000:]
            files = file_digests(root)
            cache[backend] = {
                "files": files, "warehouse": warehouse_digests(root, backend, dsn, schema),
                "steps": step_durations(run.lines), "seconds": run.lines[-1][0]}
            assert duplicate_voter_keys(root, backend, dsn, schema) == 0
        return cache[backend]

    return reference


# ---- the trials ----------------------------------------------------------------------------------

@pytest.mark.parametrize("trial", plan_trials(SEED), ids=lambda trial: trial.id)
def test_killed_run_resumes_to_the_outputs_of_an_uninterrupted_run(trial, references, seed_root, pg_dsn,
                                                                     tmp_path):
    replay = f"(replay: {SEED_ENV}={SEED})"
    reference = references(trial.backend)
    root = tmp_path / "data"
    shutil.copytree(seed_root, root)
    schema = f"vp_chaos_{trial.number:02d}"
    config, env, dsn = backend_setup(trial.backend, pg_dsn, tmp_path, schema)

    start, length = reference["steps"].get(trial.anchor, (0.0, 0.5))
    killed = PipelineProcess(root, config, env)
    if trial.anchor == START_ANCHOR or killed.wait_for(anchor_pattern(trial.anchor)):
        time.sleep(trial.fraction * length)
    landed = killed.kill_group()
    where = killed.lines[-1][1][-160:] if killed.lines else "(no output yet)"
    print(f"{trial.id}: kill {'landed' if landed else 'came after the run ended'}; last line: {where}")

    problems = stage_outputs_complete_and_equal(root, reference["files"])
    assert not problems, f"{replay} after the kill: {problems}"
    voters = reference["warehouse"]["voters_enriched"][1]
    visible = visible_voters_after_kill(root, trial.backend, dsn, schema, tmp_path / "scratch")
    assert visible in (0, voters), f"{replay} a partial slice is visible after the kill: {visible} of {voters}"

    rerun = PipelineProcess(root, config, env)
    code = rerun.finish()
    assert code == 0, f"{replay} the rerun failed ({code}):\n{rerun.log[-3000:]}"

    files = file_digests(root)
    assert sorted(files) == sorted(reference["files"]), replay
    differing = [name for name, (content, _) in files.items() if content != reference["files"][name][0]]
    assert not differing, f"{replay} outputs differ from the uninterrupted run's: {differing}"
    bytes_differ = [name for name, (_, raw) in files.items() if raw != reference["files"][name][1]]
    if bytes_differ:
        print(f"{trial.id}: same content, other bytes: {bytes_differ}")
    leftovers = [str(p.relative_to(root)) for layer in STAGE_LAYERS for p in (root / layer).rglob("*")
                 if storage._STAGING_MARK in p.name]
    assert not leftovers, f"{replay} staging left behind: {leftovers}"

    tables = warehouse_digests(root, trial.backend, dsn, schema)
    assert sorted(tables) == sorted(reference["warehouse"]), replay
    differing = {name: (tables[name][1], reference["warehouse"][name][1]) for name in tables
                 if tables[name] != reference["warehouse"][name]}
    assert not differing, f"{replay} warehouse tables differ (rows now, rows uninterrupted): {differing}"
    assert duplicate_voter_keys(root, trial.backend, dsn, schema) == 0, replay
