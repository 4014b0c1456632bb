"""Warehouse publish speed: 1M voters_enriched rows into PostgreSQL (COPY) and DuckDB, against
pandas.DataFrame.to_sql(method="multi") on 100k rows as the baseline, all in one run.

Needs SQLAlchemy for the baseline (a dev extra): `.venv/bin/pip install -e '.[dev]'`.
Run: `.venv/bin/python -m bench.bench_warehouse [voters]` (starts a throwaway PostgreSQL with
tests/pg_server.py; set VOTERPIPE_TEST_PG_DSN to use an existing server instead).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import pg_server  # noqa: E402
import warehouse_data  # noqa: E402

from bench.common import record  # noqa: E402
from voterpipe.warehouse import DuckDBWarehouse, PostgresWarehouse, source_files  # noqa: E402
from voterpipe.warehouse import tables as wt  # noqa: E402

SNAPSHOT = date(2026, 11, 1)
BASELINE_ROWS = 100_000
# durable settings for the measured server; wal_level=minimal is what the loader is built for
# (COPY into a table created in the same transaction then skips WAL)
BENCH_SERVER_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


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
        warehouse_data.write_upstream(root, "nc", SNAPSHOT, tables)
        del tables
        generated = time.perf_counter() - started
        files = source_files("nc", SNAPSHOT, root)

        load_before = _load_average()
        duck_report = DuckDBWarehouse(root / "warehouse.duckdb").publish(files)
        pg_report = PostgresWarehouse(dsn, "bench").publish(files)
        pg_enriched = pg_report["tables"]["voters_enriched"]
        pg_rate = pg_enriched["rows"] / pg_enriched["seconds"]
        # VOTERPIPE_BENCH_SKIP_BASELINE=1 while iterating: the slow baseline is then skipped and
        # nothing is recorded (a recorded run always measures its baseline in the same run)
        skip_baseline = os.environ.get("VOTERPIPE_BENCH_SKIP_BASELINE") == "1"
        baseline = ({"rows": 0, "seconds": None, "rows_per_s": None} if skip_baseline
                    else _baseline_to_sql(dsn, files, BASELINE_ROWS))
        all_rows = sum(t["rows"] for t in pg_report["tables"].values())
        results = {
            "voters": voters,
            "voters_enriched_columns": None,
            "generate_upstream_seconds": round(generated, 2),
            "load_average_before_after": [load_before, _load_average()],
            "postgres": {
                "voters_enriched_seconds": pg_enriched["seconds"],
                "voters_enriched_rows_per_s": round(pg_rate),
                "target_rows_per_s": 200_000,
                "meets_target": pg_rate >= 200_000,
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
                "publish_all_tables_seconds": duck_report["seconds"],
                "voters_enriched_seconds": duck_report["tables"]["voters_enriched"]["seconds"],
                "target_seconds": 5.0,
                "meets_target": duck_report["seconds"] < 5.0,
                "tables": {k: {"rows": v["rows"], "seconds": v["seconds"]} for k, v in duck_report["tables"].items()},
            },
            "baseline_pandas_to_sql_multi": baseline,
            "postgres_copy_vs_to_sql_ratio": (round(pg_rate / baseline["rows_per_s"], 1)
                                              if baseline["rows_per_s"] else None),
        }
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        results["voters_enriched_columns"] = len(con.execute("DESCRIBE voters_enriched").fetchall())
        con.close()
        results["voters_parquet_mb"] = round(files.paths["voters"].stat().st_size / 1e6, 1)
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
