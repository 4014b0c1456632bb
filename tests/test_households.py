"""Households: pure rules on ten-row frames, and the BuildHouseholds task."""

from __future__ import annotations

import json
from datetime import date

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import schema, storage
from voterpipe.households import GroupQuartersRule, assign_households, build_households, party_mix

SNAPSHOT = date(2026, 11, 1)


def _frames():
    voters = pd.DataFrame({
        "voter_id": list("abcdefghij"),
        "status": ["active"] * 8 + ["removed", "active"],
        "last_name": ["Smith", "SMITH", "JONES", "LEE", "KIM", "PARK", "DIAZ", "WU", "ROE", "POE"],
        "party": ["DEM", "DEM", "REP", "DEM", None, "UNA", "LIB", None, "DEM", "REP"],
        "birth_date": [date(1980, 12, 31), None, None, None, None, None, None, None, None, None],
        "birth_year": [1980, 1982, 1950, 2000, 1990, 1991, 1992, 1993, 1960, 1970],
        "registered_on": [date(2001, 1, 1), date(2000, 6, 1)] + [None] * 8,
    })
    links = pd.DataFrame({
        "voter_id": list("abcdefghij"),
        "address_key": ["A1", "A1", "A2", "A3", "A3", "A3", "A3", "A3", "A1", "PO"],
        "building_key": ["B1", "B1", "B1", "B3", "B3", "B3", "B3", "B3", "B1", "BPO"],
        "parse_status": ["ok"] * 9 + ["po_box"],
    })
    addresses = pd.DataFrame({"address_key": ["A1", "A2", "A3", "PO"], "unit_type": ["#", "APT", None, None],
                              "unit_number": ["1", "2", None, None]})
    geocodes = pd.DataFrame({"address_key": ["A1", "A3"], "status": ["match", "no_match"], "lon": [-78.6, None],
                             "lat": [35.7, None], "state_fips": ["37", None], "county_fips": ["183", None],
                             "tract": ["010100", None], "block_group": ["1", None], "block": ["1001", None],
                             "congressional_district": ["02", None], "state_senate_district": ["016", None],
                             "state_house_district": ["033", None]})
    return voters, links, addresses, geocodes


def _built(rule=GroupQuartersRule(min_voters=4, min_surnames=4)):
    voters, links, addresses, geocodes = _frames()
    households, members = build_households(voters, links, addresses, geocodes, SNAPSHOT, rule)
    return households.set_index("household_id"), members.set_index("voter_id")


def test_membership_excludes_po_boxes_removed_and_unusable_addresses():
    _, members = _built()
    assert members.loc["a", "household_id"] == "A1"
    assert pd.isna(members.loc["i", "household_id"])  # removed voter
    assert pd.isna(members.loc["j", "household_id"])  # PO box
    assert pd.isna(members.loc["j", "building_key"])
    voters, links, *_ = _frames()
    links.loc[links.voter_id == "b", ["address_key", "building_key", "parse_status"]] = [None, None, "missing"]
    assert pd.isna(assign_households(voters, links).set_index("voter_id").loc["b", "household_id"])


def test_size_ages_and_registration():
    households, _ = _built()
    a1 = households.loc["A1"]
    assert a1["voter_count"] == 2
    # Birth date 1980-12-31 -> 45 on 2026-11-01; birth year 1982 -> 44.
    assert (a1["min_age"], a1["max_age"], a1["median_age"]) == (44, 45, 44.5)
    assert a1["earliest_registered_on"] == date(2000, 6, 1)
    assert households.loc["A3", "voter_count"] == 5
    assert pd.isna(households.loc["A3", "earliest_registered_on"])


def test_a_household_without_a_building_has_no_building_counts():
    """A keyed address with no building_key: its building counts are null, not -2147483648
    (NaN cast to int32), and it is neither multi-unit nor group quarters."""
    voters, links, addresses, geocodes = _frames()
    links.loc[links.address_key == "A3", "building_key"] = None
    households, _ = build_households(voters, links, addresses, geocodes, SNAPSHOT,
                                     GroupQuartersRule(min_voters=4, min_surnames=4))
    a3 = households.set_index("household_id").loc["A3"]
    assert pd.isna(a3["building_units_seen"])
    assert not a3["building_multi_unit"] and not a3["likely_group_quarters"]
    table = pa.Table.from_pandas(households, preserve_index=False)
    assert table["building_units_seen"].type == pa.int32()
    assert table["building_units_seen"].null_count == 1 and pa.compute.min(table["building_units_seen"]).as_py() >= 0


def test_party_mix_and_counts():
    households, _ = _built()
    assert households.loc["A1", "party_mix"] == "single_party"
    assert households.loc["A1", "dem_count"] == 2
    a3 = households.loc["A3"]
    assert a3["party_mix"] == "mixed"
    assert (a3["dem_count"], a3["rep_count"], a3["una_count"], a3["other_party_count"]) == (1, 0, 1, 1)
    assert list(party_mix(pd.Series([0, 1, 2, 3]))) == ["unknown", "single_party", "mixed", "mixed"]


def test_party_mix_unknown_without_party_registration():
    voters, links, addresses, geocodes = _frames()
    voters["party"] = None
    households, _ = build_households(voters, links, addresses, geocodes, SNAPSHOT)
    assert set(households["party_mix"]) == {"unknown"}


def test_buildings_and_group_quarters():
    households, _ = _built()
    assert households.loc["A1", "building_units_seen"] == 2 and households.loc["A1", "building_multi_unit"]
    assert households.loc["A3", "building_units_seen"] == 0 and not households.loc["A3", "building_multi_unit"]
    assert households.loc["A3", "distinct_surnames"] == 5
    assert households.loc["A1", "distinct_surnames"] == 1  # Smith == SMITH
    assert households.loc["A3", "likely_group_quarters"]
    assert not households.loc["A1", "likely_group_quarters"]  # has units
    strict, _ = _built(GroupQuartersRule(min_voters=6, min_surnames=4))
    assert not strict.loc["A3", "likely_group_quarters"]


def test_geography_comes_from_the_household_geocode():
    households, _ = _built()
    a1 = households.loc["A1"]
    assert (a1["geocode_status"], a1["tract"], a1["block"], a1["congressional_district"]) == \
        ("match", "010100", "1001", "02")
    assert households.loc["A3", "geocode_status"] == "no_match"
    assert pd.isna(households.loc["A2", "geocode_status"])  # never geocoded


def test_output_conforms_to_schema():
    voters, links, addresses, geocodes = _frames()
    households, members = build_households(voters, links, addresses, geocodes, SNAPSHOT)
    table = schema.conform(pa.Table.from_pandas(households, preserve_index=False), schema.HOUSEHOLDS)
    assert table.num_rows == 3 and table.column("household_id").null_count == 0
    assert schema.conform(pa.Table.from_pandas(members, preserve_index=False),
                          schema.VOTER_HOUSEHOLDS).num_rows == 10


def _publish(stage: str, tables: dict[str, pa.Table]) -> None:
    from stage_fixtures import publish_stage
    from voterpipe.tasks.base import task_class

    publish_stage(task_class(stage)(state="nc", snapshot=SNAPSHOT), tables)


def test_luigi_build_households(data_root):
    pytest.importorskip("voterpipe.tasks.geocode")
    from voterpipe.tasks.addresses import NormaliseAddresses
    from voterpipe.tasks.households import BuildHouseholds

    voters, _, _, geocodes = _frames()
    voters["res_address_line"] = ["1  MAIN ST   #1", "1 MAIN ST APT 1", "1  MAIN ST   #2", "5 OAK AVE",
                                  "5 OAK AVE", "5 OAK AVE", "5 OAK AVE", "5 OAK AVE", "1 MAIN ST # 1", "PO BOX 9"]
    voters["res_zip5"] = "27601"
    _publish("canonical", {"voters": pa.Table.from_pandas(voters, preserve_index=False),
                           "history": schema.HISTORY.empty_table(), "rejects": schema.REJECTS.empty_table()})
    assert luigi.build([NormaliseAddresses(state="nc", snapshot=SNAPSHOT)], local_scheduler=True)
    links = pq.read_table(storage.stage_dir("addresses", "nc", SNAPSHOT) / "voter_addresses.parquet").to_pandas()
    first_key = links.loc[0, "address_key"]
    geocodes = geocodes.assign(address_key=[first_key, "unused"], backend="tiger")
    _publish("geocoded", {"geocodes": pa.Table.from_pandas(geocodes, preserve_index=False)})

    task = BuildHouseholds(state="nc", snapshot=SNAPSHOT)
    assert luigi.build([task], local_scheduler=True)
    households = pq.read_table(task.output().file("households.parquet"))
    assert households.schema == schema.HOUSEHOLDS
    frame = households.to_pandas().set_index("household_id")
    assert frame.loc[first_key, "voter_count"] == 2  # '#1' and 'APT 1'; the removed voter is out
    assert frame.loc[first_key, "tract"] == "010100"
    assert len(frame) == 3
    manifest = json.loads((task.output().path / "manifest.json").read_text())
    assert manifest["households"] == 3 and manifest["voters_in_households"] == 8
    members = pq.read_table(task.output().file("voter_households.parquet"))
    assert members.schema == schema.VOTER_HOUSEHOLDS and members.num_rows == 10


def test_duplicate_voter_ids_are_refused_with_a_clear_error():
    voters, links, addresses, geocodes = _frames()
    with pytest.raises(ValueError, match="voter_id is not unique"):
        build_households(pd.concat([voters, voters.head(1)]), links, addresses, geocodes, SNAPSHOT)


def test_links_in_another_order_give_the_same_households():
    voters, links, addresses, geocodes = _frames()
    aligned, aligned_members = build_households(voters, links, addresses, geocodes, SNAPSHOT)
    shuffled, shuffled_members = build_households(voters, links.iloc[::-1], addresses, geocodes, SNAPSHOT)
    pd.testing.assert_frame_equal(aligned, shuffled)
    pd.testing.assert_frame_equal(aligned_members, shuffled_members)
