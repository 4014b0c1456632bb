"""The Census backend (censusgeocode client + our batch handling) over real HTTP against the local
Census-compatible service, with every fault the live service is known for injected."""

from __future__ import annotations

import socket

import censusgeocode
import pandas as pd
import pytest

from geocoder_faults import FaultPlan
from geocoder_server import addresses_frame, expected_geocodes, synthetic_geocoder
from voterpipe import schema
from voterpipe.config import geocoder
from voterpipe.geocode.cache import GeocodeCache
from voterpipe.geocode.census import BATCH_LIMIT, clamp_batch_size, geocode_with_census
from voterpipe.geocode.census_batch_file import (
    CensusResponseError,
    encode_batch_csv,
    parse_batch_response,
    request_rows,
)
from voterpipe.geocode.census_client import ConfiguredCensusGeocode
from voterpipe.geocode.census_sender import CensusBatchSender, CensusGeocoderError, CensusRunStats
from voterpipe.geocode.service import make_server

COMPARED = ["status", "match_type", "matched_address", "lon", "lat", "tiger_line_id", "side",
            "state_fips", "county_fips", "tract", "block_group", "block"]
FAST = {"backoff_seconds": 0.001, "backoff_cap_seconds": 0.01}

# Recorded by fitnr/censusgeocode (tests/fixtures/address-batch.yaml), in the order returned.
RECORDED = (
    '"3","3 Gramercy Park West, New York, NY, 10003","Match","Exact","3 GRAMERCY PARK W, NEW YORK, '
    'NY, 10003","-73.98658,40.738323","59653655","R","36","061","005000","1002"\n'
    '"2","79 Wistful Vista, Wistful Vista, IL, ","No_Match"\n'
    '"1","4600 Silver Hill Rd, SUITLAND, MD, 20746","No_Match"\n'
)


@pytest.fixture(scope="module")
def geo():
    return synthetic_geocoder()


@pytest.fixture(autouse=True)
def _no_imported_tiger(data_root):
    """An empty data root: districts come from TIGER faces only where a test imports them."""


@pytest.fixture(scope="module")
def addresses(geo):
    return addresses_frame(geo)


@pytest.fixture(scope="module")
def expected(geo, addresses):
    return expected_geocodes(geo, addresses)


@pytest.fixture
def serve(geo):
    servers = []

    def start(faults: FaultPlan | None = None):
        server = make_server("127.0.0.1", 0, geo.engine, faults).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def settings_for(server, **overrides):
    values = {"census_url": server.url, "batch_size": 40, "batches_in_flight": 1,
              "timeout_seconds": 2.0, "max_retries": 3}
    values.update(overrides)
    return geocoder(**values)


def cache_in(tmp_path, settings):
    return GeocodeCache(tmp_path / "geocodes", "census", settings.benchmark, settings.vintage)


def assert_complete_and_correct(result: pd.DataFrame, addresses: pd.DataFrame, expected: pd.DataFrame):
    assert list(result.columns) == [f.name for f in schema.GEOCODES]
    assert list(result["address_key"]) == list(addresses["address_key"])  # one row each, input order
    assert (result["backend"] == "census").all()
    got = result.set_index("address_key")
    want = expected.reindex(got.index)
    for column in COMPARED:
        same = (got[column] == want[column]) | (got[column].isna() & want[column].isna())
        assert same.all(), f"{column}: {int((~same).sum())} rows differ"
    counts = got["status"].value_counts().to_dict()
    assert counts == {"match": len(got) - 4, "tie": 1, "no_match": 2, "not_sent": 1}


# -- parsing --------------------------------------------------------------------------------------
def test_recorded_census_response_parses_with_short_rows_in_any_order():
    parsed = parse_batch_response(RECORDED, ["1", "2", "3"]).set_index("id")
    assert list(parsed.index) == ["3", "2", "1"]
    assert parsed.loc["3", "status"] == "match" and parsed.loc["3", "match_type"] == "exact"
    assert (parsed.loc["3", "lon"], parsed.loc["3", "lat"]) == (-73.98658, 40.738323)
    assert parsed.loc["3", "tiger_line_id"] == 59653655 and parsed.loc["3", "side"] == "R"
    assert parsed.loc["3", ["state_fips", "county_fips", "tract", "block", "block_group"]].tolist() == [
        "36", "061", "005000", "1002", "1"]
    assert parsed.loc[["2", "1"], "status"].tolist() == ["no_match", "no_match"]


def test_tie_stays_distinct_from_no_match_where_censusgeocode_folds_it():
    body = '"1","1 A ST, X, NC, 27601","Tie"\n"2","2 B ST, X, NC, 27601","No_Match"\n'
    ours = parse_batch_response(body, ["1", "2"])
    assert ours["status"].tolist() == ["tie", "no_match"]
    theirs = censusgeocode.CensusGeocode()._parse_batch_result(body, "geographies")
    assert [row["match"] for row in theirs] == [False, False]  # the defect we parse around


@pytest.mark.parametrize("body, sent, reason", [
    ("<html><body>Service Unavailable</body></html>", ["1"], "HTML"),
    (RECORDED, ["1", "2", "3", "4"], "missing"),
    (RECORDED + RECORDED.splitlines(keepends=True)[1], ["1", "2", "3"], "more than once"),
    (RECORDED[:60], ["1", "2", "3"], "CSV"),  # cut inside a quoted field
    ('"1","x","Match","Exact","A","-78.1,35.2","12","L"\n', ["1"], "8 fields"),  # 8 of 12
    ('"1","x","Perhaps"\n', ["1"], "indicator"),
    ('"1","x","Match","Exact","A","-78.1","12","L","37","183","010100","1001"\n', ["1"], "coordinate"),
])
def test_untrustworthy_answers_are_rejected(body, sent, reason):
    with pytest.raises(CensusResponseError, match=reason):
        parse_batch_response(body, sent)


def test_units_of_one_building_share_one_request_and_commas_are_removed(addresses):
    rows, key_map = request_rows(addresses)
    assert len(key_map) == len(addresses)
    assert len(rows) == len(addresses) - 2 * 30  # every fifth of 150 houses has two extra units
    frame = pd.DataFrame({"address_key": ["a"], "house_number": ["1"], "pre_dir": [""],
                          "street_name": ["MAIN, REAR"], "street_type": ["ST"], "post_dir": [""],
                          "city": ["X"], "state": ["NC"], "zip5": ["27601"]})
    assert encode_batch_csv(request_rows(frame)[0]) == b"1,1 MAIN REAR ST,X,NC,27601\n"


def test_batch_size_limit_and_base_url():
    assert clamp_batch_size(50_000) == BATCH_LIMIT and clamp_batch_size(0) == 1
    client = ConfiguredCensusGeocode("http://127.0.0.1:9/geocoder/", "B", "V")
    assert client.batch_url() == "http://127.0.0.1:9/geocoder/geographies/addressbatch"
    assert (client.benchmark, client.vintage) == ("B", "V")


# -- end to end over HTTP -------------------------------------------------------------------------
def test_clean_run_is_complete_correct_and_cached(serve, tmp_path, addresses, expected):
    server = serve()
    settings = settings_for(server, batches_in_flight=3)
    cache = cache_in(tmp_path, settings)
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache, stats=stats, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    distinct = len(addresses) - 60 - 1  # units share requests; the PO box is not sent
    batches = -(-distinct // 40)
    assert stats.batches_done == batches and stats.retries == 0
    assert stats.rechecked_rows == 3  # the Tie and both No_Match rows, resent once
    assert sum(r.rows for r in server.requests) == distinct + 3
    assert max(r.rows for r in server.requests) <= 40
    assert len(cache) == len(addresses) - 1  # every geocoded key persisted
    # A second run is answered from the cache alone.
    before = len(server.requests)
    again = geocode_with_census(addresses, settings, cache, **FAST)
    assert len(server.requests) == before
    assert_complete_and_correct(again, addresses, expected)


@pytest.mark.parametrize("fault, kind", [
    ("http_500", "http_status"), ("http_503", "http_status"), ("html", "html"),
    ("truncate", "truncated"), ("truncate_clean", "malformed"), ("drop", "connection"),
    ("missing_ids", "ids"), ("duplicate_ids", "ids"), ("slow", "timeout"),
])
def test_each_fault_is_retried_to_a_correct_result(serve, tmp_path, addresses, expected, fault, kind):
    server = serve(FaultPlan(schedule=[None, fault, fault], slow_seconds=1.0))
    settings = settings_for(server, batches_in_flight=1, timeout_seconds=0.4)
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache_in(tmp_path, settings), stats=stats, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    assert stats.failures == {kind: 2} and stats.retries == 2


def test_all_faults_in_one_run_with_batches_in_flight(serve, tmp_path, addresses, expected):
    faults = ["http_500", "html", "truncate", "truncate_clean", "drop", "missing_ids",
              "duplicate_ids", "slow", "no_match_all"]
    server = serve(FaultPlan(schedule=faults, slow_seconds=1.0))
    settings = settings_for(server, batches_in_flight=4, timeout_seconds=0.4, max_retries=6)
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache_in(tmp_path, settings), stats=stats, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    assert sum(stats.failures.values()) == 8 and stats.retries == 8  # no_match_all is a 200


def test_a_batch_answered_all_no_match_recovers_matches_and_the_tie(serve, tmp_path, addresses,
                                                                  expected):
    server = serve(FaultPlan(schedule=["no_match_all"]))
    settings = settings_for(server, batch_size=500)  # one batch, answered all No_Match
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache_in(tmp_path, settings), stats=stats,
                                 recheck_batch_rows=10, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    distinct = len(addresses) - 60 - 1
    assert stats.rechecked_rows == distinct and stats.recheck_matches == distinct - 3
    assert len(server.requests) == 1 + -(-distinct // 10)
    assert all(r.rows <= 10 for r in server.requests[1:])  # rechecks go in small batches


def test_retries_are_bounded(serve, tmp_path, addresses):
    server = serve(FaultPlan(default="http_503"))
    settings = settings_for(server, max_retries=2)
    with pytest.raises(CensusGeocoderError, match="after 3 attempt"):
        geocode_with_census(addresses, settings, cache_in(tmp_path, settings), **FAST)
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(serve, tmp_path, addresses):
    server = serve(FaultPlan(default="http_400"))
    settings = settings_for(server, max_retries=5)
    with pytest.raises(CensusGeocoderError, match="HTTP 400"):
        geocode_with_census(addresses, settings, cache_in(tmp_path, settings), **FAST)
    assert len(server.requests) == 1


def test_every_request_has_a_timeout(serve, tmp_path, addresses):
    server = serve()
    with pytest.raises(ValueError, match="timeout"):
        geocode_with_census(addresses, settings_for(server, timeout_seconds=0), cache_in(
            tmp_path, settings_for(server)), **FAST)


def test_service_failing_for_good_after_k_batches_keeps_those_batches(serve, tmp_path, addresses,
                                                                      expected):
    server = serve(FaultPlan(schedule=[None, None], default="http_500"))
    settings = settings_for(server, batch_size=60, max_retries=1)
    cache = cache_in(tmp_path, settings)
    with pytest.raises(CensusGeocoderError):
        geocode_with_census(addresses, settings, cache, **FAST)
    # Two batches of 60 distinct houses were stored: 2 * 60 houses, 2 * 12 of them with 2 units.
    stored = cache.lookup(addresses["address_key"])
    assert len(stored) == 2 * (60 + 2 * 12)
    healthy = serve()
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings_for(healthy, batch_size=60), cache,
                                 stats=stats, **FAST)
    assert stats.cached_keys == len(stored)
    assert sum(r.rows for r in healthy.requests) == len(addresses) - 60 - 1 - 120 + 3  # + rechecks
    assert_complete_and_correct(result, addresses, expected)


def test_a_crash_after_k_batches_loses_only_batches_in_flight(serve, tmp_path, addresses, expected):
    server = serve()
    settings = settings_for(server, batch_size=30, batches_in_flight=1)
    cache = cache_in(tmp_path, settings)

    class Crash(Exception):
        pass

    def crash_after_two(fraction, message):
        if message.startswith("census: 2/"):
            raise Crash(message)

    with pytest.raises(Crash):
        geocode_with_census(addresses, settings, cache, progress=crash_after_two, **FAST)
    stored = cache.lookup(addresses["address_key"])
    assert len(stored) == 2 * (30 + 2 * 6)  # two batches of 30 houses, 6 each with 2 units
    result = geocode_with_census(addresses, settings, cache, **FAST)
    assert_complete_and_correct(result, addresses, expected)


def test_districts_come_from_one_json_lookup_per_block(serve, tmp_path, addresses, expected):
    server = serve()
    settings = settings_for(server, batches_in_flight=2)
    cache = cache_in(tmp_path, settings)
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache, stats=stats, districts=True, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    got = result.set_index("address_key")
    want = expected.reindex(got.index)
    matched = got["status"] == "match"
    for column in ("congressional_district", "state_senate_district", "state_house_district"):
        assert got.loc[matched, column].notna().all()
        assert (got.loc[matched, column] == want.loc[matched, column]).all(), column
    blocks = (got.loc[matched, "state_fips"] + got.loc[matched, "county_fips"]
              + got.loc[matched, "tract"] + got.loc[matched, "block"]).nunique()
    assert stats.district_requests == blocks == server.single_requests
    assert blocks < matched.sum() / 2  # far fewer lookups than addresses
    # Cached rows keep their districts, and their blocks are not looked up again.
    fresh = addresses.assign(address_key=addresses["address_key"] + "-new").iloc[:20]
    stats = CensusRunStats()
    geocode_with_census(pd.concat([addresses, fresh]), settings, cache, stats=stats, districts=True,
                        **FAST)
    assert stats.district_requests == 0 and server.single_requests == blocks


def test_districts_join_the_imported_tiger_faces_with_no_request(serve, tmp_path, addresses, expected,
                                                                  geo):
    server = serve()
    settings = settings_for(server, batches_in_flight=2)
    stats = CensusRunStats()
    result = geocode_with_census(addresses, settings, cache_in(tmp_path, settings), stats=stats,
                                 districts=True, tiger_dir=geo.tiger_dir, **FAST)
    assert_complete_and_correct(result, addresses, expected)
    got = result.set_index("address_key")
    matched = got["status"] == "match"
    want = expected.reindex(got.index)
    for column in ("congressional_district", "state_senate_district", "state_house_district"):
        assert got.loc[matched, column].notna().all()
        assert (got.loc[matched, column] == want.loc[matched, column]).all(), column
    assert stats.district_requests == 0 and server.single_requests == 0
    distinct = len(addresses) - 60 - 1  # units share requests; the PO box is not sent
    assert stats.offline_district_rows == distinct - 3  # every matched request; not the Tie, No_Matches


def test_errors_never_carry_the_address_of_a_single_lookup():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = geocoder(census_url=f"http://127.0.0.1:{port}/geocoder/", timeout_seconds=1.0,
                        max_retries=1)
    sender = CensusBatchSender(settings, backoff_seconds=0.001)
    with pytest.raises(CensusGeocoderError, match="after 2 attempt") as caught:
        sender.districts_of("101 SECRETIVE ST, RALEIGH, NC 27601")
    assert "SECRETIVE" not in str(caught.value) and "onelineaddress?..." in str(caught.value)
    assert sender.stats.failures == {"connection": 2}
