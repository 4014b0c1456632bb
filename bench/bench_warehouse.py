"""Warehouse publish speed: 1M voters_enriched rows into PostgreSQL (COPY) and DuckDB, against
pandas.DataFrame.to_sql(method="multi") on 100k rows as the baseline, all in one run.

The publish loads the voter file (07_reporting/.../voter_file/voters_enriched.parquet) that
BuildVoterFile writes; building that file is timed on its own line. Each publish is repeated
(PUBLISH_RUNS) and the median reported, because these machines are noisy. For scale, the run also
measures PostgreSQL's own share: the same rows COPYed from bytes encoded beforehand (no Parquet
reading or encoding while the clock runs) into the same two part tables with the same indexes,
after each publish, its median reported too.
Both also record the CPU seconds the client (this process) and the server (the throwaway
cluster's processes) spent: on a busy machine the wall-time fraction swings with other load,
while the CPU fraction (server share's CPU / publish's CPU, for voters_enriched) is what the
wall-time fraction approaches on a saturated 2-core machine without other load.

Needs SQLAlchemy for the baseline (a dev extra): `.venv/bin/pip install -e '.[dev]'`.
Run: `.venv/bin/python -m bench.bench_warehouse [voters]` (starts a throwaway PostgreSQL with
tests/pg_server.py; set VOTERPIPE_TEST_PG_DSN to use an existing server instead).
"""

from __future__ import annotations

import collections
import io
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Callable

import duckdb
import psycopg2
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import pg_server  # noqa: E402
import warehouse_data  # noqa: E402

from bench.common import record  # noqa: E402
from voterpipe import catalog  # noqa: E402
from voterpipe.warehouse import DuckDBWarehouse, PostgresWarehouse, source_files  # noqa: E402
from voterpipe.warehouse import copy_binary  # noqa: E402
from voterpipe.warehouse import tables as wt  # noqa: E402
from voterpipe.warehouse.enriched import write_voters_enriched  # noqa: E402
from voterpipe.warehouse.pg_copy import arrow_to_pg_type, render_binary  # noqa: E402
from voterpipe.warehouse.pg_schema import INDEX_WORKERS  # noqa: E402

SNAPSHOT = date(2026, 11, 1)
BASELINE_ROWS = 100_000
PUBLISH_RUNS = 3
# durable settings for the measured server; wal_level=minimal is what the loader is built for
# (COPY into a table created in the same transaction then skips WAL)
BENCH_SERVER_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_reader(server) -> Callable[[], float] | None:
    """CPU seconds so far of a throwaway server's processes (postmaster, its exited children,
    its live backends and workers), read from /proc; None for a server we did not start."""
    if server is None:
        return None
    postmaster = int((server.directory / "data" / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: str) -> list[str]:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()

    def read() -> float:
        own = fields(str(postmaster))
        total = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = fields(pid)
            except OSError:
                continue  # exited meanwhile (its time is now in the postmaster's cutime)
            if int(stat[1]) == postmaster:
                total += int(stat[11]) + int(stat[12])
        return total / tick

    return read


def _cpu_since(client_before: float, server_before: float | None, server_cpu) -> dict:
    # a backend that has just exited is a zombie child until reaped, its time still counted
    return {"client_cpu_seconds": round(_client_cpu() - client_before, 2),
            "server_cpu_seconds": round(server_cpu() - server_before, 2) if server_cpu else None}


def _baseline_to_sql(dsn: str, files, rows: int) -> dict:
    """pandas.DataFrame.to_sql(method='multi') of the first `rows` voters_enriched rows."""
    import sqlalchemy
    from psycopg2.extensions import parse_dsn

    con = duckdb.connect()
    wt.register_sources(con, files)
    select = wt.table_sql(con, "voters_enriched", files.state, files.snapshot)
    frame = con.sql(f"SELECT * FROM ({select}) LIMIT {rows}").df()
    con.close()
    parts = parse_dsn(dsn)
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg2", username=parts.get("user"), password=parts.get("password"),
        host=parts.get("host"), port=int(parts["port"]) if parts.get("port") else None,
        database=parts.get("dbname"))
    engine = sqlalchemy.create_engine(url)
    table = f"baseline_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    # chunksize: without it "multi" sends one statement with rows x 90 parameters
    frame.to_sql(table, engine, method="multi", chunksize=1_000, index=False)
    seconds = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP TABLE "{table}"'))
    engine.dispose()
    return {"rows": len(frame), "seconds": round(seconds, 3), "rows_per_s": round(len(frame) / seconds)}


def _postgres_server_share(dsn: str, voter_file: Path, parts: int = 2, server_cpu=None) -> dict:
    """COPY the voter file's rows, encoded beforehand, into `parts` tables at once over `parts`
    connections, then build the same indexes and statistics the loader builds: the time the
    server itself needs, with no client work while the clock runs. server_cpu: a
    server_cpu_reader, to also record the CPU seconds spent."""
    table = pq.read_table(voter_file)
    voters_enriched = next(t for t in wt.TABLES if t.name == "voters_enriched")
    columns = ", ".join(f'"{f.name}" {arrow_to_pg_type(f)}' for f in table.schema)
    bounds = [round(i * table.num_rows / parts) for i in range(parts + 1)]
    # the columns the loader analyses: the slice and every indexed column
    analysed = list(dict.fromkeys(["state", "snapshot", *(c for key in voters_enriched.indexes for c in key)]))
    payloads = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        # encoded as the loader encodes them (maps as jsonb text, NUL stripped), before the clock starts
        chunks = [bytes(render_binary(batch, collections.Counter()))
                  for batch in table.slice(low, high - low).to_batches(65_536)]
        payloads.append(copy_binary.HEADER + b"".join(chunks) + copy_binary.TRAILER)
    del table
    names = [f"server_share_{uuid.uuid4().hex[:8]}" for _ in payloads]
    connections = [psycopg2.connect(dsn) for _ in payloads]
    timings: list = [None] * len(payloads)

    def load(index: int) -> None:
        cur = connections[index].cursor()
        started = time.perf_counter()
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute(f"SET LOCAL max_parallel_maintenance_workers = {INDEX_WORKERS}")  # as the loader
        cur.execute(f"CREATE TABLE {names[index]} ({columns})")
        cur.copy_expert(f"COPY {names[index]} FROM STDIN WITH (FORMAT binary, FREEZE true)",
                        io.BytesIO(payloads[index]), size=1 << 20)
        copied = time.perf_counter()
        for key in voters_enriched.indexes:
            cur.execute(f"CREATE INDEX ON {names[index]} ({', '.join(key)})")
        indexed = time.perf_counter()
        cur.execute(f"ANALYZE {names[index]} ({', '.join(analysed)})")
        connections[index].commit()
        timings[index] = {"copy_seconds": round(copied - started, 3),
                          "index_seconds": round(indexed - copied, 3),
                          "seconds": round(time.perf_counter() - started, 3)}

    client_before, server_before = _client_cpu(), server_cpu() if server_cpu else None
    started = time.perf_counter()
    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = _cpu_since(client_before, server_before, server_cpu)
    rows = bounds[-1]
    for connection, name in zip(connections, names):
        connection.cursor().execute(f"DROP TABLE IF EXISTS {name}")
        connection.commit()
        connection.close()
    return {"rows": rows, "connections": parts, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds), "parts": timings,
            "copy_payload_mb": round(sum(len(p) for p in payloads) / 1e6, 1), **cpu}


class _MeasuredWarehouse(PostgresWarehouse):
    """The PostgreSQL warehouse, also recording each table's client and server CPU seconds."""

    def __init__(self, dsn: str, schema: str, server_cpu):
        super().__init__(dsn, schema)
        self.server_cpu = server_cpu
        self.cpu_by_table: dict = {}

    def _stage_table(self, cur, duck, load, parts):
        client_before = _client_cpu()
        server_before = self.server_cpu() if self.server_cpu else None
        result = super()._stage_table(cur, duck, load, parts)
        self.cpu_by_table[load.table.name] = _cpu_since(client_before, server_before, self.server_cpu)
        return result


def _cpu_ratio(server_share: dict, publish: dict) -> float | None:
    """CPU (client + server) of the server share over that of the publish, for the same rows."""
    if server_share.get("server_cpu_seconds") is None or publish.get("server_cpu_seconds") is None:
        return None
    share = server_share["client_cpu_seconds"] + server_share["server_cpu_seconds"]
    spent = publish["client_cpu_seconds"] + publish["server_cpu_seconds"]
    return round(share / spent * publish["rows"] / server_share["rows"], 2)


def _median_run(runs: list[dict], key) -> dict:
    """The run whose key(run) is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def main(voters: int = 1_000_000) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
    server = None
    try:
        dsn = os.environ.get("VOTERPIPE_TEST_PG_DSN")
        if not dsn:
            server = pg_server.start_server(BENCH_SERVER_SETTINGS)
            dsn = server.dsn
        started = time.perf_counter()
        tables = warehouse_data.upstream_tables("nc", SNAPSHOT, voters, history_per_voter=1)
        warehouse_data.write_upstream(root, "nc", SNAPSHOT, tables, voter_file=False)
        del tables
        generated = time.perf_counter() - started

        started = time.perf_counter()
        voter_file_dir = catalog.stage("voter_file").directory("nc", SNAPSHOT, root)
        voter_file_dir.mkdir(parents=True, exist_ok=True)
        built = write_voters_enriched(source_files("nc", SNAPSHOT, root, wt.ENRICHED_INPUTS),
                                      voter_file_dir / catalog.dataset("voters_enriched")[1].file)
        voter_file_seconds = time.perf_counter() - started
        files = source_files("nc", SNAPSHOT, root)

        load_before = _load_average()
        duck_runs = []
        for run in range(PUBLISH_RUNS):
            path = root / f"warehouse-{run}.duckdb"
            duck_runs.append(DuckDBWarehouse(path).publish(files))
            path.unlink()
        server_cpu = server_cpu_reader(server)
        pg_runs, share_runs = [], []
        for _ in range(PUBLISH_RUNS):  # publish and server share in turn: both meet the same load
            measured = _MeasuredWarehouse(dsn, "bench", server_cpu)
            pg_runs.append(measured.publish(files))
            pg_runs[-1]["tables"]["voters_enriched"].update(measured.cpu_by_table["voters_enriched"])
            # over as many connections as the publish used for the table: a fair comparison
            share_runs.append(_postgres_server_share(
                dsn, files.paths["voters_enriched"],
                parts=pg_runs[-1]["tables"]["voters_enriched"]["copy_connections"], server_cpu=server_cpu))
        server_share = _median_run(share_runs, lambda run: run["seconds"])
        # VOTERPIPE_BENCH_SKIP_BASELINE=1 while iterating: the slow baseline is then skipped and
        # nothing is recorded (a recorded run always measures its baseline in the same run)
        skip_baseline = os.environ.get("VOTERPIPE_BENCH_SKIP_BASELINE") == "1"
        baseline = ({"rows": 0, "seconds": None, "rows_per_s": None} if skip_baseline
                    else _baseline_to_sql(dsn, files, BASELINE_ROWS))
        load_after = _load_average()

        def enriched_seconds(report: dict) -> float:
            return report["tables"]["voters_enriched"]["seconds"]

        pg_report = _median_run(pg_runs, enriched_seconds)
        pg_enriched = pg_report["tables"]["voters_enriched"]
        pg_rate = pg_enriched["rows"] / pg_enriched["seconds"]
        duck_report = _median_run(duck_runs, enriched_seconds)
        duck_enriched = duck_report["tables"]["voters_enriched"]
        all_rows = sum(t["rows"] for t in pg_report["tables"].values())
        results = {
            "voters": voters,
            "voters_enriched_columns": built["columns"],
            "voter_file_mb": round(files.paths["voters_enriched"].stat().st_size / 1e6, 1),
            "generate_upstream_seconds": round(generated, 2),
            "build_voter_file_seconds": round(voter_file_seconds, 2),
            "publish_runs": PUBLISH_RUNS,
            "load_average_before_after": [load_before, load_after],
            "postgres": {
                "voters_enriched_seconds": pg_enriched["seconds"],
                "voters_enriched_seconds_all_runs": [enriched_seconds(r) for r in pg_runs],
                "voters_enriched_rows_per_s": round(pg_rate),
                "target_rows_per_s": 200_000,
                "meets_target": pg_rate >= 200_000,
                "server_share": server_share,
                "server_share_seconds_all_runs": [run["seconds"] for run in share_runs],
                "publish_vs_server_share_ratio": round(pg_rate / server_share["rows_per_s"], 2),
                "publish_vs_server_share_cpu_ratio": _cpu_ratio(server_share, pg_enriched),
                "publish_all_tables_seconds": pg_report["seconds"],
                "publish_all_tables_rows": all_rows,
                "publish_all_tables_rows_per_s": round(all_rows / pg_report["seconds"]),
                "swap_seconds": pg_report.get("swap_seconds"),
                "tables": {k: {key: value for key, value in v.items()
                               if key not in ("checksum", "nul_stripped_by_column")}
                           for k, v in pg_report["tables"].items()},
                "server": "throwaway pg_server, " + ", ".join(
                    f"{k}={v}" for k, v in {**pg_server.THROWAWAY_SETTINGS, **BENCH_SERVER_SETTINGS}.items())
                if server else "VOTERPIPE_TEST_PG_DSN",
            },
            "duckdb": {
                "voters_enriched_seconds": duck_enriched["seconds"],
                "voters_enriched_seconds_all_runs": [enriched_seconds(r) for r in duck_runs],
                "target_seconds": 5.0,
                "meets_target": duck_enriched["seconds"] < 5.0,
                "publish_all_tables_seconds": duck_report["seconds"],
                "publish_all_tables_seconds_all_runs": [r["seconds"] for r in duck_runs],
                "tables": {k: {"rows": v["rows"], "seconds": v["seconds"]}
                           for k, v in duck_report["tables"].items()},
            },
            "baseline_pandas_to_sql_multi": baseline,
            "postgres_copy_vs_to_sql_ratio": (round(pg_rate / baseline["rows_per_s"], 1)
                                              if baseline["rows_per_s"] else None),
        }
        if skip_baseline:
            print(json.dumps(results, indent=2, sort_keys=True))
        else:
            record("warehouse", results)
        return results
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
