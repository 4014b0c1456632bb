"""Every delivered column has a destination: a canonical field, the per-voter `extra` map, or
never_load with a reason; the extra map and the new canonical fields survive the import."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import schema
from voterpipe.catalog import stage as catalog_stage
from voterpipe.formats.columns import destinations, markdown, without_destination
from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import load_layouts
from voterpipe.formats.normalise import build_extra

LAYOUTS = load_layouts()
SNAPSHOT = date(2026, 11, 1)
NEW_FIELDS = ("race", "ethnicity", "phone", "municipality", "ward", "school_district", "vtd", "precinct_name",
              "county_registration_number")


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_column_of_every_shipped_layout_has_a_destination(name):
    assert without_destination(LAYOUTS[name]) == []


def test_a_layout_that_leaves_a_column_without_a_destination_fails(tmp_path):
    source = LAYOUTS["nc_current"].source.read_text()
    (tmp_path / "nc_current.toml").write_text(source.replace('"township_abbrv", "township_desc", "school_dist_desc"',
                                                             '"township_desc", "school_dist_desc"')
                                              .replace('ssn = "social security number: never stored", ', ""))
    missing = without_destination(load_layouts(tmp_path)["nc_current"])
    assert missing == ["voters.township_abbrv", "voters.ssn"]


def test_identity_numbers_are_never_loaded_and_say_why():
    nc = {d.column: d.goes_to for d in destinations(LAYOUTS["nc_current"]) if d.role == "voters"}
    assert nc["ssn"].startswith("never_load: social security")
    assert nc["drivers_lic"].startswith("never_load: driver's licence")
    assert nc["race_code"] == "field race" and nc["township_desc"] == "extra"


def test_states_that_deliver_the_campaign_fields_map_them():
    fields = {name: set(layout.voters.fields) for name, layout in LAYOUTS.items()}
    assert set(NEW_FIELDS) <= fields["nc_current"] and set(NEW_FIELDS) <= fields["nc_pre2022"]
    assert {"race", "phone", "school_district"} <= fields["fl_extract"]
    assert {"precinct_name", "municipality", "ward", "school_district", "county_registration_number"} <= fields["oh_swvf"]
    assert {"municipality", "ward", "school_district"} <= fields["mi_csv"]
    assert "school_district" in fields["mi_fixed"] and "county_registration_number" in fields["wa_vrdb"]
    for name in NEW_FIELDS + ("extra",):
        assert name in schema.VOTERS.names and name in schema.VOTERS_ENRICHED.names


def test_extra_map_holds_the_non_blank_values_in_layout_order():
    raw = {"a": pa.array(["1", "", None, " x "]), "b": pa.array(["2", "3", None, ""]), "c": pa.array(["9"] * 4)}
    extra = build_extra(raw, ("a", "b", "missing"), 4)
    assert extra.type == pa.map_(pa.string(), pa.string())
    assert extra.to_pylist() == [[("a", "1"), ("b", "2")], [("b", "3")], [], [("a", "x")]]
    assert build_extra(raw, (), 4).to_pylist() == [[]] * 4


def test_generated_column_table_lists_every_layout():
    text = markdown(LAYOUTS)
    for name, layout in LAYOUTS.items():
        assert f"#### `{name}`" in text
        assert all(f"`{d.column}`" in text for d in destinations(layout))
    assert "**nowhere**" not in text
    # the shipped list is the generated one
    assert (LAYOUTS["nc_current"].source.parent / "COLUMNS.md").read_text() == text


def test_synthetic_nc_drop_carries_extra_and_campaign_fields_into_parquet(tmp_path, data_root):
    from voterpipe import storage
    from voterpipe.synth import write_drop

    write_drop("nc", 400, SNAPSHOT, seed=3, layout="nc_current", dirty_rate=0.0, root=data_root)
    out = tmp_path / "out"
    out.mkdir()
    manifest = import_drop(storage.raw_dir("nc", SNAPSHOT, data_root), catalog_stage("canonical").files_in(out),
                           "nc", SNAPSHOT)
    dummies = manifest["files"][0]["values_nulled"]["phone"]["dummy_phone"]  # NC's 0000000
    voters = pq.read_table(out / "voters.parquet")
    assert voters.schema.field("extra").type == pa.map_(pa.string(), pa.string())
    rows = voters.to_pylist()
    keys = {key for row in rows for key, _ in row["extra"]}
    assert {"voter_status_desc", "dist_1_desc", "super_court_abbrv"} <= keys
    assert not keys & {"ssn", "drivers_lic", "race_code", "ncid"}
    assert {r["race"] for r in rows} <= set(schema.RACE_VALUES) and any(r["race"] == "white" for r in rows)
    assert all(r["phone"] is None or (len(r["phone"]) == 10 and r["phone"].isdigit()) for r in rows)
    assert sum(r["phone"] is not None for r in rows) > 100 and dummies > 0
    assert all(r["county_registration_number"] for r in rows) and all(r["vtd"] for r in rows)
