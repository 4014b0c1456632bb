"""One test per address rule added against the labelled-corpus failures (issue 12). Each input is
written here, not taken from the corpus; the fast and full paths must agree on every one."""

from __future__ import annotations

import pytest

from voterpipe.addresses import parse, pub28, repairs, repeats


def parts(raw: str) -> str:
    result = parse.normalise_line(raw)
    assert parse.normalise_line(raw, fast=False) == result
    return "|".join(result[:7])


@pytest.mark.parametrize("raw,expected", [
    ("N79W5406 BYWATER LN", "N79W5406||BYWATER|LN|||"),
    ("W156 N9762 PILGRIM RD", "W156N9762||PILGRIM|RD|||"),
    ("S12W300 OAK CT", "S12W300||OAK|CT|||"),
])
def test_wisconsin_grid_numbers_are_house_numbers(raw, expected):
    assert parts(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("ONE S DEARBORN ST", "1|S|DEARBORN|ST|||"),
    ("Six Concourse Parkway Suite 2500", "6||CONCOURSE|PKWY||STE|2500"),
    ("TWENTY MAIN ST", "20||MAIN|ST|||"),
])
def test_number_words_become_digits(raw, expected):
    assert parts(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("A1075 MAIN ST", "A1075||MAIN|ST|||"),
    ("123A MAIN ST", "123A||MAIN|ST|||"),
    ("8938-40 MAIN ST", "8938-40||MAIN|ST|||"),
])
def test_letter_and_hyphen_numbers(raw, expected):
    assert parts(raw) == expected


def test_a_trailing_hyphen_is_not_part_of_the_number():
    assert parse.standardize_house_number("439", "B-") == "439B"
    assert parse.standardize_house_number("12-") == "12"


def test_a_word_or_a_directional_letter_is_still_no_house_number():
    assert not parse.is_house_number("MAIN")
    assert not parse.is_house_number("ST")  # ST ANDREWS DR: the number is missing
    for letter in "NSEW":
        assert not parse.is_house_number(letter)
    assert parts("HOMELESS") == "||||||"
    assert parts("N MAIN ST") == "||||||"
    assert parts("ST ANDREWS DR") == "||||||"


@pytest.mark.parametrize("raw", ["O NEILL ST", "D ANGELO DR", "L ENFANT PLZ", "I 95 HWY", "U S HWY 1"])
def test_a_letter_that_begins_the_street_of_a_numberless_line_is_no_house_number(raw):
    assert parse.normalise_line(raw)[8] == "unparseable"
    assert parse.normalise_line(raw, fast=False)[8] == "unparseable"


@pytest.mark.parametrize("raw,expected", [
    ("B ELM STREET", "B||ELM|ST|||"),
    ("C-D ELM ROAD APT 2", "C-D||ELM|RD||APT|2"),
    ("K OAK AVENUE", "K||OAK|AVE|||"),
])
def test_lettered_house_numbers(raw, expected):
    # Pub 28 Appendix E codes alphabetic primary numbers (and ranges of them) in ZIP+4 records.
    assert parts(raw) == expected


def test_an_address_number_prefix_is_part_of_the_number():
    for number, expected in (("12", "MILE12"), ("B", "MILEB")):
        assert parse.standardize_tagged({"AddressNumberPrefix": "MILE", "AddressNumber": number,
                                         "StreetName": "PINE", "StreetNamePostType": "RD"},
                                        "Street Address", False)[:4] == (expected, "", "PINE", "RD")
    # A number sign before the number is not part of it.
    assert parts("# 12 MAIN ST") == "12||MAIN|ST|||"
    # A prefix does not make a word a number.
    assert parse.standardize_tagged({"AddressNumberPrefix": "MILE", "AddressNumber": "ST",
                                     "StreetName": "PINE", "StreetNamePostType": "RD"},
                                    "Street Address", False)[8] == "unparseable"


@pytest.mark.parametrize("raw,expected", [
    ("410 PIEDMONT AVE # APT 2", "410||PIEDMONT|AVE||APT|2"),
    ("12 OAK ST #LOT 9", "12||OAK|ST||LOT|9"),
    ("12 OAK ST # STE 4B", "12||OAK|ST||STE|4B"),
])
def test_hash_before_a_designator_keeps_the_unit(raw, expected):
    assert parts(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("123 US HIGHWAY 50 E", "123||US HIGHWAY 50||E||"),
    ("123 COUNTY ROAD 12 N", "123||COUNTY ROAD 12||N||"),
    ("123 STATE ROUTE 9 W", "123||STATE ROUTE 9||W||"),
    ("379 FM 2972 WEST", "379||FM 2972||W||"),
])
def test_highway_forms_keep_their_post_directional(raw, expected):
    assert parts(raw) == expected


def test_a_directional_after_a_route_number_is_the_post_directional():
    assert pub28.standardize_street_parts("", "FM 2972 WEST", "", "") == ("", "FM 2972", "", "W")
    # Not after a word, and not when the street has a type: WEST is then part of the name.
    assert pub28.standardize_street_parts("", "OAK WEST", "", "") == ("", "OAK WEST", "", "")


def test_a_number_after_a_qualified_highway_is_the_route_number():
    assert parts("7355 AL HIGHWAY 157") == "7355||AL HIGHWAY 157||||"
    assert parts("10 US HWY 1") == "10||US HIGHWAY 1||||"
    # A named highway keeps a designator-less unit: DIXIE is a name, not a jurisdiction.
    assert parts("517 S DIXIE HWY 3") == "517|S|DIXIE|HWY||#|3"


def test_crt_is_court_and_suite_is_ste():
    assert parts("123 OAK CRT") == "123||OAK|CT|||"
    assert parts("123 MAIN ST SUITE 4") == "123||MAIN|ST||STE|4"
    assert pub28.standardize_unit("SUITE", "") == ("STE", "")


def test_multi_word_names_take_the_suffix_abbreviation():
    assert parts("123 PINE RIDGE PARKWAY") == "123||PINE RIDGE|PKWY|||"
    assert parts("123 RIDGE PARKWAY") == "123||RIDGE|PKWY|||"


def test_ordinal_streets_keep_their_type_and_directional():
    assert parts("198 E 161st St") == "198|E|161ST|ST|||"
    assert parts("1600 NE 4TH") == "1600|NE|4TH||||"
    assert parts("20 SW 12TH") == "20|SW|12TH||||"


@pytest.mark.parametrize("raw,expected", [
    ("343 PARK AVE 2 EAST", "343||PARK|AVE||#|2EAST"),
    ("12 MAIN ST REAR", "12||MAIN|ST||REAR|"),
    ("12 MAIN ST FRNT", "12||MAIN|ST||FRNT|"),
    ("12 MAIN ST LOBBY", "12||MAIN|ST||LBBY|"),
])
def test_units_without_a_designator(raw, expected):
    assert parts(raw) == expected


def test_a_post_modifier_stays_with_the_name():
    assert parts("1821 AVON ST EXT STE 200") == "1821||AVON EXT|ST||STE|200"


def test_several_unit_levels_keep_the_order_written():
    assert parts("180 WATER ST, 14TH FLOOR, ROOM 1418") == "180||WATER|ST||FL|14TH RM 1418"
    assert parts("12 MAIN ST BLDG B # 670") == "12||MAIN|ST||BLDG|B 670"
    assert parts("12 MAIN ST BLDG 2 APT 4") == "12||MAIN|ST||BLDG|2 APT 4"
    # The same designator twice names two dwellings: still ambiguous, the first one kept.
    assert parse.normalise_line("12 MAIN ST APT 1 APT 2")[5:7] == ("APT", "1")
    assert parse.normalise_line("12 MAIN ST APT 1 APT 2")[8] == "ambiguous"


def test_unit_levels_pair_designators_and_ids():
    pairs = [("OccupancyIdentifier", "14TH"), ("OccupancyType", "FLOOR"),
             ("OccupancyType", "ROOM"), ("OccupancyIdentifier", "1418")]
    assert repeats.unit_levels(pairs) == [["FLOOR", "14TH"], ["ROOM", "1418"]]
    assert repeats.unit_levels([("OccupancyIdentifier", "#"), ("OccupancyType", "APT"),
                                ("OccupancyIdentifier", "2")]) == [["APT", "2"]]


def test_only_the_last_type_word_is_the_suffix():
    assert parts("5191 RIVER RD LIBERTY GROVE RD") == "5191||RIVER RD LIBERTY GROVE|RD|||"


def test_a_box_without_a_number_after_a_house_number_is_a_street_name():
    assert parts("16510 STRONG BOX") == "16510||STRONG BOX||||"
    assert parse.normalise_line("PO BOX 5")[8] == "po_box"  # a box with its number stays a box


def test_number_name_suffix_lines_read_as_buildings_are_streets():
    assert parts("1317 LINDBERGH PLAZA CENTER") == "1317||LINDBERGH PLAZA|CTR|||"
    assert repairs.number_name_suffix("1317 LINDBERGH AND PLAZA CENTER") is None
    assert repairs.number_name_suffix("LINDBERGH PLAZA CENTER") is None


def test_house_numbers_hold_digits_after_at_most_two_letters():
    for number in ("123", "123A", "8938-40", "A1075", "N79W5406", "W206NW16282", "B", "G-J"):
        assert parse.is_house_number(number), number
    for number in ("APT4", "MAIN", "AB", "N", "G-", "GH-J", ""):
        assert not parse.is_house_number(number), number


def test_a_type_of_several_words_keeps_one_suffix():
    assert parts("5075 AVALON RIDGE PARKWAY") == "5075||AVALON RIDGE|PKWY|||"
    assert pub28.standardize_street_parts("", "AVALON", "RIDGE PARKWAY", "") == ("", "AVALON RIDGE", "PKWY", "")
    # A type that is not a suffix at its end is left as written.
    assert pub28.standardize_street_parts("", "MAIN", "FOO BAR", "") == ("", "MAIN", "FOO BAR", "")


def test_a_directional_between_two_type_words_stays_the_post_directional():
    assert parts("11408 OTTER CREEK SOUTH RD") == "11408||OTTER CREEK|RD|S||"
    assert parts("6040 E PLEASANT RUN PARKWAY SOUTH DR") == "6040|E|PLEASANT RUN PARKWAY|DR|S||"


def test_a_one_letter_number_suffix_written_apart():
    assert parts("1521 J. S. Indiana Ave.") == "1521J|S|INDIANA|AVE|||"
    assert parts("123 A N MAIN ST") == "123A|N|MAIN|ST|||"
    assert parts("123 E N ST") == "123|E|N|ST|||"  # E is the pre-directional, N the street
    assert parts("4969 U S 401 HWY S") == "4969||US 401|HWY|S||"  # U S is US


def test_no_and_so_are_north_and_south_only_where_a_directional_stands():
    assert parts("7509 13TH AVE NO") == "7509||13TH|AVE|N||"
    assert parts("612 A SO LAKE ST") == "612A|S|LAKE|ST|||"
    assert parts("123 NO NAME RD") == "123||NO NAME|RD|||"


def test_designator_words_in_a_row_are_a_level_each():
    assert parts("22 READE ST 2ND FLOOR CONFERENCE ROOM") == "22||READE|ST||FL|2ND CONFERENCE RM"


def test_the_rules_version_carries_the_street_rules_version():
    assert parse.RULES_VERSION.split(".")[1] == str(pub28.STREET_RULES_VERSION)


def test_a_number_sign_after_a_route_word_introduces_the_route_number():
    assert parts("3904 ROUTE # A") == "3904||ROUTE A||||"
    assert parts("123 HWY #54") == "123||HIGHWAY 54||||"
    assert parts("123 COUNTY ROAD #12") == "123||COUNTY ROAD 12||||"
    # After a named highway, or after the route number, the '#' is a unit.
    assert parts("17071 W DIXIE HWY # 312") == "17071|W|DIXIE|HWY||#|312"
    assert parts("123  HIGHWAY 54   #3") == "123||HIGHWAY 54|||#|3"
    assert pub28.standardize_street_parts("", "HWY # 54", "", "") == ("", "HIGHWAY 54", "", "")


def test_a_pre_directional_that_is_no_directional_is_part_of_the_name():
    assert pub28.standardize_street_parts("AVE", "OF SCIENCE", "", "") == ("", "AVE OF SCIENCE", "", "")
    assert pub28.standardize_street_parts("SO", "LAKE", "ST", "") == ("S", "LAKE", "ST", "")


def test_a_numeric_type_is_the_end_of_the_name():
    assert pub28.standardize_street_parts("N", "STATE ROAD", "7", "") == ("N", "STATE ROAD 7", "", "")
    assert parts("460 N STATE ROAD 7 SUITE 100") == "460|N|STATE ROAD 7|||STE|100"


def test_a_fraction_read_as_a_directional_ends_the_house_number():
    assert parts("409 1/2  2ND AVE   #1D") == "409 1/2||2ND|AVE||#|1D"
    assert parts("123 1/2 MAIN ST") == "123 1/2||MAIN|ST|||"
