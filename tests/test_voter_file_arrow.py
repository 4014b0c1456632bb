"""The voter file's Arrow lookups give exactly the rows and schema of its SQL joins, whatever the
order of the upstream files, their missing links, null maps and keys, and older files."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import warehouse_data  # noqa: E402

from voterpipe import catalog, storage  # noqa: E402
from voterpipe.warehouse import enriched, enriched_arrow, enriched_blocks, source_files  # noqa: E402
from voterpipe.warehouse.tables import ENRICHED_INPUTS  # noqa: E402

NOV = date(2026, 11, 1)


def _both_paths(data_root, tmp_path, monkeypatch) -> tuple[pa.Table, pa.Table, dict, dict]:
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    arrow = enriched.write_voters_enriched(files, tmp_path / "arrow.parquet", rows_per_part=40)
    monkeypatch.setattr(enriched_arrow.EnrichedJoin, "unique", lambda self: False)  # the SQL joins
    sql = enriched.write_voters_enriched(files, tmp_path / "sql.parquet", rows_per_part=40)
    return pq.read_table(tmp_path / "arrow.parquet"), pq.read_table(tmp_path / "sql.parquet"), arrow, sql


def _rewrite(data_root, name: str, table: pa.Table) -> None:
    storage.write_parquet(table, catalog.dataset_path(name, "nc", NOV, data_root))


def _hostile_upstream(data_root) -> None:
    """300 voters, shuffled; links, households and cohorts in other orders and some missing;
    keys no row has; an older geocodes file; a map column with nulls."""
    tables = warehouse_data.upstream_tables("nc", NOV, 300, seed=21, hostile=True)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    rng = np.random.default_rng(4)
    voters = tables["voters"].take(pa.array(rng.permutation(300)))
    extra = pa.array([None if i % 7 == 0 else [("k", str(i % 3)), ("z", None)] for i in range(300)],
                     pa.map_(pa.string(), pa.string()))
    _rewrite(data_root, "voters", voters.set_column(voters.schema.get_field_index("extra"), "extra", extra)
             if "extra" in voters.column_names else voters.append_column("extra", extra))
    # links, households and cohorts in other orders, some voters without them
    for name in ("voter_addresses", "voter_households", "voter_cohorts"):
        table = tables[name].take(pa.array(rng.permutation(300)[:260]))
        _rewrite(data_root, name, table)
    links = pq.read_table(catalog.dataset_path("voter_addresses", "nc", NOV, data_root))
    keys = links.column("address_key").to_pylist()
    keys[:15] = [None] * 15  # no address, and keys no address row has
    keys[15:25] = ["nowhere"] * 10
    _rewrite(data_root, "voter_addresses", links.set_column(
        links.schema.get_field_index("address_key"), "address_key", pa.array(keys, pa.string())))
    # an older geocodes file without a column the schema declares now
    geocodes = tables["geocodes"]
    _rewrite(data_root, "geocodes", geocodes.drop_columns(["block"]).take(pa.array(rng.permutation(geocodes.num_rows))))


def test_arrow_lookups_equal_the_sql_joins_on_shuffled_sparse_inputs(data_root, tmp_path, monkeypatch):
    _hostile_upstream(data_root)
    arrow, sql, arrow_body, sql_body = _both_paths(data_root, tmp_path, monkeypatch)

    assert arrow_body == sql_body and arrow_body["rows"] == 300
    assert arrow.schema.remove_metadata().equals(sql.schema.remove_metadata())
    assert arrow.equals(sql)
    assert pc.all(pc.less(arrow["voter_id"][:-1], arrow["voter_id"][1:])).as_py()
    assert arrow["extra"].null_count == sql["extra"].null_count > 0
    assert arrow["address_key"].null_count >= 15 and arrow["block"].null_count == 300


def test_a_repeated_lookup_key_takes_the_sql_path_and_its_error(data_root, tmp_path):
    tables = warehouse_data.upstream_tables("nc", NOV, 20, seed=2)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    households = tables["households"]
    _rewrite(data_root, "households", pa.concat_tables([households, households.slice(3, 1)]))
    with pytest.raises(Exception, match=r"households\.parquet: 1 repeated household_id"):
        enriched.write_voters_enriched(source_files("nc", NOV, data_root, ENRICHED_INPUTS), tmp_path / "v.parquet")


def test_compact_map_takes_rows_back_as_they_were(tmp_path):
    values = [[("a", "1"), ("b", None)], None, [], [("a", "2")], [("c", "x"), ("a", "1"), ("b", "y")]] * 30
    column = pa.array(values, pa.map_(pa.string(), pa.string()))
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"m": column}), path, row_group_size=37)
    held = enriched_arrow.CompactMap.read(pq.ParquetFile(path), "m")
    rows = pa.array(np.random.default_rng(1).permutation(len(values))[:100])
    assert held.take(rows).to_pylist() == column.take(rows).to_pylist()


def test_parts_made_ahead_arrive_in_order_and_a_stopped_reader_stops_the_maker():
    made = []

    def parts():
        for i in range(50):
            made.append(i)
            yield i

    assert list(enriched._ahead(parts())) == list(range(50))
    made.clear()
    reader = enriched._ahead(parts())
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()  # a failed write: the thread ends instead of waiting forever with its parts
    assert len(made) < 50
    assert not any(t.name == "voter-file-parts" and t.is_alive() for t in __import__("threading").enumerate())

    def failing():
        yield 1
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        list(enriched._ahead(failing()))


def test_the_file_schema_probe_joins_one_voter_not_the_whole_roll(data_root, tmp_path):
    """The probe that gives the file its DuckDB schema used to hash every lookup table whole and
    ran out of the memory cap at 4M voters; 50k voters under a 24MB cap show the same (the full
    join needs more than 32MB here, the one-voter probe under 16MB)."""
    tables = warehouse_data.upstream_tables("nc", NOV, 50_000, seed=3)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    body = enriched.write_voters_enriched(files, tmp_path / "v.parquet", memory_limit="24MB")
    assert body["rows"] == 50_000


def test_the_one_voter_probe_gives_the_schema_of_the_whole_query(data_root, tmp_path):
    """Required (no nulls in the inputs' statistics) or optional, column by column, exactly as
    DuckDB writes the whole join, also when a voter column's only null is in a late row group."""
    tables = warehouse_data.upstream_tables("nc", NOV, 400, seed=5)
    voters = tables["voters"]
    late_null = voters.column("gender").to_pylist()
    late_null[-1] = None
    voters = voters.set_column(voters.schema.get_field_index("gender"), "gender", pa.array(late_null, pa.string()))
    tables["voters"] = voters
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    path = catalog.dataset_path("voters", "nc", NOV, data_root)
    pq.write_table(pq.read_table(path), path, row_group_size=100)  # the null is in the 4th group only
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    con = enriched._sql_session(files, "", None)
    try:
        select = enriched.voters_enriched_sql("nc", NOV, enriched.warehouse_tables.source_columns(con, "voters"),
                                              enriched.warehouse_tables.source_columns(con, "voter_cohorts"))
        probed = enriched._copy_schema(con, select, tmp_path / "v.parquet")
        storage.write_query_parquet(con, select, tmp_path / "whole.parquet")
    finally:
        con.close()
    whole = pq.read_schema(tmp_path / "whole.parquet")
    assert probed.remove_metadata().equals(whole.remove_metadata())
    assert probed.field("gender").nullable
    assert not probed.field("voter_id").nullable and probed.field("address_key").nullable


@pytest.mark.parametrize("voters_per_block", [140, 299])
def test_a_roll_joined_in_voter_id_blocks_gives_the_same_file(data_root, tmp_path, voters_per_block):
    """Blocks (5 of at most 70 voters, or 3 with few voters in the last) write the file the
    whole join writes, byte for byte, with links listed in other orders and missing; the
    spilled blocks are gone afterwards."""
    _hostile_upstream(data_root)
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    whole = enriched.write_voters_enriched(files, tmp_path / "whole.parquet", rows_per_part=40)
    (tmp_path / "blocked").mkdir()
    blocked = enriched.write_voters_enriched(files, tmp_path / "blocked" / "v.parquet", rows_per_part=40,
                                             voters_per_block=voters_per_block)
    assert blocked == whole
    assert (tmp_path / "blocked" / "v.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert [p.name for p in (tmp_path / "blocked").iterdir()] == ["v.parquet"]
    join = enriched_blocks.open_join(files.paths, "nc", NOV, [], [], per_block=voters_per_block)
    assert isinstance(join, enriched_blocks.BlockedJoin) and join.unique()


def test_spilled_blocks_hold_their_rows_in_file_order_and_a_repeated_key_is_refused(data_root, tmp_path):
    tables = warehouse_data.upstream_tables("nc", NOV, 40, seed=2)
    warehouse_data.write_upstream(data_root, "nc", NOV, tables, voter_file=False)
    path = catalog.dataset_path("voters", "nc", NOV, data_root)
    pq.write_table(pq.read_table(path), path, row_group_size=7)
    row_blocks = np.array([i % 3 - 1 for i in range(40)], dtype=np.int32)  # -1 rows belong to no block
    spilled = enriched_blocks.spill_blocks(path, "voters", ["voter_id", "no_such_column"], row_blocks, 2,
                                           tmp_path / "spill")
    ids = tables["voters"]["voter_id"].to_pylist()
    for block in (0, 1):
        got = spilled[block].load()
        assert got["voter_id"].to_pylist() == [ids[i] for i in range(40) if row_blocks[i] == block]
        assert got["no_such_column"].null_count == len(got["voter_id"])
    households = tables["households"]
    _rewrite(data_root, "households", pa.concat_tables([households, households.slice(3, 1)]))
    files = source_files("nc", NOV, data_root, ENRICHED_INPUTS)
    assert not enriched_blocks.open_join(files.paths, "nc", NOV, [], [], per_block=10).unique()
