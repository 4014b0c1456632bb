"""GeocodeAddresses and the geocode cache: unique keys, cache first, only new keys on the next snapshot."""

from __future__ import annotations

import threading
from datetime import date

import luigi
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from voterpipe import schema, storage
from voterpipe.geocode.cache import GeocodeCache, geocode_addresses
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.synth.county import CountySpec, build_county
from voterpipe.synth.tiger_files import write_tiger_files
from voterpipe.tasks.addresses import NormaliseAddresses
from voterpipe.tasks.geocode import GeocodeAddresses, census_backend_label
from voterpipe.tasks.imports import ImportSnapshot

from stage_fixtures import publish_stage

SPEC = CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.70, 35.70))
FIRST, SECOND = date(2026, 11, 1), date(2026, 12, 1)


@pytest.fixture(scope="module")
def network():
    return build_county(SPEC, 600, seed=5)


def _addresses(buildings: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({
        "address_key": "a" + buildings["building_id"].str.replace("-", ""),
        "building_key": "b" + buildings["building_id"].str.replace("-", ""),
        "house_number": buildings["house_number"], "pre_dir": buildings["pre_dir"],
        "street_name": buildings["street_name"], "street_type": buildings["street_type"],
        "post_dir": buildings["post_dir"], "city": buildings["city"], "state": "NC",
        "zip5": buildings["zip5"], "parse_status": "ok", "voter_count": 1,
    })
    odd = pd.DataFrame({"address_key": ["pobox1", "missing1"], "building_key": ["pobox1", None],
                        "house_number": ["12", ""], "street_name": ["PO BOX", ""],
                        "parse_status": ["po_box", "missing"], "voter_count": [1, 1]})
    return pd.concat([frame, odd], ignore_index=True)


def _publish_addresses(addresses: pd.DataFrame, snapshot: date) -> None:
    """A finished 03_addresses stage (and the canonical voters it came from) for GeocodeAddresses."""
    voters = pd.DataFrame({"voter_id": [f"v{i}" for i in range(len(addresses))],
                           "county_code": "92", "address_key": addresses["address_key"]})
    publish_stage(ImportSnapshot(state="nc", snapshot=snapshot), {
        "voters": pa.Table.from_pandas(voters, preserve_index=False),
        "history": schema.HISTORY.empty_table(), "rejects": schema.REJECTS.empty_table()})
    links = voters.assign(building_key=None, parse_status="ok")
    publish_stage(NormaliseAddresses(state="nc", snapshot=snapshot), {
        "addresses": pa.Table.from_pandas(addresses, preserve_index=False),
        "voter_addresses": pa.Table.from_pandas(links, preserve_index=False)})


def _run(snapshot: date) -> tuple[pd.DataFrame, dict]:
    task = GeocodeAddresses(state="nc", snapshot=snapshot)
    assert luigi.build([task], local_scheduler=True, workers=1)
    target = task.output()
    return storage.read_parquet(target.file("geocodes.parquet")).to_pandas(), target.manifest()


@pytest.fixture
def tiger_data(data_root, network, tmp_path):
    write_tiger_files(network, tmp_path / "tiger_files")
    import_tiger_dir(tmp_path / "tiger_files")
    return data_root


def test_geocode_addresses_task_then_only_new_keys_next_snapshot(tiger_data, network):
    buildings = network.buildings
    first = _addresses(buildings.iloc[:400])
    _publish_addresses(first, FIRST)
    geocodes, manifest = _run(FIRST)
    assert len(geocodes) == len(first) and geocodes["address_key"].is_unique
    assert list(geocodes.columns) == schema.GEOCODES.names
    by_key = geocodes.set_index("address_key")
    assert by_key.loc[["pobox1", "missing1"], "status"].tolist() == ["not_sent", "not_sent"]
    streets = by_key.drop(["pobox1", "missing1"])
    assert (streets["status"] == "match").mean() > 0.98
    assert manifest["cache_hits"] == 0 and manifest["cache_misses"] == 400 and manifest["not_sent"] == 2
    assert manifest["backend"] == "tiger" and manifest["benchmark"] == "TIGER2024"
    assert manifest["match_rate_by_county"]["92"]["match_rate"] > 0.98
    assert manifest["match_rate_by_parse_status"]["po_box"]["not_sent"] == 1
    assert manifest["match_rate_by_parse_status"]["ok"]["addresses"] == 400

    # Next month: 100 addresses gone, 150 new; only the new ones reach the geocoder.
    second = _addresses(buildings.iloc[100:550])
    _publish_addresses(second, SECOND)
    geocodes2, manifest2 = _run(SECOND)
    assert manifest2["cache_misses"] == 150 and manifest2["cache_hits"] == 300
    assert len(geocodes2) == len(second)
    kept = first["address_key"].iloc[100:400]
    pd.testing.assert_frame_equal(geocodes2.set_index("address_key").loc[kept], streets.loc[kept],
                                  check_dtype=False)


def test_cache_store_lookup_newest_wins_and_compact(tmp_path):
    cache = GeocodeCache(tmp_path, "tiger", "TIGER2024", "engine1-abc")
    cache.store(pd.DataFrame({"address_key": ["a", "b"], "status": ["match", "no_match"],
                              "lon": [-78.0, np.nan], "tiger_line_id": [5, None]}))
    cache.store(pd.DataFrame({"address_key": ["b"], "status": ["match"], "lon": [-79.0]}))
    found = cache.lookup(["b", "zzz", "a"]).set_index("address_key")
    assert sorted(found.index) == ["a", "b"]
    assert found.loc["b", "status"] == "match" and found.loc["b", "lon"] == -79.0
    assert list(found.columns) == schema.GEOCODES.names[1:]
    other = GeocodeCache(tmp_path, "census", "Public_AR_Current", "Current_Current")
    assert len(other.lookup(["a", "b"])) == 0  # another backend/benchmark/vintage is another cache
    assert cache.compact() == 2 and len(list(cache.directory.glob("*.parquet"))) == 1
    again = GeocodeCache(tmp_path, "tiger", "TIGER2024", "engine1-abc").lookup(pa.array(["b"]))
    assert again["lon"].tolist() == [-79.0]


def test_cache_store_from_threads_keeps_every_batch(tmp_path):
    cache = GeocodeCache(tmp_path, "census", "Public_AR_Current", "Current_Current")

    def store(batch: int) -> None:
        keys = [f"{batch}-{i}" for i in range(50)]
        cache.store(pd.DataFrame({"address_key": keys, "status": "match"}))
        cache.lookup(keys)

    threads = [threading.Thread(target=store, args=(b,)) for b in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 400 and not list(tmp_path.rglob(".*.tmp"))


def test_geocode_addresses_chunks_and_reports_missing_rows(tmp_path):
    cache = GeocodeCache(tmp_path, "tiger", "T", "V")
    addresses = pd.DataFrame({"address_key": ["k1", "k2", "k3", "k1"], "house_number": ["1", "2", "3", "1"],
                              "street_name": ["A", "B", "C", "A"], "parse_status": ["ok", "ambiguous", "ok", "ok"]})
    calls = []

    def backend(frame):
        calls.append(list(frame["address_key"]))
        return pd.DataFrame({"address_key": frame["address_key"], "status": "no_match", "backend": "tiger"})

    result, stats = geocode_addresses(addresses, cache, backend, chunk_rows=2)
    assert calls == [["k1", "k2"], ["k3"]] and list(result["address_key"]) == ["k1", "k2", "k3"]
    assert stats == {"addresses": 3, "sendable": 3, "not_sent": 0, "cache_hits": 0, "cache_misses": 3}
    with pytest.raises(RuntimeError, match="no row for 1 address keys"):
        geocode_addresses(addresses.assign(address_key=["k1", "k2", "k9", "k1"]), cache,
                          lambda frame: backend(frame).iloc[:0])


def test_census_backend_label_separates_other_servers():
    assert census_backend_label("https://geocoding.geo.census.gov/geocoder/") == "census"
    assert census_backend_label("http://127.0.0.1:8080/geocoder/") == "census@127.0.0.1:8080"


def test_census_backend_through_the_local_service(tiger_data, network):
    """backend=census against H5's Census-compatible service running on the TIGER engine."""
    service = pytest.importorskip("voterpipe.geocode.service")
    from voterpipe.geocode.tiger import TigerGeocoder

    server = service.make_server("127.0.0.1", 0, TigerGeocoder.load()).start()
    config = luigi.configuration.get_config()
    try:
        config.set("geocoder", "backend", "census")
        config.set("geocoder", "census_url", server.url)
        addresses = _addresses(network.buildings.iloc[:60])
        _publish_addresses(addresses, FIRST)
        geocodes, manifest = _run(FIRST)
    finally:
        config.set("geocoder", "backend", "tiger")
        config.set("geocoder", "census_url", "https://geocoding.geo.census.gov/geocoder/")
        server.stop()
    assert manifest["backend"].startswith("census@127.0.0.1:")
    assert manifest["cache_misses"] == 60 and manifest["not_sent"] == 2
    streets = geocodes[~geocodes["address_key"].isin(["pobox1", "missing1"])]
    assert (streets["status"] == "match").mean() > 0.95
    assert set(streets["backend"]) == {"census"}
