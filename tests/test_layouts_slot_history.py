"""The history shape "slots" with an election map per county (PA FVE): slot n of a voter row is the
county's election n, looked up in an aux table keyed by county and number (key_prefix); the maps of
several files add up to one table."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import LayoutError, load_layouts

LAYOUT = """
name = "zu_slots"
state = "zu"
[voters]
patterns = ["* VOTERS.txt"]
delimiter = "|"
header = false
columns = ["ID", "COUNTY", "M1", "P1", "M2", "P2"]
[voters.fields]
voter_id = "ID"
county_name = "COUNTY"
[history]
shape = "slots"
slots = 2
method_column = "M{n}"
party_column = "P{n}"
lookup = "elections"
county_column = "%s"
date_column = "DAY"
type_column = "TITLE"
election_type_codes = "election_type"
voting_method_codes = "voting_method"
[aux.elections]
patterns = ["* MAP.txt"]
delimiter = "|"
header = false
columns = ["COUNTY", "N", "TITLE", "DAY"]
key = "N"
key_prefix = "COUNTY"
[codes.election_type]
contains = [["PRIMARY", "primary"], ["GENERAL", "general"]]
default = "other"
[codes.voting_method]
exact = { V = "in_person", M = "absentee" }
default = "other"
"""


def _formats(tmp_path, county_column: str = "COUNTY"):
    formats = tmp_path / "formats"
    formats.mkdir(exist_ok=True)
    (formats / "zu_slots.toml").write_text(LAYOUT % county_column)
    return formats


def test_a_slot_is_the_election_of_the_voters_own_county(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "EAST VOTERS.txt").write_text("1|EAST|V||M|D\n2|EAST|||V|\n")
    (raw / "WEST VOTERS.txt").write_text("3|WEST|M|R||\n")
    (raw / "EAST MAP.txt").write_text("EAST|1|2024 GENERAL|11/05/2024\nEAST|2|2024 PRIMARY|04/23/2024\n")
    (raw / "WEST MAP.txt").write_text("WEST|1|2022 PRIMARY|05/17/2022\n")
    outputs = {name: tmp_path / f"{name}.parquet" for name in ("voters", "history", "rejects")}
    manifest = import_drop(raw, outputs, "zu", date(2026, 11, 1), formats_dir=_formats(tmp_path))
    rows = [(r["voter_id"], r["election_date"].isoformat(), r["election_type"], r["voting_method"], r["party_ballot"])
            for r in pq.read_table(outputs["history"]).to_pylist()]
    assert rows == [("1", "2024-11-05", "general", "in_person", None), ("1", "2024-04-23", "primary", "absentee", "D"),
                    ("2", "2024-04-23", "primary", "in_person", None), ("3", "2022-05-17", "primary", "absentee", "R")]
    assert manifest["totals"]["history_loaded"] == 4 and manifest["totals"]["voters_loaded"] == 3
    assert [f["role"] for f in manifest["files"]] == ["elections", "elections", "voters", "voters"]  # maps first


def test_a_slot_history_must_name_its_voter_columns(tmp_path):
    with pytest.raises(LayoutError, match="slot history reads unknown voter columns"):
        load_layouts(_formats(tmp_path, "NO_SUCH_COLUMN"))
