"""End to end against H1's synthetic drops: every layout imports, and rejects match the damage ledger."""

from __future__ import annotations

from collections import Counter
from datetime import date

import luigi
import pandas as pd
import pyarrow.parquet as pq
import pytest

from voterpipe.synth import read_truth, truth_dir, write_drop
from voterpipe.tasks.imports import ImportSnapshot

SNAPSHOT = date(2026, 11, 1)
LAYOUTS = [("nc", "nc_current"), ("nc", "nc_pre2022"), ("oh", "oh_swvf"), ("fl", "fl_extract"),
           ("mi", "mi_csv"), ("mi", "mi_fixed"), ("wa", "wa_vrdb")]
FIELD_COUNT_DAMAGE = {"extra_fields", "missing_fields"}


@pytest.mark.parametrize("state,layout", LAYOUTS)
def test_synthetic_drop_imports_and_rejects_match_the_damage_ledger(data_root, state, layout):
    write_drop(state, 1500, SNAPSHOT, seed=7, layout=layout, dirty_rate=0.02, root=data_root)
    _import_and_reconcile(data_root, state, layout)


def _import_and_reconcile(data_root, state: str, layout: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Import the drop; every file reconciles, rejects are the planted bad lines; (voters, truth, manifest)."""
    task = ImportSnapshot(state=state, snapshot=SNAPSHOT)
    assert luigi.build([task], local_scheduler=True)
    manifest = task.output().manifest()
    assert manifest["layout"] == layout
    ledger = pd.read_parquet(truth_dir(state, SNAPSHOT, data_root) / "damage.parquet")
    rejects = pq.read_table(task.output().file("rejects.parquet")).to_pandas()
    voters = pq.read_table(task.output().file("voters.parquet")).to_pandas()

    for entry in manifest["files"]:
        assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_rejected"] + entry["rows_skipped"]
        if entry["role"] != "voters":
            continue
        damage = ledger[ledger["file"] == entry["name"]]
        kinds = Counter(damage["kind"])
        shape_damage = damage[damage["kind"].isin(FIELD_COUNT_DAMAGE)]
        rejected = rejects[rejects["source_file"] == entry["name"]]
        assert sorted(rejected["line_number"]) == sorted(shape_damage["line"]), entry["name"]
        assert entry["nul_bytes_stripped"] == kinds["nul_bytes"]
        nulled = entry["values_nulled"]
        assert nulled.get("res_zip5", {}).get("bad_zip", 0) == kinds["bad_zip"]
        assert nulled.get("registered_on", {}).get("bad_date", 0) == kinds["bad_date"]
        assert "bad_year" not in nulled.get("birth_year", {})

    truth = read_truth(state, SNAPSHOT, data_root)
    damaged_ids = set(ledger[ledger["kind"].isin(FIELD_COUNT_DAMAGE)]["voter_id"])
    # FL's canonical id is county code + Voter ID; the truth keeps the bare Voter ID.
    loaded = set(voters["voter_id"].str.slice(3) if state == "fl" else voters["voter_id"])
    assert loaded <= set(truth["voter_id"])
    assert not loaded & damaged_ids
    assert len(loaded) == len(truth) - len(damaged_ids & set(truth["voter_id"]))
    assert len(loaded) == len(voters) == manifest["totals"]["voters_loaded"]
    assert manifest["totals"]["history_loaded"] > 0
    assert set(voters["status"].unique()) <= {"active", "inactive", "removed", "other"}
    assert voters["res_zip5"].notna().mean() > 0.9
    assert len(truth) >= len(voters)
    return voters, truth, manifest


# ---- a state that exists only as a layout TOML written here: no Python knows it -----------------

MADE_UP_CSV = """
name = "zz_roll"
state = "zz"
description = "Made-up state: semicolon CSV with a header, UTF-8, long history"

[voters]
patterns = ["ZZ_VOTERS_*.csv"]
encoding = "utf-8"
delimiter = ";"
quote = '"'
header = true
columns = ["VOTER_KEY", "COUNTY", "SURNAME", "GIVEN", "MIDDLE", "BORN", "SEX", "STATUS", "REG_DATE",
           "ADDRESS", "UNIT", "TOWN", "POSTCODE", "DISTRICT_US", "NOTE"]

[voters.fields]
voter_id = "VOTER_KEY"
county_code = "COUNTY"
last_name = "SURNAME"
first_name = "GIVEN"
middle_name = "MIDDLE"
birth_date = { column = "BORN", date = ["%Y%m%d"] }
gender = { column = "SEX", codes = "gender" }
status = { column = "STATUS", codes = "status" }
registered_on = { column = "REG_DATE", date = ["%d.%m.%Y"] }
res_address_line = "ADDRESS"
res_unit = "UNIT"
res_city = "TOWN"
res_zip5 = { column = "POSTCODE", zip = "zip5" }
res_zip4 = { column = "POSTCODE", zip = "zip4" }
congressional_district = "DISTRICT_US"

[history]
shape = "long"
patterns = ["ZZ_HISTORY_*.csv"]
encoding = "utf-8"
delimiter = ";"
quote = '"'
header = true
columns = ["VOTER_KEY", "ELECTION_DAY", "KIND", "HOW"]

[history.fields]
voter_id = "VOTER_KEY"
election_date = { column = "ELECTION_DAY", date = ["%Y-%m-%d"] }
election_type = { column = "KIND", codes = "election_type" }
voting_method = { column = "HOW", codes = "voting_method" }

[codes.status]
exact = { A = "active", ACTIVE = "active", I = "inactive", INACTIVE = "inactive" }
default = "other"

[codes.gender]
exact = { M = "M", F = "F" }
default = "U"
empty = "U"

[codes.election_type]
contains = [["PRIMARY", "primary"], ["GENERAL", "general"], ["SPECIAL", "special"]]
default = "other"

[codes.voting_method]
exact = { P = "in_person", M = "absentee" }
default = "other"
empty = "unknown"

[synth]
people = "wa"   # counties, codes and election calendar of the Washington synthetic people

[synth.voters]
file = "ZZ_VOTERS_{stamp}.csv"

[synth.voters.columns]
NOTE = { value = "made up; synthetic" }   # a delimiter inside a value: the field is quoted

[synth.history]
file = "ZZ_HISTORY_{stamp}.csv"
voting_methods = { P = 0.7, M = 0.3 }
"""

MADE_UP_FIXED = """
name = "zy_tape"
state = "zy"
description = "Made-up state: fixed-width voter and history tapes"

[voters]
patterns = ["ZYVOTERS.DAT"]
encoding = "latin-1"
fixed_width = true
line_length = [82, 82]
# A filler column between ST and PTY that nothing reads.
widths = [["ID", 0, 12], ["LAST", 12, 37], ["FIRST", 37, 52], ["DOB", 52, 60], ["REG", 60, 68],
          ["ZIP", 68, 73], ["ST", 73, 75], ["PTY", 77, 80], ["CTY", 80, 82]]

[voters.fields]
voter_id = "ID"
last_name = "LAST"
first_name = "FIRST"
birth_date = { column = "DOB", date = ["%Y%m%d"] }
registered_on = { column = "REG", date = ["%m%d%Y"] }
res_zip5 = { column = "ZIP", zip = "zip5" }
status = { column = "ST", codes = "status" }
party = { column = "PTY", codes = "party" }
county_code = "CTY"

[history]
shape = "long"
patterns = ["ZYHISTORY.DAT"]
encoding = "latin-1"
fixed_width = true
line_length = [20, 20]
widths = [["ID", 0, 12], ["DAY", 12, 20]]

[history.fields]
voter_id = "ID"
election_date = { column = "DAY", date = ["%Y%m%d"] }

[codes.status]
exact = { A = "active", I = "inactive", R = "removed" }
default = "other"

[codes.party]
exact = { DEM = "DEM", REP = "REP", UNA = "UNA" }
default = "OTH"

[synth]
people = "nc"
"""


@pytest.mark.parametrize("state,layout,toml", [("zz", "zz_roll", MADE_UP_CSV), ("zy", "zy_tape", MADE_UP_FIXED)])
def test_a_made_up_state_layout_gets_a_drop_and_imports_with_no_python_change(data_root, tmp_path, state,
                                                                              layout, toml):
    formats = tmp_path / "formats"
    formats.mkdir()
    (formats / f"{layout}.toml").write_text(toml)
    summary = write_drop(state, 1200, SNAPSHOT, seed=5, dirty_rate=0.02, root=data_root, formats_dir=formats)
    assert summary["layout"] == layout and summary["damaged_total"] == 24
    with pytest.raises(ValueError, match="not a ZZ layout"):
        write_drop("zz", 100, SNAPSHOT, seed=5, layout="nc_current", root=data_root, formats_dir=formats)

    # The import task reads the same layouts through [voterpipe] formats_dir.
    parser = luigi.configuration.get_config()
    if not parser.has_section("voterpipe"):
        parser.add_section("voterpipe")
    had = parser.get("voterpipe", "formats_dir", None)
    parser.set("voterpipe", "formats_dir", str(formats))
    try:
        _check_made_up_import(data_root, state, layout, summary)
    finally:
        if had is None:
            parser.remove_option("voterpipe", "formats_dir")
        else:
            parser.set("voterpipe", "formats_dir", had)


def _check_made_up_import(data_root, state: str, layout: str, summary: dict) -> None:
    voters, truth, manifest = _import_and_reconcile(data_root, state, layout)
    assert manifest["totals"]["history_loaded"] == summary["history_rows"]
    # Clean rows carry the truth's values through the made-up layout and back.
    ledger = pd.read_parquet(truth_dir(state, SNAPSHOT, data_root) / "damage.parquet")
    merged = voters.merge(truth, on="voter_id", suffixes=("", "_truth"))
    clean = merged[~merged["voter_id"].isin(set(ledger["voter_id"])) & (merged["addr_kind"] == "street")]
    assert len(clean) > 1000
    assert (pd.to_datetime(clean["registered_on"]) == clean["registered_on_truth"]).all()
    assert (pd.to_datetime(clean["birth_date"]) == clean["birth_date_truth"]).all()
    assert (clean["res_zip5"] == clean["zip5"]).all()
    if state == "zz":
        assert (clean["last_name"] == clean["last_name_truth"]).all()
        assert (clean["res_city"] == clean["city"]).all()
    else:  # read across the filler column
        assert (clean["party_raw"] == clean["party_raw_truth"]).all() and (clean["county_code"] == "92").any()


def test_florida_did_not_vote_rows_are_skipped_and_uncounted_ballots_kept_as_such(data_root):
    """FL history codes: N (did not vote) rows are skipped, never rejected; B and P (ballots not
    counted) load with ballot_status not_counted; the other codes are counted ballots."""
    write_drop("fl", 1500, SNAPSHOT, seed=7, layout="fl_extract", dirty_rate=0.0, root=data_root)
    voters, truth, manifest = _import_and_reconcile(data_root, "fl", "fl_extract")
    history_files = [f for f in manifest["files"] if f["role"] == "history"]
    skipped = sum(f["rows_skipped"] for f in history_files)
    assert skipped > 0 and manifest["totals"]["rows_skipped"] == skipped
    assert all(set(f["skipped_by_reason"]) <= {"did_not_vote: History Code=N"} for f in history_files)
    assert sum(f["rows_rejected"] for f in history_files) == 0
    history = pq.read_table(ImportSnapshot(state="fl", snapshot=SNAPSHOT).output().file("history.parquet"),
                            columns=["ballot_status", "voting_method_raw"]).to_pandas()
    by_code = history.groupby("voting_method_raw")["ballot_status"].agg(set).to_dict()
    assert by_code["B"] == {"not_counted"} and by_code["P"] == {"not_counted"}
    assert all(by_code[code] == {"counted"} for code in ("A", "E", "Y") if code in by_code)
    assert "N" not in by_code
