"""Runs of `voterpipe run` for the crash-resume and fault suites (tests/test_chaos.py,
tests/test_faults.py): the command in a process group of its own, its log read as it arrives, and
checksums of what a run leaves (Parquet content, report CSVs, warehouse tables) to compare runs.

Measured: two uninterrupted runs write byte-identical Parquet files and CSVs; a Parquet file is
still compared by content (schema and sorted rows) and, apart, by bytes. Warehouse tables and views
are compared by their sorted rows without the audit timestamp publications.published_at."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from stage_fixtures import data_root_env
from voterpipe import catalog, storage, synth
from voterpipe.config import DATA_ROOT_ENV, PG_DSN_ENV
from voterpipe.geocode.tiger import import_tiger_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = date(2026, 11, 1)
VOTERS = 300
AUDIT_COLUMNS = {"published_at"}
RUN_TIMEOUT = 300
PUBLISH_ANCHOR = "publish"
START_ANCHOR = "start"
RUNNING = re.compile(r"running\s+(\w+)\(")
PUBLISHING = re.compile(r"PublishSnapshot \w+ [\d-]+: publishing to ")
STAGE_LAYERS = [name for key, name in storage.LAYERS.items() if key != "raw"]


# ---- running the pipeline in its own process group ----------------------------------------------

class PipelineProcess:
    """`voterpipe run` as a child process leading its own process group; its log is read as it
    arrives so a kill can wait for a step to begin."""

    def __init__(self, root: Path, config: Path | None, env: dict[str, str], snapshot: date = SNAPSHOT,
                 file_size_limit: int | None = None, task: str = "EnrichSnapshot"):
        command = [sys.executable, "-m", "voterpipe.cli", "--data-root", str(root), "run", "--state", "nc",
                   "--snapshot", snapshot.isoformat(), "--local-scheduler", "--task", task]
        child_env = {**os.environ, **env, DATA_ROOT_ENV: str(root), "PYTHONUNBUFFERED": "1"}
        child_env.pop("LUIGI_CONFIG_PATH", None)
        if config is not None:
            child_env["LUIGI_CONFIG_PATH"] = str(config)
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        limit = None if file_size_limit is None else (
            lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit)))
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=child_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                        preexec_fn=limit)
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._seen:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, pattern: re.Pattern, timeout: float = RUN_TIMEOUT) -> bool:
        """True once a log line matches; False if the process ended first."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._seen:
            while True:
                for _, line in self.lines[checked:]:
                    if pattern.search(line):
                        return True
                checked = len(self.lines)
                if self.process.poll() is not None and not self._reader.is_alive():
                    return False
                self._seen.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no log line matching {pattern.pattern!r} in {timeout}s")

    def kill_group(self) -> bool:
        """SIGKILL the whole process group (the run and any worker processes); True if it was
        still running."""
        running = self.process.poll() is None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.finish()
        return running

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)


def step_durations(lines: list[tuple[float, str]]) -> dict[str, tuple[float, float]]:
    """(start, length) in seconds of each anchor's step in a finished run's log."""
    starts = {START_ANCHOR: 0.0}
    for elapsed, line in lines:
        running = RUNNING.search(line)
        if running and running.group(1) not in starts:
            starts[running.group(1)] = elapsed
        if PUBLISHING.search(line):
            starts[PUBLISH_ANCHOR] = elapsed
    end = lines[-1][0]
    ordered = sorted(starts.items(), key=lambda item: item[1])
    steps = {}
    for (name, start), (_, following) in zip(ordered, [*ordered[1:], ("end", end)]):
        steps[name] = (start, max(following - start, 0.05))
    if PUBLISH_ANCHOR in steps:  # the load ends when the publish task's last line is logged
        done = [t for t, line in lines if "published" in line and "PublishSnapshot" in line]
        if done:
            steps[PUBLISH_ANCHOR] = (steps[PUBLISH_ANCHOR][0], max(done[-1] - steps[PUBLISH_ANCHOR][0], 0.05))
    return steps


def anchor_pattern(anchor: str) -> re.Pattern:
    if anchor == PUBLISH_ANCHOR:
        return PUBLISHING
    return re.compile(rf"running\s+{anchor}\(")


# ---- what an output tree and a warehouse hold ----------------------------------------------------

def _rows_digest(rows, header: str) -> str:
    digest = hashlib.sha256(header.encode())
    for text in sorted(repr(row) for row in rows):
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def output_files(root: Path) -> dict[str, Path]:
    """Every Parquet file and report CSV under the stage layers, by path relative to the root
    (staging directories, whose names start with a dot, are not outputs)."""
    found = {}
    for layer in STAGE_LAYERS:
        for path in sorted((root / layer).rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
            if path.is_file() and path.suffix in (".parquet", ".csv") and not hidden:
                found[str(path.relative_to(root))] = path
    return found


def file_digests(root: Path) -> dict[str, tuple[str, str]]:
    """(content digest, bytes digest) of every output file; a Parquet file's content is its
    schema and its rows sorted, a CSV's content is its bytes."""
    digests = {}
    for name, path in output_files(root).items():
        raw = storage.file_sha256(path)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            content = _rows_digest((tuple(sorted(row.items())) for row in table.to_pylist()),
                                   str(table.schema.remove_metadata()))
        else:
            content = raw
        digests[name] = (content, raw)
    return digests


def duckdb_digests(path: Path) -> dict[str, tuple[str, int]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {name: _relation_digest(con, name, f'"{name}"', "duckdb") for name in names}
    finally:
        con.close()


def postgres_digests(dsn: str, schema: str) -> dict[str, tuple[str, int]]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
            names = [r[0] for r in cur.fetchall()]
        return {name: _relation_digest(conn, name, f'"{schema}"."{name}"', "postgres") for name in names}
    finally:
        conn.close()


def _relation_digest(con, name: str, qualified: str, backend: str) -> tuple[str, int]:
    """(digest of the sorted rows without audit columns, row count)."""
    if backend == "duckdb":
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = ? ORDER BY ordinal_position", [name]).fetchall()]
        kept = [c for c in columns if c not in AUDIT_COLUMNS]
        rows = con.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in kept)} FROM {qualified}").fetchall()
    else:
        with con.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s ORDER BY ordinal_position", [qualified.split('"')[1], name])
            kept = [r[0] for r in cur.fetchall() if r[0] not in AUDIT_COLUMNS]
            cur.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in kept)} FROM {qualified}")
            rows = cur.fetchall()
    return _rows_digest(rows, ",".join(kept)), len(rows)


def stage_outputs_complete_and_equal(root: Path, reference: dict[str, tuple[str, str]]) -> list[str]:
    """Problems with the stages a killed run left published: each must hold every file it
    declares, each equal to the uninterrupted run's (a staging file taken as complete would not)."""
    problems = []
    current = file_digests(root)
    for stage in catalog.STAGES.values():
        if stage.name in ("raw", "publish"):
            continue
        directory = stage.directory("nc", SNAPSHOT, root)
        if not storage.is_published(directory):
            continue
        for dataset in stage.datasets:
            if not dataset.optional and not (directory / dataset.file).is_file():
                problems.append(f"{stage.name} is published without {dataset.file}")
        prefix = str(directory.relative_to(root)) + os.sep
        for name, (content, _) in current.items():
            if name.startswith(prefix) and os.sep not in name[len(prefix):]:
                if reference.get(name, (None,))[0] != content:
                    problems.append(f"{name} differs from the uninterrupted run's while published")
    return problems


def warehouse_digests(root: Path, backend: str, dsn: str | None, schema: str) -> dict[str, tuple[str, int]]:
    if backend == "duckdb":
        return duckdb_digests(root / "warehouse.duckdb")
    return postgres_digests(dsn, schema)


def visible_voters_after_kill(root: Path, backend: str, dsn: str | None, schema: str, scratch: Path) -> int:
    """Rows current_voters shows right after the kill (0 when nothing is published yet). A killed
    DuckDB file is read through a copy, so its write-ahead log is replayed there, not here."""
    if backend == "duckdb":
        if not (root / "warehouse.duckdb").exists():
            return 0
        scratch.mkdir(exist_ok=True)
        for path in root.glob("warehouse.duckdb*"):
            shutil.copy2(path, scratch / path.name)
        con = duckdb.connect(str(scratch / "warehouse.duckdb"))
        try:
            present = con.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_name = 'current_voters'").fetchone()[0]
            return con.execute("SELECT count(*) FROM current_voters").fetchone()[0] if present else 0
        finally:
            con.close()
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", [f'"{schema}".current_voters'])
            if cur.fetchone()[0] is None:
                return 0
            cur.execute(f'SELECT count(*) FROM "{schema}".current_voters')
            return cur.fetchone()[0]
    finally:
        conn.close()


def duplicate_voter_keys(root: Path, backend: str, dsn: str | None, schema: str) -> int:
    query = ("SELECT count(*) - count(DISTINCT (state, snapshot, voter_id)) FROM {}")
    if backend == "duckdb":
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        try:
            return con.execute(query.format("voters_enriched")).fetchone()[0]
        finally:
            con.close()
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query.format(f'"{schema}".voters_enriched'))
            return cur.fetchone()[0]
    finally:
        conn.close()



# ---- data roots and backends ---------------------------------------------------------------------

def build_seed_root(root: Path) -> Path:
    """A data root holding only the raw drop and the imported synthetic TIGER data."""
    root.mkdir()
    with data_root_env(root):
        synth.write_drop(state="nc", voters=VOTERS, snapshot=SNAPSHOT, seed=5, dirty_rate=0.01)
        import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    return root



def backend_setup(backend: str, pg_dsn, directory: Path, schema: str) -> tuple[Path | None, dict[str, str], str | None]:
    """(extra luigi config file, environment, DSN) for a run on `backend`."""
    if backend == "duckdb":
        return None, {}, None
    dsn, unavailable = pg_dsn
    if dsn is None:
        import pytest

        pytest.skip(f"no PostgreSQL server available: {unavailable}")
    config = directory / "chaos-luigi.cfg"
    config.write_text(f"[warehouse]\nbackend = postgres\nschema = {schema}\n")
    return config, {PG_DSN_ENV: dsn}, dsn

