"""The data dictionary: every published column has a description, the warehouse carries them as
comments (DuckDB and PostgreSQL), and docs/data-dictionary.md is generated from the same source."""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import warehouse_data  # noqa: E402

from voterpipe.warehouse import DuckDBWarehouse, PostgresWarehouse, publish_snapshot  # noqa: E402
from voterpipe.warehouse import dictionary  # noqa: E402
from voterpipe.warehouse.tables import MARKER_TABLE, TABLE_NAMES, TABLES  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
NOV = date(2026, 11, 1)


def _publish_sample(root, publish):
    tables = warehouse_data.upstream_tables("nc", NOV, 20)
    warehouse_data.write_upstream(root, "nc", NOV, tables)
    return publish()


def test_every_published_column_has_a_description():
    columns = dictionary.published_columns()
    assert set(columns) == {*TABLE_NAMES, MARKER_TABLE}
    assert "voter_id" in columns["voters_enriched"] and "geocode_status" in columns["addresses"]
    assert dictionary.undocumented() == []


def test_a_new_column_without_description_is_caught(monkeypatch):
    monkeypatch.delitem(dictionary.COLUMNS, "precinct")
    assert "voters_enriched.precinct" in dictionary.undocumented()


def test_docs_data_dictionary_is_generated_from_the_dictionary():
    written = (REPO_ROOT / "docs" / "data-dictionary.md").read_text()
    assert written == dictionary.markdown(), "run: voterpipe docs"
    for table, columns in dictionary.published_columns().items():
        assert f"## {table}" in written
        for column in columns:
            assert f"| `{column}` | {dictionary.describe(table, column).replace('|', '/')} |" in written


def test_duckdb_warehouse_comments_every_table_view_and_column(data_root):
    warehouse = DuckDBWarehouse(data_root / "warehouse.duckdb")
    _publish_sample(data_root, lambda: publish_snapshot(warehouse, "nc", NOV))
    publish_snapshot(warehouse, "nc", NOV)  # a republish replaces the views: comments must survive
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        columns = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                              "WHERE schema_name = 'main' AND NOT internal").fetchall()
        relations = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' "
                                     "UNION ALL SELECT view_name, comment FROM duckdb_views() "
                                     "WHERE schema_name = 'main' AND NOT internal").fetchall())
    finally:
        con.close()
    expected = {*TABLE_NAMES, MARKER_TABLE, *(t.view for t in TABLES)}
    assert set(relations) == expected
    for name, comment in relations.items():
        assert comment == dictionary.describe_table(name) and comment != dictionary.MISSING, name
    assert len(columns) > 150
    for table, column, comment in columns:
        assert comment == dictionary.describe(table, column), f"{table}.{column}: {comment!r}"
        assert comment != dictionary.MISSING, f"{table}.{column}"


@pytest.mark.postgres
def test_postgres_warehouse_comments_every_table_view_and_column(pg_dsn, data_root):
    import psycopg2

    schema = f"vp_dict_{uuid.uuid4().hex[:8]}"
    warehouse = PostgresWarehouse(pg_dsn, schema)
    _publish_sample(data_root, lambda: publish_snapshot(warehouse, "nc", NOV))
    conn = psycopg2.connect(pg_dsn)
    try:
        with conn.cursor() as cur:
            # regular, partitioned tables and views; not the per-slice partitions (they inherit nothing)
            cur.execute("SELECT c.relname, obj_description(c.oid, 'pg_class'), a.attname, col_description(c.oid, a.attnum) "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition", [schema])
            rows = cur.fetchall()
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.commit()
    finally:
        conn.close()
    assert {r[0] for r in rows} == {*TABLE_NAMES, MARKER_TABLE, *(t.view for t in TABLES)}
    for relation, relation_comment, column, comment in rows:
        assert relation_comment == dictionary.describe_table(relation), relation
        assert comment == dictionary.describe(relation, column), f"{relation}.{column}: {comment!r}"
        assert comment != dictionary.MISSING


def test_voterpipe_docs_writes_the_dictionary(tmp_path):
    from voterpipe import cli

    out = tmp_path / "dictionary.md"
    assert cli.main(["docs", "--out", str(out)]) == 0
    assert out.read_text() == dictionary.markdown()
