"""The per-voter `extra` map reaches both warehouses: a DuckDB MAP and a PostgreSQL jsonb, values
intact (quotes, backslashes, newlines), empty maps as {}."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import date
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import warehouse_data  # noqa: E402

from voterpipe import schema  # noqa: E402
from voterpipe.warehouse import DuckDBWarehouse, PostgresWarehouse, publish_snapshot  # noqa: E402

NOV = date(2026, 11, 1)
EXTRA = [{"township_desc": "WHITE OAK", "note": 'say "hi"\\ok\nnext'}, {}, {"ward_desc": "WARD 3"}]


def _write_with_extra(root: Path) -> list[dict]:
    tables = warehouse_data.upstream_tables("nc", NOV, 30)
    n = tables["voters"].num_rows
    extra = [list(EXTRA[i % len(EXTRA)].items()) for i in range(n)]
    voters = tables["voters"]
    tables["voters"] = voters.set_column(voters.schema.get_field_index("extra"), "extra",
                                         pa.array(extra, type=schema.VOTERS.field("extra").type))
    warehouse_data.write_upstream(root, "nc", NOV, tables)
    ids = tables["voters"].column("voter_id").to_pylist()
    return [{"voter_id": v, "extra": EXTRA[i % len(EXTRA)]} for i, v in enumerate(ids)]


def test_duckdb_keeps_extra_as_a_map(data_root):
    expected = _write_with_extra(data_root)
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    publish_snapshot(warehouse, "nc", NOV)
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        rows = con.execute("SELECT voter_id, extra FROM voters_enriched").fetchall()
        kind = con.execute("SELECT typeof(extra) FROM voters_enriched LIMIT 1").fetchone()[0]
    finally:
        con.close()
    assert kind.startswith("MAP(VARCHAR, VARCHAR)")
    assert {v: dict(e) for v, e in rows} == {r["voter_id"]: r["extra"] for r in expected}


@pytest.mark.postgres
def test_postgres_keeps_extra_as_jsonb(pg_dsn, data_root):
    expected = _write_with_extra(data_root)
    name = f"vp_test_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    try:
        publish_snapshot(PostgresWarehouse(pg_dsn, name), "nc", NOV)
        with conn.cursor() as cur:
            cur.execute(f'SELECT voter_id, extra, pg_typeof(extra)::text FROM "{name}".voters_enriched')
            rows = cur.fetchall()
            cur.execute(f"""SELECT count(*) FROM "{name}".voters_enriched WHERE extra->>'ward_desc' = 'WARD 3'""")
            ward = cur.fetchone()[0]
        assert {r[2] for r in rows} == {"jsonb"}
        got = {v: e if isinstance(e, dict) else json.loads(e) for v, e, _ in rows}
        assert got == {r["voter_id"]: r["extra"] for r in expected}
        assert ward == sum(1 for r in expected if r["extra"].get("ward_desc") == "WARD 3")
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.close()
