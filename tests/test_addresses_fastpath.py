"""The fast tagging path must give exactly what usaddress gives, on >= 100,000 varied strings."""

from __future__ import annotations

from voterpipe.addresses import parse, samples


def test_fast_path_equals_full_path_on_100k_strings():
    """>= 100,000 distinct strings. Where the fast path declines, normalise_line runs the full path
    itself, so only the strings it accepts can differ: those are all compared with usaddress."""
    dwellings = samples.county_dwellings(60_000, seed=3)
    lines = samples.address_variants(dwellings, 110_000, seed=5, variant_share=0.5)
    lines += samples.address_variants(dwellings, 30_000, seed=6, variant_share=0.0)
    unique = list(dict.fromkeys(lines))
    assert len(unique) >= 100_000
    compared = 0
    mismatches = []
    for raw in unique:
        text, nc_type, nc_unit = parse.preprocess_line(raw)
        labels = parse.tag_fast(text)
        if labels is None:
            continue
        compared += 1
        fast = parse.standardize_tagged(labels, "Street Address", False, nc_type, nc_unit)
        full = parse.standardize_tagged(*parse.tag_full(text), nc_type, nc_unit)
        if fast != full:
            mismatches.append(raw)
    assert compared >= 70_000
    assert mismatches == []


def test_fast_path_declines_unusual_shapes():
    for text in ["123 N ST", "123 HIGHWAY 54", "PO BOX 5", "MAIN ST & OAK AVE",
                 "0123 MAIN ST", "123 1/2 MAIN ST", "123 OLD US 1 HWY", "123 MAIN ST BLDG 2 APT 4",
                 "123 FIRST ST", "123 PARK AVE"]:
        assert parse.tag_fast(parse.preprocess_line(text)[0]) is None, text
    assert parse.tag_fast("123 N MAIN ST APT 4") == {
        "AddressNumber": "123", "StreetNamePreDirectional": "N", "StreetName": "MAIN",
        "StreetNamePostType": "ST", "OccupancyType": "APT", "OccupancyIdentifier": "4"}
