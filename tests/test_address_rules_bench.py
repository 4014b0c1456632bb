"""The accuracy benchmark's reading of labelled addresses (bench/bench_address_accuracy.py)."""

from __future__ import annotations

from bench import bench_address_accuracy as accuracy

XML = """<AddressCollection>
  <AddressString><AddressNumber>12</AddressNumber> <StreetNamePreDirectional>North</StreetNamePreDirectional> <StreetName>Oak</StreetName> <StreetNamePostType>Avenue,</StreetNamePostType> <OccupancyIdentifier>2nd</OccupancyIdentifier> <OccupancyType>Floor,</OccupancyType> <OccupancyType>Room</OccupancyType> <OccupancyIdentifier>5</OccupancyIdentifier> <PlaceName>Springfield,</PlaceName> <StateName>IL</StateName></AddressString>
  <AddressString><Recipient>Acme</Recipient> <AddressNumber>1</AddressNumber> <StreetName>Main</StreetName></AddressString>
  <AddressString><PlaceName>Springfield</PlaceName> <AddressNumber>1</AddressNumber> <StreetName>Main</StreetName></AddressString>
  <AddressString><AddressNumber>5</AddressNumber> <StreetName>River</StreetName> <StreetNamePostType>Rd</StreetNamePostType> <StreetName>Liberty</StreetName> <StreetNamePostType>Rd</StreetNamePostType></AddressString>
</AddressCollection>
"""


def test_usable_lines_and_their_truth(tmp_path):
    path = tmp_path / "labeled.xml"
    path.write_text(XML)
    addresses, counts = accuracy.load_addresses([path])
    assert counts == {"labelled": 4, "usable": 2, "unique_usable": 2, "unique_usable_labels_fit_pub28": 2}
    (line, truth, fits), (line2, truth2, _) = addresses
    assert line == "12 North Oak Avenue, 2nd Floor, Room 5"  # place and state dropped
    assert truth == ("12", "N", "OAK", "AVE", "", "FL", "2ND RM 5") and fits
    assert truth2 == ("5", "", "RIVER RD LIBERTY", "RD", "", "", "")


def test_scores_count_components_and_exact_matches(tmp_path):
    addresses = [("1 MAIN ST", ("1", "", "MAIN", "ST", "", "", ""), True),
                 ("2 OAK AVE", ("2", "", "OAK", "AVE", "", "APT", "9"), True)]
    scores, failures = accuracy.score(addresses, accuracy.ours_components)
    assert scores["exact"] == 0.5 and scores["street_name"] == 1.0 and scores["unit_type"] == 0.5
    assert [line for line, _, _ in failures] == ["2 OAK AVE"]


def test_labels_out_of_pub28_order_or_tables_do_not_fit():
    good = [("AddressNumber", "12"), ("StreetName", "Oak"), ("StreetNamePostType", "Ave")]
    assert accuracy.labels_fit_pub28(good)
    assert not accuracy.labels_fit_pub28([good[0], ("StreetNamePostDirectional", "N"), *good[1:]])
    assert not accuracy.labels_fit_pub28([*good[:2], ("StreetNamePostType", "Lawn")])
    assert not accuracy.labels_fit_pub28([*good, ("OccupancyType", "Client"), ("OccupancyIdentifier", "9")])


def test_labels_are_read_where_they_stand():
    slip = [("AddressNumber", "303"), ("StreetName", "Peachtree"), ("StreetNamePostType", "St.,"),
            ("StreetNamePreDirectional", "NE")]
    assert accuracy.plain_components(slip) == ("303", "", "PEACHTREE", "ST", "NE", "", "")
