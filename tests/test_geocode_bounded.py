"""Geocoding in key-range buckets (geocode.bucketed) gives exactly the whole-table answer."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from voterpipe import schema, storage
from voterpipe.geocode import bucketed
from voterpipe.geocode.cache import GeocodeCache, geocode_addresses_table, match_rates_aligned


def _addresses(n: int, seed: int = 1) -> pa.Table:
    rng = random.Random(seed)
    keys = [hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest() for i in range(n)]
    keys[5] = keys[9] = None  # unparseable rows have no key
    return pa.table({
        "address_key": keys,
        "house_number": [str(rng.randint(1, 99)) if rng.random() > 0.05 else None for _ in range(n)],
        "street_name": [rng.choice(["MAIN", "OAK", ""]) for _ in range(n)],
        "parse_status": [rng.choice(["ok", "ok", "ambiguous", "po_box"]) for _ in range(n)],
    })


def _voter_files(tmp_path, addresses: pa.Table, voters: int, seed: int = 2):
    rng = random.Random(seed)
    keys = addresses["address_key"].to_pylist()
    links = pa.table({"voter_id": [f"V{i}" for i in range(voters)],
                      "address_key": [rng.choice(keys) for _ in range(voters)]})
    people = pa.table({"voter_id": links["voter_id"],
                       "county_code": [rng.choice(["1", "2", "3", None]) for _ in range(voters)]})
    pq.write_table(links, tmp_path / "links.parquet", row_group_size=333)
    pq.write_table(people, tmp_path / "voters.parquet", row_group_size=501)
    return links, people


def _backend(calls: list):
    def geocode(frame: pd.DataFrame) -> pd.DataFrame:
        calls.append(list(frame.index))
        number = pd.to_numeric(frame["house_number"]).to_numpy()
        return pd.DataFrame({"address_key": frame["address_key"].to_numpy(),
                             "status": np.where(number % 3 == 0, "no_match", "match"),
                             "county_fips": np.where(number % 2 == 0, "183", None), "backend": "fake"})
    return geocode


def _whole(addresses, links, people, cache):
    geocodes, stats = geocode_addresses_table(addresses, cache, _backend([]), chunk_rows=50)
    first = pc.index_in(geocodes["address_key"], value_set=addresses["address_key"], skip_nulls=True)
    parse_status = addresses["parse_status"].take(first).to_numpy(zero_copy_only=False)
    where = pc.index_in(geocodes["address_key"], value_set=links["address_key"], skip_nulls=True)
    county = pc.fill_null(pc.coalesce(people["county_code"].take(where), geocodes["county_fips"]), "unknown")
    statuses = geocodes["status"].to_numpy(zero_copy_only=False)
    return geocodes, stats, match_rates_aligned(statuses, parse_status), \
        match_rates_aligned(statuses, county.to_numpy(zero_copy_only=False))


@pytest.mark.parametrize("bucket_size", [10_000, 37, 1])
def test_buckets_give_the_whole_table_answer(tmp_path, bucket_size):
    addresses = _addresses(400)
    pq.write_table(addresses, tmp_path / "addresses.parquet", row_group_size=64)
    links, people = _voter_files(tmp_path, addresses, 1_000)
    whole_cache = GeocodeCache(tmp_path / "whole", "fake", "b", "v")
    cache = GeocodeCache(tmp_path / "bucketed", "fake", "b", "v")
    for target in (whole_cache, cache):  # some keys cached already, one of them twice
        target.store(pa.table({"address_key": addresses["address_key"][10:40], "status": ["tie"] * 30}))
        target.store(pa.table({"address_key": addresses["address_key"][20:22], "status": ["match"] * 2}))
    geocodes, stats, by_status, by_county = _whole(addresses, links, people, whole_cache)
    spill = tmp_path / "spill"
    spill.mkdir()
    calls: list = []
    done = bucketed.geocode_in_buckets(
        tmp_path / "addresses.parquet", cache, _backend(calls), tmp_path / "out.parquet", storage.parquet_writer,
        spill, lambda spills, prefixes: bucketed.spill_counties(tmp_path / "links.parquet",
                                                                tmp_path / "voters.parquet", spills, prefixes),
        chunk_rows=50, bucket_size=bucket_size)
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.equals(schema.GEOCODES) and out.equals(schema.conform(geocodes, schema.GEOCODES))
    assert done["stats"] == stats and done["rows"] == geocodes.num_rows
    assert done["match_rate_by_parse_status"] == by_status and done["match_rate_by_county"] == by_county
    assert sorted(i for c in calls for i in c) == sorted(  # the backend saw the rows' positions in the file
        i for i, k in enumerate(addresses["address_key"].to_pylist()) if k is not None
        and addresses["house_number"][i].as_py() and addresses["street_name"][i].as_py()
        and addresses["parse_status"][i].as_py() in ("ok", "ambiguous") and not 10 <= i < 40)
    assert not list(spill.iterdir())
    # the cache gets the same new rows in the same order, and compacts to the same table
    assert pa.concat_tables(list(cache.part_tables())).equals(pa.concat_tables(list(whole_cache.part_tables())))
    whole_cache.compact()
    cache.compact()
    assert cache.parts() == 1 and len(cache) == len(whole_cache)
    assert pa.concat_tables(list(cache.part_tables())).equals(pa.concat_tables(list(whole_cache.part_tables())))


def test_voter_files_out_of_order_are_refused(tmp_path):
    addresses = _addresses(50)
    links, people = _voter_files(tmp_path, addresses, 200)
    pq.write_table(people.take(pa.array(np.arange(199, -1, -1))), tmp_path / "voters.parquet")
    spills = [bucketed.Spill(tmp_path / "c.arrow")]
    with pytest.raises(bucketed.NotAligned):
        bucketed.spill_counties(tmp_path / "links.parquet", tmp_path / "voters.parquet", spills,
                                np.zeros(65536, dtype=np.int64))


def test_key_ranges_follow_byte_order_and_balance():
    keys = pa.array(sorted(hashlib.md5(str(i).encode()).hexdigest() for i in range(5_000)) + ["", "a"])
    prefixes = bucketed._prefixes(keys)
    histogram = np.bincount(prefixes, minlength=65536)
    ranges = bucketed.key_ranges(histogram, 1_000)
    numbers = bucketed.bucket_numbers(pa.array(sorted(keys.to_pylist())), ranges)
    assert (np.diff(numbers) >= 0).all() and numbers.max() == 5
    assert np.bincount(numbers).max() <= 1_100
