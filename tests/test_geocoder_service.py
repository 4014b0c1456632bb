"""The Census-compatible geocoder service: exact batch CSV layout, JSON shape, the real censusgeocode
client against it, request validation and the fault plan, all over HTTP on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest
import requests

from geocoder_faults import FaultPlan
from geocoder_server import synthetic_geocoder
from voterpipe.config import geocoder
from voterpipe.geocode.census_client import ConfiguredCensusGeocode, geocode_one_line
from voterpipe.geocode.service import make_server
from voterpipe.geocode.service_input import split_one_line

QUOTED_ROW = re.compile(r'^"[^"]*"(,"[^"]*")*$')


@pytest.fixture(scope="module")
def geo():
    return synthetic_geocoder()


@pytest.fixture
def server(geo):
    server = make_server("127.0.0.1", 0, geo.engine).start()
    yield server
    server.stop()


def house_line(geo, n: int) -> list[str]:
    house = geo.network.buildings.iloc[n]
    street = " ".join(p for p in (house.house_number, house.pre_dir, house.street_name,
                                  house.street_type, house.post_dir) if p)
    return [street, house.city, "NC", house.zip5]


def direct(geo, street: str, city: str, state: str, zip5: str):
    frame = split_one_line(f"{street}, {city}, {state} {zip5}")
    return geo.engine.geocode(pd.DataFrame([{"address_key": "x", **frame}])).iloc[0]


def batch_file(geo, houses: int = 40) -> tuple[str, dict]:
    rows = {str(100 + n): house_line(geo, n) for n in range(houses)}
    tie = geo.tie_edge
    rows["tie"] = [f"{tie['LFROMHN']} {tie['FULLNAME']}", "RALEIGH", "NC", tie["ZIPL"]]
    rows["none"] = ["12 NOWHERE RD", "RALEIGH", "NC", ""]
    text = "".join(f"{k},{','.join(v)}\n" for k, v in rows.items())
    return text, rows


def post_batch(server, text: str, returntype: str = "geographies") -> requests.Response:
    return requests.post(f"{server.url}{returntype}/addressbatch", timeout=10,
                         files={"addressFile": ("batch.csv", text.encode(), "text/plain")},
                         data={"benchmark": "Public_AR_Current", "vintage": "Current_Current"})


@pytest.mark.parametrize("returntype, width", [("geographies", 12), ("locations", 8)])
def test_batch_answer_has_the_census_layout(geo, server, returntype, width):
    text, rows = batch_file(geo)
    response = post_batch(server, text, returntype)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "GeocodeResults.csv" in response.headers["Content-Disposition"]
    lines = response.text.splitlines()
    assert all(QUOTED_ROW.match(line) for line in lines)  # every field quoted, no header
    parsed = {row[0]: row for row in csv.reader(io.StringIO(response.text))}
    assert set(parsed) == set(rows)
    assert [r[0] for r in csv.reader(io.StringIO(response.text))] != list(rows)  # unordered
    for unique_id, fields in rows.items():
        assert parsed[unique_id][1] == ", ".join(fields)  # the input echo
    assert parsed["tie"][1:] == [", ".join(rows["tie"]), "Tie"]
    assert parsed["none"] == ["none", "12 NOWHERE RD, RALEIGH, NC, ", "No_Match"]
    house = geo.network.buildings.iloc[0]
    match = parsed["100"]
    assert len(match) == width and match[2] == "Match" and match[3] == "Exact"
    assert match[4].startswith(f"{house.house_number} ") and match[4].endswith(f", NC, {house.zip5}")
    lon, lat = (float(v) for v in match[5].split(","))  # one field, longitude first
    assert abs(lon - house.lon) < 3e-4 and abs(lat - house.lat) < 3e-4
    assert match[6:8] == [str(house.tlid), house.side]
    if returntype == "geographies":
        expected = direct(geo, *rows["100"])
        assert match[8:] == [expected.state_fips, expected.county_fips, expected.tract, expected.block]
        assert (match[8], match[9], len(match[10]), len(match[11])) == ("37", "183", 6, 4)


def test_censusgeocode_addressbatch_works_against_the_service(geo, server):
    text, rows = batch_file(geo, houses=5)
    client = ConfiguredCensusGeocode(server.url)
    result = {r["id"]: r for r in client.addressbatch(io.StringIO(text), timeout=10)}
    assert set(result) == set(rows)
    house = geo.network.buildings.iloc[0]
    assert result["100"]["match"] is True and result["100"]["tigerlineid"] == str(house.tlid)
    assert abs(result["100"]["lon"] - house.lon) < 3e-4
    # censusgeocode folds Tie into no match: why our backend parses the CSV itself.
    assert result["tie"]["match"] is False and result["none"]["match"] is False


def test_onelineaddress_json_through_censusgeocode(geo, server):
    client = ConfiguredCensusGeocode(server.url)
    street, city, state, zip5 = house_line(geo, 3)
    one_line = f"{street}, {city}, {state} {zip5}"
    matches = client.onelineaddress(one_line, returntype="geographies", layers="all", timeout=10)
    assert matches.input["address"] == {"address": one_line}
    assert matches.input["benchmark"]["benchmarkName"] == "Public_AR_Current"
    assert matches.input["vintage"]["vintageName"] == "Current_Current"
    (match,) = matches
    expected = direct(geo, street, city, state, zip5)
    assert match["coordinates"] == {"x": expected.lon, "y": expected.lat}
    assert match["tigerLine"] == {"tigerLineId": str(expected.tiger_line_id), "side": expected.side}
    assert match["matchedAddress"] == expected.matched_address
    layers = match["geographies"]
    assert {"States", "Counties", "Census Tracts", "2020 Census Blocks"} <= set(layers)
    assert layers["2020 Census Blocks"][0]["GEOID"] == (
        expected.state_fips + expected.county_fips + expected.tract + expected.block)
    assert re.fullmatch(r"[+-]\d{2}\.\d{7}", layers["States"][0]["CENTLAT"])
    default = client.onelineaddress(one_line, returntype="geographies", timeout=10)
    assert set(default[0]["geographies"]) == {"States", "Counties", "Census Tracts", "2020 Census Blocks"}
    assert match["matchMethod"] == "exact" and match["matchScore"] == 1.0
    assert client.onelineaddress("12 NOWHERE RD, RALEIGH, NC 27601", timeout=10) == []
    located = client.onelineaddress(one_line, returntype="locations", timeout=10)
    assert "geographies" not in located[0] and "vintage" not in located.input


def test_geocode_one_line_maps_layers_into_geocode_columns(geo, server):
    street, city, state, zip5 = house_line(geo, 7)
    settings = geocoder(census_url=server.url, timeout_seconds=10)
    row = geocode_one_line(f"{street}, {city}, {state} {zip5}", settings)
    expected = direct(geo, street, city, state, zip5)
    for column in ("status", "lon", "lat", "tiger_line_id", "side", "state_fips", "county_fips",
                   "tract", "block_group", "block", "congressional_district",
                   "state_senate_district", "state_house_district"):
        assert row[column] == expected[column], column
    assert row["backend"] == "census"


def test_address_endpoint_through_censusgeocode(geo, server):
    street, city, state, zip5 = house_line(geo, 2)
    client = ConfiguredCensusGeocode(server.url)
    (match,) = client.address(street, city=city, state=state, zip=zip5, returntype="locations",
                              timeout=10)
    assert match["tigerLine"]["tigerLineId"] == str(geo.network.buildings.iloc[2].tlid)


def test_bad_requests_get_clear_errors(geo, server):
    assert requests.get(f"{server.url}geographies/nothing", timeout=5).status_code == 404
    response = requests.post(f"{server.url}geographies/addressbatch", data={"benchmark": "x"},
                             timeout=5)
    assert response.status_code == 400 and "addressFile" in response.text
    too_many = "".join(f"{n},1 MAIN ST,X,NC,27601\n" for n in range(10_001))
    response = post_batch(server, too_many)
    assert response.status_code == 400 and "10000" in response.text
    assert server.requests == []  # rejected files are not batch requests


def test_fault_plan_schedule_and_validation(geo):
    plan = FaultPlan(schedule=["http_500", None], default="html")
    assert [plan.fault_for(n) for n in range(4)] == ["http_500", None, "html", "html"]
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(schedule=["explode"])
    faults = FaultPlan(schedule=["drop", "truncate"])
    server = make_server("127.0.0.1", 0, geo.engine, faults).start()
    try:
        text, _ = batch_file(geo, houses=3)
        with pytest.raises(requests.ConnectionError):
            post_batch(server, text)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            post_batch(server, text).content
        assert post_batch(server, text).status_code == 200
        assert faults.faults_served() == ["drop", "truncate", None]
        assert [r.rows for r in server.requests] == [5, 5, 5]
    finally:
        server.stop()


def test_a_hook_sees_each_batch_request_and_may_answer_it(geo):
    seen = []

    def hook(call):
        seen.append((call.number, call.returntype, len(call.rows)))
        if call.number == 0:
            call.send(503, b"busy", "text/plain")
            return True
        answer = call.answer_rows()
        call.send_rows(answer[:1])  # the hook may alter the service's own answer
        return True

    server = make_server("127.0.0.1", 0, geo.engine, hook).start()
    try:
        text, rows = batch_file(geo, houses=3)
        assert post_batch(server, text).status_code == 503
        response = post_batch(server, text, "locations")
        assert response.status_code == 200 and len(response.text.splitlines()) == 1
        assert seen == [(0, "geographies", len(rows)), (1, "locations", len(rows))]
    finally:
        server.stop()


def test_the_service_matches_like_the_engine_and_names_the_method(geo, server):
    buildings = geo.network.buildings
    house = buildings[buildings["street_name"].str.fullmatch(r"[A-Z]{5,}")].iloc[0]
    typo = house.street_name[:2] + house.street_name[3] + house.street_name[2] + house.street_name[4:]
    street = " ".join(p for p in (house.house_number, house.pre_dir, typo, house.street_type) if p)
    client = ConfiguredCensusGeocode(server.url)
    (match,) = client.onelineaddress(f"{street}, {house.city}, NC {house.zip5}",
                                     returntype="locations", timeout=10)
    expected = direct(geo, street, house.city, "NC", house.zip5)
    assert match["matchMethod"] == expected.match_method == "fuzzy_name"
    assert match["matchScore"] == round(float(expected.match_score), 3) < 1
    assert match["tigerLine"]["tigerLineId"] == str(house.tlid)
