"""Address normalisation: hand-written Pub 28 cases, pieces, the parse cache, the Luigi task."""

from __future__ import annotations

import json
import os
import time
from datetime import date

import luigi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import schema, storage
from voterpipe.addresses import cache as cache_module
from voterpipe.addresses import normalise, parse
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.pub28 import standardize_street_parts, standardize_unit

# input -> "house|pre|name|type|post|unit_type|unit_number", status
LINE_CASES = [
    # plain NC shapes and whitespace
    ("123 MAIN ST", "123||MAIN|ST|||", "ok"),
    ("123  MAIN ST", "123||MAIN|ST|||", "ok"),
    ("  123   MAIN   ST  ", "123||MAIN|ST|||", "ok"),
    ("123\tMAIN\tST", "123||MAIN|ST|||", "ok"),
    ("123  MAIN ST   #4B", "123||MAIN|ST||#|4B", "ok"),
    ("123  MAIN ST   #4", "123||MAIN|ST||#|4", "ok"),
    ("123  MAIN ST   # 4B", "123||MAIN|ST||#|4B", "ok"),
    ("123 MAIN ST #101", "123||MAIN|ST||#|101", "ok"),
    ("123  N MAIN ST   #B", "123|N|MAIN|ST||#|B", "ok"),
    ("123  MAIN ST   #04", "123||MAIN|ST||#|4", "ok"),
    ("123  MAIN ST   #4-B", "123||MAIN|ST||#|4-B", "ok"),
    ("123 MAIN ST APT #4", "123||MAIN|ST||APT|4", "ok"),
    ("123 MAIN ST UNIT #7", "123||MAIN|ST||UNIT|7", "ok"),
    ("123  MAIN #RD", "123||MAIN|RD|||", "ok"),
    ("123  OAK #DR", "123||OAK|DR|||", "ok"),
    ("123  MAIN ST   #RD", "123||MAIN|ST||#|RD", "ok"),
    # mixed case and punctuation
    ("123 main st", "123||MAIN|ST|||", "ok"),
    ("123 Main Street", "123||MAIN|ST|||", "ok"),
    ("123 N. Main St.", "123|N|MAIN|ST|||", "ok"),
    ("123 n main st apt 4", "123|N|MAIN|ST||APT|4", "ok"),
    ("123 Main St, Apt 4", "123||MAIN|ST||APT|4", "ok"),
    ("123 O'Neal Rd", "123||ONEAL|RD|||", "ok"),
    ("123 MAIN ST.", "123||MAIN|ST|||", "ok"),
    # Pub 28 C1 suffixes
    ("123 MAIN STREET", "123||MAIN|ST|||", "ok"),
    ("123 OAK AVENUE", "123||OAK|AVE|||", "ok"),
    ("123 OAK AV", "123||OAK|AVE|||", "ok"),
    ("123 OAK ROAD", "123||OAK|RD|||", "ok"),
    ("123 OAK DRIVE", "123||OAK|DR|||", "ok"),
    ("123 OAK LANE", "123||OAK|LN|||", "ok"),
    ("123 OAK COURT", "123||OAK|CT|||", "ok"),
    ("123 OAK BOULEVARD", "123||OAK|BLVD|||", "ok"),
    ("123 OAK PLACE", "123||OAK|PL|||", "ok"),
    ("123 OAK CIRCLE", "123||OAK|CIR|||", "ok"),
    ("123 OAK TRAIL", "123||OAK|TRL|||", "ok"),
    ("123 OAK PARKWAY", "123||OAK|PKWY|||", "ok"),
    ("123 OAK TERRACE", "123||OAK|TER|||", "ok"),
    ("123 OAK HIGHWAY", "123||OAK|HWY|||", "ok"),
    ("123 OAK EXPRESSWAY", "123||OAK|EXPY|||", "ok"),
    ("123 OAK FREEWAY", "123||OAK|FWY|||", "ok"),
    ("123 OAK SQUARE", "123||OAK|SQ|||", "ok"),
    ("123 OAK CROSSING", "123||OAK|XING|||", "ok"),
    ("123 OAK PLAZA", "123||OAK|PLZ|||", "ok"),
    ("123 OAK POINT", "123||OAK|PT|||", "ok"),
    ("123 OAK RIDGE", "123||OAK|RDG|||", "ok"),
    ("123 OAK HOLLOW", "123||OAK|HOLW|||", "ok"),
    ("123 OAK CREEK", "123||OAK|CRK|||", "ok"),
    ("123 OAK HEIGHTS", "123||OAK|HTS|||", "ok"),
    ("123 OAK LANDING", "123||OAK|LNDG|||", "ok"),
    ("123 OAK TURNPIKE", "123||OAK|TPKE|||", "ok"),
    ("123 OAK CENTER", "123||OAK|CTR|||", "ok"),
    ("123 OAK ALLEY", "123||OAK|ALY|||", "ok"),
    ("123 OAK COVE", "123||OAK|CV|||", "ok"),
    ("123 OAK GLEN", "123||OAK|GLN|||", "ok"),
    ("123 OAK ESTATES", "123||OAK|ESTS|||", "ok"),
    ("123 OAK MEADOWS", "123||OAK|MDWS|||", "ok"),
    ("123 OAK TRACE", "123||OAK|TRCE|||", "ok"),
    ("123 OAK LOOP", "123||OAK|LOOP|||", "ok"),
    ("123 OAK RUN", "123||OAK|RUN|||", "ok"),
    ("123 OAK WAY", "123||OAK|WAY|||", "ok"),
    ("123 OAK PATH", "123||OAK|PATH|||", "ok"),
    ("123 OAK BYPASS", "123||OAK|BYP|||", "ok"),
    ("123 OAK VIEW", "123||OAK|VW|||", "ok"),
    ("123 OAK VILLAGE", "123||OAK|VLG|||", "ok"),
    ("123 OAK SPRINGS", "123||OAK|SPGS|||", "ok"),
    ("123 OAK STRAVENUE", "123||OAK|STRA|||", "ok"),
    ("123 OAK BLVD", "123||OAK|BLVD|||", "ok"),
    ("123 OAK PKWY", "123||OAK|PKWY|||", "ok"),
    # street-type words inside names
    ("123 PARK AVE", "123||PARK|AVE|||", "ok"),
    ("123 MILL ST", "123||MILL|ST|||", "ok"),
    ("123 SPRING HILL RD", "123||SPRING HILL|RD|||", "ok"),
    ("123 LAKE SHORE DR", "123||LAKE SHORE|DR|||", "ok"),
    ("123 FOREST RIDGE DR", "123||FOREST RIDGE|DR|||", "ok"),
    ("123 CHURCH ST", "123||CHURCH|ST|||", "ok"),
    ("123 RIVER RD", "123||RIVER|RD|||", "ok"),
    ("123 MAPLE HOLLOW CT", "123||MAPLE HOLLOW|CT|||", "ok"),
    # directionals
    ("123 N MAIN ST", "123|N|MAIN|ST|||", "ok"),
    ("123 NORTH MAIN ST", "123|N|MAIN|ST|||", "ok"),
    ("123 South Main Street", "123|S|MAIN|ST|||", "ok"),
    ("123 E MAIN ST", "123|E|MAIN|ST|||", "ok"),
    ("123 WEST MAIN ST", "123|W|MAIN|ST|||", "ok"),
    ("123 NE MAIN ST", "123|NE|MAIN|ST|||", "ok"),
    ("123 NORTHEAST MAIN ST", "123|NE|MAIN|ST|||", "ok"),
    ("123 SW MAIN ST", "123|SW|MAIN|ST|||", "ok"),
    ("123 MAIN ST N", "123||MAIN|ST|N||", "ok"),
    ("123 MAIN ST NORTH", "123||MAIN|ST|N||", "ok"),
    ("123 MAIN ST SE", "123||MAIN|ST|SE||", "ok"),
    ("123 N MAIN ST SE", "123|N|MAIN|ST|SE||", "ok"),
    ("123 PARK AVE N", "123||PARK|AVE|N||", "ok"),
    ("123 W CHURCH ST STE 100", "123|W|CHURCH|ST||STE|100", "ok"),
    # directionals that are street names
    ("123 N ST", "123||N|ST|||", "ok"),
    ("123 S ST", "123||S|ST|||", "ok"),
    ("123 E N ST", "123|E|N|ST|||", "ok"),
    ("123 NORTH ST", "123||NORTH|ST|||", "ok"),
    ("123 N ST APT 2", "123||N|ST||APT|2", "ok"),
    ("123  N ST   #2", "123||N|ST||#|2", "ok"),
    # ordinal and numbered streets
    ("123 1ST ST", "123||1ST|ST|||", "ok"),
    ("123 1st Ave", "123||1ST|AVE|||", "ok"),
    ("123 FIRST ST", "123||1ST|ST|||", "ok"),
    ("123 SECOND AVE", "123||2ND|AVE|||", "ok"),
    ("123 THIRD ST", "123||3RD|ST|||", "ok"),
    ("123 FOURTH ST", "123||4TH|ST|||", "ok"),
    ("123 TENTH ST", "123||10TH|ST|||", "ok"),
    ("123 ELEVENTH ST", "123||11TH|ST|||", "ok"),
    ("123 TWELFTH ST", "123||12TH|ST|||", "ok"),
    ("123 TWENTIETH ST", "123||20TH|ST|||", "ok"),
    ("123 TWENTY FIRST ST", "123||21ST|ST|||", "ok"),
    ("123 TWENTY-SECOND ST", "123||22ND|ST|||", "ok"),
    ("123 21ST ST", "123||21ST|ST|||", "ok"),
    ("123 22ND AVE", "123||22ND|AVE|||", "ok"),
    ("123 23RD AVE", "123||23RD|AVE|||", "ok"),
    ("123 111TH ST", "123||111TH|ST|||", "ok"),
    ("123 N 5TH ST", "123|N|5TH|ST|||", "ok"),
    ("123 W FIFTH ST", "123|W|5TH|ST|||", "ok"),
    ("123 5TH AVE S", "123||5TH|AVE|S||", "ok"),
    # highways and routes
    ("123 HIGHWAY 54", "123||HIGHWAY 54||||", "ok"),
    ("123 HWY 54", "123||HIGHWAY 54||||", "ok"),
    ("123 Hwy 54", "123||HIGHWAY 54||||", "ok"),
    ("123 HIGHWAY 54 APT 3", "123||HIGHWAY 54|||APT|3", "ok"),
    ("123  HIGHWAY 54   #3", "123||HIGHWAY 54|||#|3", "ok"),
    ("123 US HWY 1", "123||US HIGHWAY 1||||", "ok"),
    ("123 US HIGHWAY 1", "123||US HIGHWAY 1||||", "ok"),
    ("123 OLD US 1 HWY", "123||OLD US 1|HWY|||", "ok"),
    ("123 OLD US 1 HIGHWAY", "123||OLD US 1|HWY|||", "ok"),
    ("123 MARTIN LUTHER KING JR BLVD", "123||MARTIN LUTHER KING JR|BLVD|||", "ok"),
    ("123 MARTIN LUTHER KING, JR. BLVD", "123||MARTIN LUTHER KING JR|BLVD|||", "ok"),
    ("123 COUNTY ROAD 12", "123||COUNTY ROAD 12||||", "ok"),
    ("123 CO RD 12", "123||COUNTY ROAD 12||||", "ok"),
    # house numbers: leading zeros, fractions, letters
    ("0123 MAIN ST", "123||MAIN|ST|||", "ok"),
    ("00123 MAIN ST", "123||MAIN|ST|||", "ok"),
    ("123 1/2 MAIN ST", "123 1/2||MAIN|ST|||", "ok"),
    ("123 1/2  MAIN ST   #2", "123 1/2||MAIN|ST||#|2", "ok"),
    ("123A MAIN ST", "123A||MAIN|ST|||", "ok"),
    ("7 MAIN ST", "7||MAIN|ST|||", "ok"),
    ("123456 MAIN ST", "123456||MAIN|ST|||", "ok"),
    # C2 secondary units
    ("123 MAIN ST APT 4", "123||MAIN|ST||APT|4", "ok"),
    ("123 MAIN ST APARTMENT 4", "123||MAIN|ST||APT|4", "ok"),
    ("123 MAIN ST APT 4B", "123||MAIN|ST||APT|4B", "ok"),
    ("123 MAIN ST APT 04", "123||MAIN|ST||APT|4", "ok"),
    ("123 MAIN ST UNIT 4B", "123||MAIN|ST||UNIT|4B", "ok"),
    ("123 MAIN ST SUITE 200", "123||MAIN|ST||STE|200", "ok"),
    ("123 MAIN ST STE 200", "123||MAIN|ST||STE|200", "ok"),
    ("123 MAIN ST LOT 7", "123||MAIN|ST||LOT|7", "ok"),
    ("123 MAIN ST TRLR 7", "123||MAIN|ST||TRLR|7", "ok"),
    ("123 MAIN ST ROOM 12", "123||MAIN|ST||RM|12", "ok"),
    ("123 MAIN ST BLDG 2", "123||MAIN|ST||BLDG|2", "ok"),
    ("123 MAIN ST FLOOR 3", "123||MAIN|ST||FL|3", "ok"),
    ("123 MAIN ST BLDG 2 APT 4", "123||MAIN|ST||BLDG|2 APT 4", "ok"),
    ("123 MAIN ST REAR", "123||MAIN|ST||REAR|", "ok"),
    ("123 MAIN ST BSMT", "123||MAIN|ST||BSMT|", "ok"),
    ("123 MAIN ST # 4B", "123||MAIN|ST||#|4B", "ok"),
    ("123 N MAIN ST APT 4", "123|N|MAIN|ST||APT|4", "ok"),
    # PO boxes
    ("PO BOX 123", "123||PO BOX||||", "po_box"),
    ("P.O. BOX 123", "123||PO BOX||||", "po_box"),
    ("P O BOX 123", "123||PO BOX||||", "po_box"),
    ("po box 123", "123||PO BOX||||", "po_box"),
    ("POST OFFICE BOX 123", "123||PO BOX||||", "po_box"),
    ("PO BOX 0123", "123||PO BOX||||", "po_box"),
    # rural routes
    ("RR 2 BOX 15", "15||RR 2||||", "rural_route"),
    ("RURAL ROUTE 2 BOX 15", "15||RR 2||||", "rural_route"),
    ("RT 2 BOX 15", "15||RR 2||||", "rural_route"),
    ("HC 1 BOX 5", "5||HC 1||||", "rural_route"),
    ("rr 2 box 15", "15||RR 2||||", "rural_route"),
    # missing and unparseable
    ("", "||||||", "missing"),
    ("   ", "||||||", "missing"),
    (None, "||||||", "missing"),
    ("REMOVED", "||||||", "missing"),
    ("removed", "||||||", "missing"),
    ("CONFIDENTIAL", "||||||", "missing"),
    ("MAIN ST & OAK AVE", "||||||", "unparseable"),
    ("MAIN ST", "||||||", "unparseable"),
    ("HOMELESS", "||||||", "unparseable"),
    ("123", "||||||", "unparseable"),
]


def _parts(result: tuple) -> str:
    return "|".join(result[:7])


@pytest.mark.parametrize("raw,expected,status", LINE_CASES)
def test_one_line_cases(raw, expected, status):
    result = parse.normalise_line(raw)
    assert (_parts(result), result[8]) == (expected, status)
    assert parse.normalise_line(raw, fast=False) == result


def test_case_table_is_large():
    assert len(LINE_CASES) >= 150


def test_standardized_line_joins_the_parts():
    assert parse.normalise_line("123  n main street   #4b")[7] == "123 N MAIN ST # 4B"
    assert parse.normalise_line("rr 2 box 15")[7] == "RR 2 BOX 15"
    assert parse.normalise_line("p.o. box 9")[7] == "PO BOX 9"


def test_repeated_label_falls_back_to_first_run_and_is_ambiguous():
    # usaddress tags two address numbers here and raises RepeatedLabelError.
    raw = "123 MAIN ST 456 OAK AVE APT 1 APT 2"
    import usaddress

    with pytest.raises(usaddress.RepeatedLabelError):
        usaddress.tag(parse.preprocess_line(raw)[0])
    result = parse.normalise_line(raw)
    assert result[8] == "ambiguous"
    assert result[0] == "123"
    assert result[5:7] == ("APT", "1")
    assert parse.normalise_line("123 MAIN ST APT 1 APT 2")[2:9] == ("MAIN", "ST", "", "APT", "1",
                                                                    "123 MAIN ST APT 1", "ambiguous")


STREET_CASES = [
    (("", "FIRST", "STREET", ""), ("", "1ST", "ST", "")),
    (("", "1st", "st", ""), ("", "1ST", "ST", "")),
    (("north", "main", "avenue", "southwest"), ("N", "MAIN", "AVE", "SW")),
    (("", "HWY 54", "", ""), ("", "HIGHWAY 54", "", "")),
    (("", "Highway 54", "", ""), ("", "HIGHWAY 54", "", "")),
    (("", "54", "HWY", ""), ("", "HIGHWAY 54", "", "")),
    (("N", "", "ST", ""), ("", "N", "ST", "")),
    (("", "N", "ST", ""), ("", "N", "ST", "")),
    (("", "OLD US 1", "HWY", ""), ("", "OLD US 1", "HWY", "")),
    (("", "old u.s. 1 hwy", "", ""), ("", "OLD US 1", "HWY", "")),
    (("", "TWENTY-FIRST", "ST", ""), ("", "21ST", "ST", "")),
    (("", "21th", "st", ""), ("", "21ST", "ST", "")),
    (("", "NORTH MAIN", "ST", ""), ("N", "MAIN", "ST", "")),
    (("", "  main  ", " st ", ""), ("", "MAIN", "ST", "")),
    (("", "ST JAMES", "PL", ""), ("", "ST JAMES", "PL", "")),
    ((None, "MAIN", None, None), ("", "MAIN", "", "")),
    (("", "STATE HWY 54", "", ""), ("", "STATE HIGHWAY 54", "", "")),
    (("", "CR 12", "", ""), ("", "COUNTY ROAD 12", "", "")),
    (("", "RTE 9", "", ""), ("", "ROUTE 9", "", "")),
    (("", "U S 1", "HWY", ""), ("", "US 1", "HWY", "")),
    (("", "MAIN", "FOOBAR", ""), ("", "MAIN", "FOOBAR", "")),
]


@pytest.mark.parametrize("parts,expected", STREET_CASES)
def test_standardize_street_parts(parts, expected):
    assert standardize_street_parts(*parts) == expected


def test_one_line_and_pieces_agree_on_street_parts():
    """The geocoder standardises TIGER pieces; the normaliser parses lines: they must meet."""
    for line, pieces in [
        ("123 HWY 54", ("", "HWY 54", "", "")),
        ("123 HIGHWAY 54", ("", "54", "HWY", "")),
        ("123 N ST", ("", "N", "ST", "")),
        ("123 OLD US 1 HWY", ("", "OLD US 1", "HWY", "")),
        ("123 FIRST ST", ("", "1st", "St", "")),
        ("123 MARTIN LUTHER KING JR BLVD", ("", "Martin Luther King Jr", "Blvd", "")),
    ]:
        assert parse.normalise_line(line)[1:5] == standardize_street_parts(*pieces)


def test_standardize_unit():
    assert standardize_unit("Apartment", "04") == ("APT", "4")
    assert standardize_unit("", "#4B") == ("#", "4B")
    assert standardize_unit("", "REAR") == ("REAR", "")
    assert standardize_unit("suite", "200") == ("STE", "200")
    assert standardize_unit("", "") == ("", "")


PIECE_CASES = [
    # (number, number suffix, pre, name, type, post, unit) -> parts, status
    (("123", None, None, "MAIN", "ST", None, None), "123||MAIN|ST|||", "ok"),
    (("123", "", "North", "Main", "Street", "", "APT 4B"), "123|N|MAIN|ST||APT|4B", "ok"),
    (("0123", None, None, "FIRST", "AVE", None, None), "123||1ST|AVE|||", "ok"),
    (("123", "1/2", None, "MAIN", "ST", None, None), "123 1/2||MAIN|ST|||", "ok"),
    (("123", "A", None, "MAIN", "ST", None, None), "123A||MAIN|ST|||", "ok"),
    (("123", None, None, "MAIN", "ST", None, "#4B"), "123||MAIN|ST||#|4B", "ok"),
    (("123", None, None, "MAIN", "ST", None, "4B"), "123||MAIN|ST||#|4B", "ok"),
    (("123", None, None, "MAIN", "ST", None, "Lot 7"), "123||MAIN|ST||LOT|7", "ok"),
    (("123", None, None, "54", "HWY", None, None), "123||HIGHWAY 54||||", "ok"),
    (("123", None, None, "N", "ST", None, None), "123||N|ST|||", "ok"),
    ((None, None, None, None, None, None, None), "||||||", "missing"),
    (("", "", "", "", "", "", ""), "||||||", "missing"),
    ((None, None, None, "MAIN", "ST", None, None), "||||||", "unparseable"),
]


@pytest.mark.parametrize("pieces,expected,status", PIECE_CASES)
def test_piece_cases(pieces, expected, status):
    result = parse.normalise_pieces(*pieces)
    assert (_parts(result), result[8]) == (expected, status)


def test_pieces_and_line_share_keys():
    line = normalise.normalise_cache_key(normalise.SEP.join(["L", "123  N MAIN ST   #4B", "27000"]))
    pieces = normalise.normalise_cache_key(normalise.SEP.join(
        ["P", "123", "", "NORTH", "Main", "Street", "", "APT 4B", "27000"]))
    assert line[9] == pieces[9] and line[10] == pieces[10]  # APT 4B and #4B: one dwelling


# --- the table-level normaliser and its cache ---------------------------------------------------

def _voters(lines: list[str | None], zips: list[str] | None = None) -> pa.Table:
    n = len(lines)
    return pa.table({
        "voter_id": [f"V{i}" for i in range(n)],
        "res_address_line": lines,
        "res_city": ["Raleigh"] * n,
        "res_zip5": zips or ["27601"] * n,
    })


LINES = ["123  MAIN ST   #4B", "123 Main Street Apt 4b", None, "REMOVED", "", "PO BOX 5",
         "MAIN ST & OAK AVE", "123 MAIN ST", "123 MAIN ST", "0123 main st"]


def test_every_voter_gets_a_row_and_keys_follow_the_rules():
    result = normalise.normalise_addresses(_voters(LINES), "nc", cache=None, processes=1)
    va = result.voter_addresses.to_pandas()
    assert result.voter_addresses.schema == schema.VOTER_ADDRESSES
    assert result.addresses.schema == schema.ADDRESSES
    assert list(va["voter_id"]) == [f"V{i}" for i in range(10)]
    assert list(va["parse_status"]) == ["ok", "ok", "missing", "missing", "missing", "po_box",
                                        "unparseable", "ok", "ok", "ok"]
    assert va.loc[0, "address_key"] == va.loc[1, "address_key"]  # '#4B' and 'APT 4b'
    assert va.loc[7, "address_key"] == va.loc[9, "address_key"]  # leading zero
    assert va.loc[0, "building_key"] == va.loc[7, "building_key"] != va.loc[0, "address_key"]
    assert va.loc[[2, 3, 4, 6], "address_key"].isna().all()
    addresses = result.addresses.to_pandas().set_index("address_key", drop=False)
    row = addresses.loc[va.loc[0, "address_key"]]
    assert row["voter_count"] == 2 and row["city"] == "RALEIGH" and row["zip5"] == "27601"
    assert addresses.loc[va.loc[7, "address_key"], "voter_count"] == 3
    assert result.stats["voters_by_parse_status"] == {
        "ok": 5, "po_box": 1, "rural_route": 0, "ambiguous": 0, "unparseable": 1, "missing": 3}


def test_zip_is_part_of_the_key():
    result = normalise.normalise_addresses(_voters(["123 MAIN ST"] * 3, ["27601", "27602-1234", "276021234"]),
                                           "nc", processes=1)
    keys = result.voter_addresses["address_key"].to_pylist()
    assert keys[0] != keys[1] and keys[1] == keys[2]


def test_zip5_cleaning_agrees_on_clean_and_messy_columns():
    messy = pa.chunked_array([["27601", None, " 27601 ", "2760", "27602-1234", "ABCDE"]])
    assert normalise._zip5(messy).to_pylist() == ["27601", None, "27601", "", "27602", ""]
    clean = pa.chunked_array([["27601", None], ["27602"]])  # the numpy shortcut
    assert normalise._all_five_digits(clean.combine_chunks())
    assert normalise._zip5(clean).to_pylist() == ["27601", None, "27602"]


def test_piecewise_state_matches_one_line_state():
    pieces = pa.table({
        "voter_id": ["M1", "M2"], "res_house_number": ["123", "123"], "res_house_number_suffix": [None, None],
        "res_pre_dir": [None, None], "res_street_name": ["Main", "MAIN"], "res_street_type": ["Street", "ST"],
        "res_post_dir": [None, None], "res_unit": ["Apt 4B", None], "res_city": ["X", "X"],
        "res_zip5": ["27601", "27601"],
    })
    by_pieces = normalise.normalise_addresses(pieces, "mi", processes=1).voter_addresses["address_key"].to_pylist()
    by_line = normalise.normalise_addresses(_voters(["123  MAIN ST   #4B", "123 MAIN ST"]), "nc",
                                            processes=1).voter_addresses["address_key"].to_pylist()
    assert by_pieces == by_line


def test_parallel_and_serial_parsing_agree(monkeypatch):
    lines = [f"{i}  MAIN ST   #{i % 7}" for i in range(1, 400)] + ["PO BOX 1", "RR 1 BOX 2", None]
    serial = normalise.normalise_addresses(_voters(lines), "nc", processes=1)
    monkeypatch.setattr(normalise, "PARALLEL_MIN_MISSES", 10)
    monkeypatch.setattr(normalise, "BATCH_SIZE", 50)
    parallel = normalise.normalise_addresses(_voters(lines), "nc", processes=2)
    assert parallel.voter_addresses.equals(serial.voter_addresses)
    assert parallel.addresses.equals(serial.addresses)


def test_cache_reuses_results_and_parses_only_new_strings(tmp_path):
    cache = AddressCache(tmp_path, parse.RULES_VERSION)
    first = normalise.normalise_addresses(_voters(LINES), "nc", cache, processes=1)
    assert first.stats["parsed_new"] == 8 and first.stats["cache_hits"] == 0  # None == ""
    again = normalise.normalise_addresses(_voters(LINES), "nc", AddressCache(tmp_path, parse.RULES_VERSION), 1)
    assert again.stats["parsed_new"] == 0 and again.stats["cache_hits"] == 8
    assert again.voter_addresses.equals(first.voter_addresses)
    assert again.addresses.equals(first.addresses)
    more = normalise.normalise_addresses(_voters(LINES + ["9 OAK AVE"]), "nc",
                                         AddressCache(tmp_path, parse.RULES_VERSION), 1)
    assert more.stats["parsed_new"] == 1
    assert more.voter_addresses.slice(0, 10).equals(first.voter_addresses)


def test_rule_version_bump_invalidates_the_cache(tmp_path):
    normalise.normalise_addresses(_voters(LINES), "nc", AddressCache(tmp_path, "1.1"), 1)
    bumped = normalise.normalise_addresses(_voters(LINES), "nc", AddressCache(tmp_path, "1.2"), 1)
    assert bumped.stats["parsed_new"] == 8
    assert (tmp_path / "rules-1.1").is_dir() and (tmp_path / "rules-1.2").is_dir()


def test_cache_ignores_a_half_written_part_and_survives_compaction(tmp_path, monkeypatch):
    cache = AddressCache(tmp_path, "v")
    normalise.normalise_addresses(_voters(LINES), "nc", cache, 1)
    # A crash mid-write leaves only a hidden temp file, which readers must ignore.
    (cache.directory / ".part-dead.parquet.123.tmp").write_bytes(b"PAR1 truncated")
    assert len(AddressCache(tmp_path, "v")) == 8
    # Compaction interrupted after writing the merged file but before deleting the parts.
    monkeypatch.setattr(cache_module.os, "unlink", lambda path: None)
    for i in range(3):
        normalise.normalise_addresses(_voters([f"{i + 1} ELM ST"]), "nc", AddressCache(tmp_path, "v"), 1)
    AddressCache(tmp_path, "v").compact()
    monkeypatch.undo()
    reopened = AddressCache(tmp_path, "v")
    assert len(reopened) == 11  # no double counting from the leftover parts
    assert len(list(reopened.directory.glob("part-*"))) == 0  # leftovers cleaned up
    result = normalise.normalise_addresses(_voters(LINES), "nc", reopened, 1)
    assert result.stats["parsed_new"] == 0


def test_cache_reads_parquet_parts_of_earlier_versions_and_compacts_them(tmp_path):
    cache = AddressCache(tmp_path, "v")
    first = normalise.normalise_addresses(_voters(LINES), "nc", cache, 1)
    (arrow_part,) = cache.directory.glob("part-*.arrow")
    legacy = cache.directory / "part-legacy.parquet"
    pq.write_table(cache_module._read_part(arrow_part), legacy)
    arrow_part.unlink()
    again = normalise.normalise_addresses(_voters(LINES + ["9 OAK AVE"]), "nc",
                                          AddressCache(tmp_path, "v"), 1)
    assert again.stats["parsed_new"] == 1
    assert again.voter_addresses.slice(0, 10).equals(first.voter_addresses)
    AddressCache(tmp_path, "v").compact()
    assert [p.suffix for p in cache.directory.iterdir()] == [".arrow"]
    assert len(AddressCache(tmp_path, "v")) == 9


def _write_canonical(root, state: str, snapshot: str, voters: pa.Table) -> None:
    from stage_fixtures import publish_stage
    from voterpipe.tasks.imports import ImportSnapshot

    publish_stage(ImportSnapshot(state=state, snapshot=date.fromisoformat(snapshot)),
                  {"voters": voters, "history": schema.HISTORY.empty_table(),
                   "rejects": schema.REJECTS.empty_table()}, {"rows": voters.num_rows})


def test_luigi_task_writes_the_stage(data_root):
    from voterpipe.tasks.addresses import NormaliseAddresses

    # Every voter with an address parses, so the address_parse_rate quality gate passes.
    lines = [line if line != "MAIN ST & OAK AVE" else "9 OAK AVE" for line in LINES]
    _write_canonical(data_root, "nc", "2026-11-01", _voters(lines))
    task = NormaliseAddresses(state="nc", snapshot=date(2026, 11, 1))
    assert luigi.build([task], local_scheduler=True, workers=1)
    out = task.output()
    manifest = json.loads((out.path / "manifest.json").read_text())
    assert manifest["voters_by_parse_status"]["missing"] == 3
    assert manifest["rules_version"] == parse.RULES_VERSION
    links = pq.read_table(out.file("voter_addresses.parquet"))
    assert links.schema == schema.VOTER_ADDRESSES and links.num_rows == 10
    assert pq.read_table(out.file("addresses.parquet")).schema == schema.ADDRESSES
    assert any((storage.cache_dir("addresses") / f"rules-{parse.RULES_VERSION}").glob("part-*.arrow"))


def test_hash_collisions_never_merge_or_mismatch_strings(monkeypatch):
    from voterpipe.addresses import keyhash

    values = pa.array(["a", "b", "a", "c", "b"])
    codes, first = keyhash.group_strings(values)
    assert list(codes) == [0, 1, 0, 2, 1] and list(first) == [0, 1, 3]
    # Every string hashes alike: grouping and lookup must stay exact.
    monkeypatch.setattr(keyhash, "string_hashes", lambda v: np.zeros(len(v), dtype=np.int64))
    codes, first = keyhash.group_strings(values)
    assert [values[int(f)].as_py() for f in first] == ["a", "b", "c"]
    assert list(codes) == [0, 1, 0, 2, 1]
    index = keyhash.StringIndex(pa.array(["c", "a"]))
    assert list(index.positions(pa.array(["c", "a", "z"]))) == [0, -1, -1]  # 'a' is a miss, never 'c'


def test_address_key_grouping_is_exact_even_when_the_word_hash_collides(monkeypatch):
    keys = [normalise.address_keys(parse.normalise_line(f"{i} MAIN ST"), "27601")[0] for i in (1, 2, 1, 3)]
    expected = ([0, 1, 0, 2], [0, 1, 3])
    codes, first = normalise._group_address_keys(pa.array(keys))
    assert (list(codes), list(first)) == expected
    monkeypatch.setattr(normalise, "_mix_words", lambda words: np.zeros(len(words), dtype=np.uint64))
    codes, first = normalise._group_address_keys(pa.array(keys))
    assert (list(codes), list(first)) == expected
    codes, first = normalise._group_address_keys(pa.array(["abc", "ab", "abc"]))  # not fixed-width
    assert (list(codes), list(first)) == ([0, 1, 0], [0, 1])


def test_a_parsing_process_that_dies_is_reported(monkeypatch):
    parent = os.getpid()
    real = normalise.normalise_batch

    def dies_in_a_child(keys):
        if os.getpid() != parent:
            os._exit(3)
        time.sleep(0.05)  # leave batches for the child to claim
        return real(keys)

    monkeypatch.setattr(normalise, "normalise_batch", dies_in_a_child)
    monkeypatch.setattr(normalise, "PARALLEL_MIN_MISSES", 10)
    with pytest.raises(RuntimeError, match="exit code 3"):
        normalise.parse_misses([f"L\x1f{i} MAIN ST\x1f27601" for i in range(1, 200)], processes=2)


def test_rows_with_the_same_key_are_one_address_string_even_when_other_columns_differ():
    voters = pa.table({
        "voter_id": ["A", "B", "C", "D"],
        "res_address_line": ["123 MAIN ST", "123 MAIN ST", None, ""],
        "res_street_name": ["MAIN", None, "OAK", "OAK"],  # ignored where a line is given
        "res_house_number": ["123", None, "9", "9"],
        "res_zip5": ["27601"] * 4,
    })
    result = normalise.normalise_addresses(voters, "nc", processes=1)
    assert result.stats["unique_address_strings"] == 2
    keys = result.voter_addresses["address_key"].to_pylist()
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[0] != keys[2]

