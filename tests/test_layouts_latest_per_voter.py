"""The voters option latest_per_voter (NC VR_Snapshot): a file holding several snapshots loads, per
voter, the one row with the latest date on or before the drop's snapshot; every other row is
skipped (counted, never rejected), whatever the block boundaries."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import LayoutError, load_layouts

LAYOUT = """
name = "zv_snapshots"
state = "zv"
[voters]
patterns = ["ZV_*.txt"]
delimiter = "|"
header = true
columns = ["SNAP", "ID", "LAST"]
extra = ["SNAP"]
latest_per_voter = { column = "%s", date = ["%%Y-%%m-%%d"] }
[voters.fields]
voter_id = "ID"
last_name = "LAST"
"""
LINES = [
    "SNAP|ID|LAST",
    "2020-01-01|1|OLD",      # 2: superseded
    "2024-06-01|1|NEW",      # 3: voter 1's latest on or before 2026-11-01
    "2022-01-01|1|MIDDLE",   # 4: superseded (not in date order)
    "2025-01-01|2|FIRST",    # 5: a tie: the first line wins
    "2025-01-01|2|SECOND",   # 6
    "2027-01-01|3|FUTURE",   # 7: after the snapshot: voter 3 is not in this snapshot
    "2026-02-30|4|BADDATE",  # 8: no readable date
    "2021-01-01||NOID",      # 9: no voter id: rejected as always
]


def _formats(tmp_path, column: str = "SNAP"):
    formats = tmp_path / "formats"
    formats.mkdir(exist_ok=True)
    (formats / "zv_snapshots.toml").write_text(LAYOUT % column)
    return formats


@pytest.mark.parametrize("chunk_rows", [2, 1000])
def test_one_snapshot_is_each_voters_latest_row_on_or_before_the_drop_date(tmp_path, chunk_rows):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ZV_20261101.txt").write_text("\n".join(LINES) + "\n")
    outputs = {name: tmp_path / f"{name}.parquet" for name in ("voters", "history", "rejects")}
    manifest = import_drop(raw, outputs, "zv", date(2026, 11, 1), chunk_rows=chunk_rows,
                           formats_dir=_formats(tmp_path))
    voters = pq.read_table(outputs["voters"]).to_pylist()
    assert [(v["voter_id"], v["last_name"], v["source_line"], dict(v["extra"])["SNAP"]) for v in voters] == [
        ("1", "NEW", 3, "2024-06-01"), ("2", "FIRST", 5, "2025-01-01")]
    entry = manifest["files"][0]
    assert (entry["rows_read"], entry["rows_loaded"], entry["rows_skipped"], entry["rows_rejected"]) == (8, 2, 5, 1)
    assert entry["skipped_by_reason"] == {
        "not_the_voters_latest_row: SNAP=2020-01-01": 1, "not_the_voters_latest_row: SNAP=2022-01-01": 1,
        "not_the_voters_latest_row: SNAP=2025-01-01": 1, "not_the_voters_latest_row: SNAP=2027-01-01": 1,
        "not_the_voters_latest_row: SNAP=2026-02-30": 1}
    assert entry["rejected_by_reason"] == {"missing_voter_id": 1}


def test_latest_per_voter_must_name_a_known_column(tmp_path):
    with pytest.raises(LayoutError, match="latest_per_voter needs a known column"):
        load_layouts(_formats(tmp_path, "NOPE"))
