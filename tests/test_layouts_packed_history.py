"""The history shape "packed": tokens in one voter-file column (NY's VoterHistory) become long
history rows; each token is read by the first pattern that matches, the rest are counted."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from voterpipe.formats.columns import without_destination
from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import LayoutError, load_layouts

LAYOUT = """
name = "zw_packed"
state = "zw"
[voters]
patterns = ["ZW_*.txt"]
delimiter = "|"
header = true
columns = ["ID", "LAST", "HISTORY"]
[voters.fields]
voter_id = "ID"
last_name = "LAST"
[history]
shape = "packed"
column = "%s"
separator = ","
token_patterns = ['^(?P<date>\\d{4}-\\d{2}-\\d{2})/(?P<type>[A-Z])/(?P<method>[A-Z])$', '%s']
date = ["%%Y-%%m-%%d"]
election_type_codes = "election_type"
voting_method_codes = "voting_method"
[codes.election_type]
exact = { G = "general", P = "primary" }
default = "other"
[codes.voting_method]
exact = { V = "in_person", M = "absentee" }
default = "other"
empty = "unknown"
"""
SECOND = '^(?P<type>[A-Z]) (?P<date>\\d{4}-\\d{2}-\\d{2})$'
LINES = ["ID|LAST|HISTORY", "1|PUBLIC|2024-11-05/G/M, P 2024-03-05,2016 general", "2|SMITH|", "3|JONES|2022-11-08/G/V"]


def _layouts(tmp_path, column: str = "HISTORY", second: str = SECOND):
    formats = tmp_path / "formats"
    formats.mkdir(exist_ok=True)
    (formats / "zw_packed.toml").write_text(LAYOUT % (column, second))
    return formats


def test_packed_tokens_become_long_history_rows_and_unread_tokens_are_counted(tmp_path):
    formats = _layouts(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ZW_20261101.txt").write_text("\n".join(LINES) + "\n")
    outputs = {name: tmp_path / f"{name}.parquet" for name in ("voters", "history", "rejects")}
    manifest = import_drop(raw, outputs, "zw", date(2026, 11, 1), formats_dir=formats)
    rows = [(r["voter_id"], r["election_date"].isoformat(), r["election_type"], r["voting_method"], r["source_line"])
            for r in pq.read_table(outputs["history"]).to_pylist()]
    assert rows == [("1", "2024-11-05", "general", "absentee", 2), ("1", "2024-03-05", "primary", "unknown", 2),
                    ("3", "2022-11-08", "general", "in_person", 4)]
    voters_file = manifest["files"][0]
    assert voters_file["values_nulled"]["election_date"] == {"unread_history_token": 1}
    assert voters_file["history_rows_from_wide_columns"] == 3 == manifest["totals"]["history_loaded"]
    assert without_destination(load_layouts(formats)["zw_packed"]) == []  # the column feeds the history


@pytest.mark.parametrize("column,second,message", [
    ("NOPE", SECOND, "packed history column 'NOPE' is no voter column"),
    ("HISTORY", "^(?P<type>[A-Z])$", "token_patterns need a group 'date'"),
])
def test_a_packed_history_that_cannot_work_is_a_layout_error(tmp_path, column, second, message):
    with pytest.raises(LayoutError, match=message):
        load_layouts(_layouts(tmp_path, column, second))
