"""Repair, don't null: spreadsheet-mangled ZIPs and codes recovered exactly and counted; one code form
per state; phones as ten digits with dummies nulled."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import storage
from voterpipe.catalog import stage as catalog_stage
from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import LayoutError, load_layouts, state_canonical
from voterpipe.formats.normalise import parse_zip
from voterpipe.formats.repair import CodeForm, canonical_code_array, canonical_codes, parse_phone
from voterpipe.synth import write_drop

SNAPSHOT = date(2026, 11, 1)


def test_float_zips_dashes_and_empty_plus4_are_repaired_and_counted():
    zips = pa.array(["27517.0", "27517-", "27517-0000", "275170001", "27517", "ABCDE", "2134", None])
    zip5, bad, floats, zeros, dashes, empty = parse_zip(zips, "zip5")
    assert zip5.to_pylist() == ["27517", "27517", "27517", "27517", "27517", None, None, None]
    assert (bad, floats, zeros, dashes, empty) == (2, 1, 0, 1, 0)  # 2134: NC ZIPs never lost a zero
    zip4, bad4, *repairs4 = parse_zip(zips, "zip4")
    assert zip4.to_pylist() == [None, None, None, "0001", None, None, None, None]
    assert repairs4 == [0, 0, 0, 1]  # the -0000 (the float was counted under the ZIP5)


def test_lost_leading_zero_is_restored_only_where_the_state_declares_it():
    zips = pa.array(["2134", "2134.0", "21341234", "02134", "213"])
    zip5, bad, floats, zeros, *_ = parse_zip(zips, "zip5", leading_zero=True)
    assert zip5.to_pylist() == ["02134", "02134", "02134", "02134", None]
    assert (bad, floats, zeros) == (1, 1, 3)
    zip4, *_ = parse_zip(zips, "zip4", leading_zero=True)
    assert zip4.to_pylist() == [None, None, "1234", None, None]
    # A separate +4 column: four digits are the +4, not a ZIP that lost its zero.
    plus4, bad4, *_ = parse_zip(pa.array(["0001", "0000", "12"]), "zip4", leading_zero=True, shared=False)
    assert plus4.to_pylist() == ["0001", None, None] and bad4 == 1


def test_large_zip_arrays_count_repairs_per_distinct_value_the_same():
    small = parse_zip(pa.array(["27517.0", "27517-", "x"]), "zip5")
    big = parse_zip(pa.array(["27517.0", "27517-", "x"] * 3000), "zip5")
    assert big[1:] == tuple(3000 * n for n in small[1:])


@pytest.mark.parametrize("form,expected,padded", [
    (CodeForm("unpadded"), ["6", "6", "6", "12", "01-07", "PR12", "0", None], 3),
    (CodeForm("pad", 3), ["006", "006", "006", "012", "01-07", "PR12", "000", None], 4),
    (CodeForm("as_delivered"), ["6", "06", "006", "12", "01-07", "PR12", "00", None], 0),
])
def test_codes_take_the_state_form_and_floats_lose_their_point_zero(form, expected, padded):
    codes = pa.array(["6.0", "06", "006", "12", "01-07", "PR12", "00", None])
    values, (floats, changed) = canonical_codes(codes, form)
    assert values.to_pylist() == expected
    assert int(floats.sum()) == 1 and int(changed.sum()) == padded


def test_code_forms_parse_and_reject_unknown_forms():
    assert CodeForm.parse({"pad": 2}) == CodeForm("pad", 2)
    assert CodeForm.parse("unpadded").describe() == "unpadded"
    with pytest.raises(ValueError, match="code form"):
        CodeForm.parse("zero-padded")
    assert canonical_code_array(pa.chunked_array([[" 04 ", "", None, "4.0"]]), CodeForm("unpadded")).to_pylist() \
        == ["4", None, None, "4"]


def test_phones_become_ten_digits_and_dummies_are_null():
    phones = pa.array(["(919) 555-1234", "1-919-555-1234", "0000000", "0000000000", "5551234", "000 555 1234",
                       None, "--"])
    values, (bad, dummy) = parse_phone(phones)
    assert values.to_pylist() == ["9195551234", "9195551234", None, None, None, None, None, None]
    assert int(bad.sum()) == 1 and int(dummy.sum()) == 3


def test_every_layout_of_a_state_declares_one_canonical_form():
    layouts = load_layouts()
    for state in {layout.state for layout in layouts.values()}:
        canonical = state_canonical(state)
        assert set(canonical.code_forms) == {"county_code", "precinct", "congressional_district",
                                             "state_senate_district", "state_house_district"}, state
    assert state_canonical("nc").code_forms["congressional_district"] == CodeForm("unpadded")
    assert state_canonical("mi").code_forms["county_code"] == CodeForm("pad", 2)


def test_layouts_of_one_state_that_disagree_on_code_forms_are_an_error(tmp_path):
    for name, form in (("zz_a", "unpadded"), ("zz_b", "as_delivered")):
        (tmp_path / f"{name}.toml").write_text(ZERO_STATE.replace('name = "zz_roll"', f'name = "{name}"')
                                               .replace('precinct = "unpadded"', f'precinct = "{form}"'))
    with pytest.raises(LayoutError, match="different \\[canonical\\]"):
        state_canonical("zz", tmp_path)


ZERO_STATE = """
name = "zz_roll"
state = "zz"

[voters]
patterns = ["ZZ_VOTERS.csv"]
delimiter = ","
header = true
columns = ["ID", "COUNTY", "ZIP", "PLUS4", "PCT", "CD"]

[voters.fields]
voter_id = "ID"
county_code = "COUNTY"
res_zip5 = { column = "ZIP", zip = "zip5" }
res_zip4 = { column = "PLUS4", zip = "zip4" }
precinct = "PCT"
congressional_district = "CD"

[canonical]
zip_leading_zero = true
county_code = { pad = 3 }
precinct = "unpadded"
congressional_district = "unpadded"
"""


def test_import_counts_repairs_beside_nulls_in_the_manifest(tmp_path):
    formats, raw, out = tmp_path / "formats", tmp_path / "raw", tmp_path / "out"
    for directory in (formats, raw, out):
        directory.mkdir()
    (formats / "zz_roll.toml").write_text(ZERO_STATE)
    (raw / "ZZ_VOTERS.csv").write_text("ID,COUNTY,ZIP,PLUS4,PCT,CD\n"
                                       "1,5.0,2134.0,0001,007,6.0\n"
                                       "2,005,02134-,0000,7,06\n"
                                       "3,5,ABCDE,,7.0,6\n")
    manifest = import_drop(raw, catalog_stage("canonical").files_in(out), "zz", SNAPSHOT, formats_dir=formats)
    voters = pq.read_table(out / "voters.parquet").to_pylist()
    assert {v["county_code"] for v in voters} == {"005"} and {v["precinct"] for v in voters} == {"7"}
    assert {v["congressional_district"] for v in voters} == {"6"}
    assert [v["res_zip5"] for v in voters] == ["02134", "02134", None]
    assert [v["res_zip4"] for v in voters] == ["0001", None, None]
    record = manifest["files"][0]
    assert record["values_repaired"] == {
        "congressional_district": {"float": 1, "zero_padded": 1},
        "county_code": {"float": 1, "zero_padded": 2},  # 5.0 and 5 padded to 005
        "precinct": {"float": 1, "zero_padded": 1},
        "res_zip4": {"empty_plus4": 1},
        "res_zip5": {"float": 1, "leading_zero": 1, "trailing_dash": 1},
    }
    assert record["values_nulled"] == {"res_zip5": {"bad_zip": 1}}


# ---- planted by the synthetic generator ([synth] artefacts), repaired by the import ---------------

REPAIR_OF = {"float_zip": ("res_zip5", "float"), "zip_dash": ("res_zip5", "trailing_dash"),
             "zip_plus4_zeros": ("res_zip4", "empty_plus4"), "float_code": (None, "float"),
             "lost_zero_code": (None, "zero_padded")}
COMPARED = ["voter_id", "county_code", "precinct", "congressional_district", "state_senate_district",
            "state_house_district", "res_zip5", "res_zip4"]


def _drop_and_import(root: Path, state: str, layout: str, formats_dir=None) -> tuple[dict, dict, pd.DataFrame]:
    summary = write_drop(state, 1200, SNAPSHOT, seed=11, layout=layout, dirty_rate=0.02, root=root,
                         formats_dir=formats_dir)
    out = root / "out"
    out.mkdir()
    manifest = import_drop(storage.raw_dir(state, SNAPSHOT, root), catalog_stage("canonical").files_in(out),
                           state, SNAPSHOT)
    voters = pq.read_table(out / "voters.parquet").to_pandas()
    return summary, manifest, voters.sort_values("voter_id").reset_index(drop=True)


def _planted(summary: dict) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for record in summary["files"]:
        for field_name, kinds in record.get("artefacts", {}).items():
            for kind, n in kinds.items():
                if not n:  # e.g. no code with a leading zero to lose
                    continue
                column, repair = REPAIR_OF[kind]
                key = (column or field_name, repair)
                counts[key] = counts.get(key, 0) + n
    return counts


def _repaired(manifest: dict) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for record in manifest["files"]:
        if record["role"] == "voters":
            for column, kinds in record["values_repaired"].items():
                for kind, n in kinds.items():
                    counts[(column, kind)] = counts.get((column, kind), 0) + n
    return counts


@pytest.mark.parametrize("state,layout", [("nc", "nc_current"), ("mi", "mi_csv"), ("fl", "fl_extract"),
                                          ("oh", "oh_swvf"), ("wa", "wa_vrdb")])
def test_planted_artefacts_are_repaired_to_exactly_the_clean_drop(tmp_path, state, layout):
    """The same drop with and without artefacts imports to the same canonical values; every planted
    float is counted, and the other repairs grow by exactly what was planted."""
    source = load_layouts()[layout].source.read_text()
    clean_formats = tmp_path / "clean_formats"
    clean_formats.mkdir()
    (clean_formats / f"{layout}.toml").write_text(
        "\n".join(line for line in source.splitlines() if not line.startswith("artefacts = ")))
    summary, manifest, voters = _drop_and_import(tmp_path / "dirty", state, layout)
    _, clean_manifest, clean_voters = _drop_and_import(tmp_path / "clean", state, layout, clean_formats)

    planted = _planted(summary)
    assert sum(planted.values()) > 20
    assert voters[COMPARED].equals(clean_voters[COMPARED])
    repaired, baseline = _repaired(manifest), _repaired(clean_manifest)
    for (column, kind), n in planted.items():
        if kind == "float":
            assert repaired[(column, kind)] == n, (column, kind)
        elif not (column.endswith("district") or column == "county_code") or layout.startswith("mi"):
            assert repaired[(column, kind)] == baseline.get((column, kind), 0) + n, (column, kind)
    nulled = [r["values_nulled"] for r in manifest["files"] if r["role"] == "voters"]
    clean_nulled = [r["values_nulled"] for r in clean_manifest["files"] if r["role"] == "voters"]
    assert nulled == clean_nulled  # repairs, never nulls


@pytest.mark.parametrize("state,layout", [("nj", "nj_vlist"), ("me", "me_sos")])
def test_zips_that_lost_their_leading_zero_are_repaired_exactly(tmp_path, state, layout):
    """A state whose ZIPs begin with 0: its synthetic drop carries 0-leading ZIPs and, at the dirty
    rate, ZIPs that lost the zero (2134) or became floats (2134.0). The import restores every one,
    counts it under values_repaired, nulls none, and loads what the same drop without them loads."""
    source = load_layouts()[layout].source.read_text()
    clean_formats = tmp_path / "clean_formats"
    clean_formats.mkdir()
    assert source.count("\n[synth]\n") == 1
    (clean_formats / f"{layout}.toml").write_text(source.replace("\n[synth]\n", "\n[synth]\nartefacts = {}\n"))
    summary, manifest, voters = _drop_and_import(tmp_path / "dirty", state, layout)
    clean_summary, clean_manifest, clean_voters = _drop_and_import(tmp_path / "clean", state, layout, clean_formats)

    planted = {kind: sum(f.get("artefacts", {}).get("res_zip5", {}).get(kind, 0) for f in summary["files"])
               for kind in ("lost_zero_zip", "float_zip")}
    assert not any(f.get("artefacts") for f in clean_summary["files"])
    for kind, n in planted.items():  # about the dirty rate (0.02) of 1200 rows each
        assert 8 <= n <= 50, (kind, n)
    zips = voters["res_zip5"].dropna()
    assert len(zips) > 0.9 * len(voters) and zips.str.fullmatch(r"0\d{4}").all()
    assert voters[COMPARED].equals(clean_voters[COMPARED])
    repaired, baseline = _repaired(manifest), _repaired(clean_manifest)
    assert repaired.get(("res_zip5", "float"), 0) == baseline.get(("res_zip5", "float"), 0) + planted["float_zip"]
    # A float of 02134 (2134.0) lost its zero too: counted under both reasons.
    assert repaired[("res_zip5", "leading_zero")] == (baseline.get(("res_zip5", "leading_zero"), 0)
                                                      + planted["lost_zero_zip"] + planted["float_zip"])
    nulled = [r["values_nulled"] for r in manifest["files"] if r["role"] == "voters"]
    assert nulled == [r["values_nulled"] for r in clean_manifest["files"] if r["role"] == "voters"]
