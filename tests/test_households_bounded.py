"""Households built a bucket of buildings at a time (voterpipe.household_buckets) equal one
build_households of the whole roll: same rows, order, row groups and manifest counts."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import voterpipe.household_buckets as buckets
import voterpipe.household_merge as merge
from voterpipe import schema
from voterpipe.households import GroupQuartersRule, build_households
from voterpipe.tasks.households import household_manifest

SNAPSHOT = date(2026, 11, 1)
RULE = GroupQuartersRule(min_voters=4, min_surnames=3)


def _roll(voters: int = 3000, seed: int = 7) -> dict[str, pa.Table]:
    """A random roll: buildings of several households (units), big group-quarters households,
    removed voters, PO boxes, missing addresses, keyed addresses without a building_key,
    households without a geocode and geocodes of no household."""
    rng = np.random.default_rng(seed)
    building = rng.integers(0, 250, voters)
    unit = np.where(rng.random(voters) < 0.4, rng.integers(1, 4, voters), 0)
    unit[building < 5] = 0  # a few big unit-less buildings: likely group quarters
    status = rng.choice(["ok", "ok", "ok", "ok", "rural_route", "po_box", "missing", "ambiguous"], voters)
    address_key = np.array([f"{b:04d}u{u}" for b, u in zip(building, unit)], dtype=object)
    building_key = np.array([f"B{b:04d}" for b in building], dtype=object)
    address_key[status == "missing"], building_key[status == "missing"] = None, None
    building_key[(building % 37 == 3) & (status != "missing")] = None  # keyed, but no building
    voter_ids = [f"V{i:06d}" for i in rng.permutation(voters)]
    surnames = np.array(["SMITH", "Jones", "LEE", "KIM ", "PARK", "DIAZ", "WU", None], dtype=object)
    births = [date(1940, 1, 1) + timedelta(days=int(d)) if d >= 0 else None for d in rng.integers(-3000, 25000, voters)]
    registered = [date(1990, 1, 1) + timedelta(days=int(d)) if d >= 0 else None for d in rng.integers(-2000, 12000, voters)]
    roll = {
        "voters": pa.table({
            "voter_id": voter_ids,
            "status": rng.choice(["active", "active", "inactive", "removed", None], voters).tolist(),
            "last_name": surnames[rng.integers(0, len(surnames), voters)].tolist(),
            "party": rng.choice(["DEM", "REP", "UNA", "LIB", "GRE", "", None], voters).tolist(),
            "birth_date": pa.array(births, pa.date32()),
            "birth_year": pa.array([d.year if d and i % 3 else None for i, d in enumerate(births)], pa.int16()),
            "registered_on": pa.array(registered, pa.date32()),
        }),
        "voter_addresses": pa.table({"voter_id": voter_ids, "address_key": address_key.tolist(),
                                     "building_key": building_key.tolist(), "parse_status": status.tolist()}),
    }
    keys = sorted({k for k in address_key if k is not None})
    roll["addresses"] = pa.table({
        "address_key": keys, "building_key": [f"B{k[:4]}" for k in keys],
        "unit_type": [None if k.endswith("u0") else "APT" for k in keys],
        "unit_number": [None if k.endswith("u0") else k[-1] for k in keys]})
    geocoded = [k for k in keys if hash(k) % 5] + ["9999u9"]  # some unmatched; one of no household
    rng.shuffle(geocoded)
    matched = rng.random(len(geocoded)) < 0.9
    roll["geocodes"] = pa.table({
        "address_key": geocoded,
        "status": ["match" if m else "no_match" for m in matched],
        "lon": pa.array([-78.0 - i / 1e4 if m else None for i, m in enumerate(matched)], pa.float64()),
        "lat": pa.array([35.0 + i / 1e4 if m else None for i, m in enumerate(matched)], pa.float64()),
        **{c: [f"{c[:2]}{i % 7}" if m else None for i, m in enumerate(matched)]
           for c in ("state_fips", "county_fips", "tract", "block_group", "block", "congressional_district",
                     "state_senate_district", "state_house_district")}})
    return roll


def _whole(roll: dict[str, pa.Table]) -> tuple[pa.Table, pa.Table, dict]:
    frames = [roll[n].to_pandas() for n in ("voters", "voter_addresses")]
    addresses = roll["addresses"].drop_columns(["building_key"]).to_pandas()
    households, members = build_households(*frames, addresses, roll["geocodes"].to_pandas(), SNAPSHOT, RULE)
    manifest = household_manifest(households, members, RULE)
    return (schema.conform(pa.Table.from_pandas(households, preserve_index=False), schema.HOUSEHOLDS),
            schema.conform(pa.Table.from_pandas(members, preserve_index=False), schema.VOTER_HOUSEHOLDS), manifest)


@pytest.fixture
def small_batches(monkeypatch):
    """Windows, spill batches and output row groups far smaller than the roll."""
    monkeypatch.setattr(buckets, "READ_ROWS", 700)
    monkeypatch.setattr(buckets, "SPILL_ROWS", 90)
    monkeypatch.setattr(merge, "SPILL_ROWS", 64)
    monkeypatch.setattr(merge, "ROW_GROUP_ROWS", 500)


def _bucketed(roll, inputs, spill, count: int) -> tuple[pa.Table, pa.Table, dict, list[int]]:
    households, members = [], []
    counts = buckets.build_households_in_buckets(inputs, SNAPSHOT, RULE, None, spill, households.append,
                                                 members.append, count)
    groups = [t.num_rows for t in households]
    return pa.concat_tables(households), pa.concat_tables(members), counts, groups


@pytest.mark.parametrize("source", ["tables", "parquet"])
@pytest.mark.parametrize("count", [2, 7])
def test_bucketed_build_equals_the_whole_build(tmp_path, small_batches, source, count):
    roll = _roll()
    if source == "parquet":
        for name, table in roll.items():
            pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=450)
        inputs = buckets.HouseholdInputs(*(tmp_path / f"{n}.parquet" for n in roll))
    else:
        inputs = buckets.HouseholdInputs(*roll.values())
    spill = tmp_path / "spill"
    spill.mkdir()
    households, members, counts, groups = _bucketed(roll, inputs, spill, count)
    want_households, want_members, want_manifest = _whole(roll)

    assert households.num_rows > 500 and households.schema == schema.HOUSEHOLDS
    assert households.equals(want_households)  # same rows, same order (by household_id)
    assert members.equals(want_members)  # voters.parquet order
    assert groups == [500] * (len(groups) - 1) + [households.num_rows - 500 * (len(groups) - 1)]
    assert list(counts.items()) == [(k, v) for k, v in want_manifest.items() if k != "group_quarters_rule"]
    assert list(spill.iterdir()) == [p for p in spill.iterdir() if p.name.startswith("households-")]
    # what makes the case hard is present: shared and missing buildings, flags, removed voters
    frame = want_households.to_pandas()
    assert frame["building_multi_unit"].any() and frame["likely_group_quarters"].any()
    assert frame["building_key"].isna().any()
    assert roll["voters"]["status"].to_pylist().count("removed") > 100


def test_a_roll_without_geocodes_gets_null_geography(tmp_path, small_batches):
    roll = _roll(800)
    roll["geocodes"] = roll["geocodes"].slice(0, 0)
    households, _, counts, _ = _bucketed(roll, buckets.HouseholdInputs(*roll.values()), tmp_path, 3)
    assert households.equals(_whole(roll)[0])
    assert households["geocode_status"].null_count == households.num_rows and counts["geocoded_households"] == 0


def test_links_in_another_order_are_refused(tmp_path):
    roll = _roll(300)
    roll["voter_addresses"] = roll["voter_addresses"].take(pa.array(np.arange(299, -1, -1)))
    with pytest.raises(buckets.LinksOutOfOrder, match="voter order"):
        _bucketed(roll, buckets.HouseholdInputs(*roll.values()), tmp_path, 2)


def test_bucket_numbers_are_stable_and_in_range():
    keys = pa.array(["a1", None, "b22", "", "c333", "0123456789abcdef0123456789abcdef", "a1"] * 50)
    numbers = buckets.bucket_numbers(keys, 5)
    assert numbers.min() >= 0 and numbers.max() < 5 and len(set(numbers.tolist())) > 1
    assert (numbers[1::7] == 0).all()  # null keys
    assert (numbers[0::7] == numbers[6::7]).all()  # one key, one bucket
    assert (buckets.bucket_numbers(keys.slice(3), 5) == numbers[3:]).all()  # wherever it is read
    hexes = pa.array([f"{i:032x}" for i in range(4000)])  # equal lengths: the 8-byte path
    counts = np.bincount(buckets.bucket_numbers(hexes, 4), minlength=4)
    assert counts.min() > 800
    assert (buckets.bucket_numbers(hexes, 4)[:10] ==
            buckets.bucket_numbers(pa.array(hexes.to_pylist()[:10] + ["x"]), 4)[:10]).all()


def test_a_hash_two_buckets_share_sends_the_key_to_both(monkeypatch):
    fake = {"k1": 5 << 20, "k2": 5 << 20, "k3": 9 << 20, "zz": 7 << 20}

    def fake_hashes(keys):
        valid = [i for i, k in enumerate(keys.to_pylist()) if k is not None]
        return np.array(valid, dtype=np.int64), np.array([fake[keys[i].as_py()] for i in valid], dtype=np.uint64)
    monkeypatch.setattr(buckets, "key_hashes", fake_hashes)
    key_map = buckets.KeyBuckets()
    key_map.add(pa.array(["k1", "k2"]), np.array([0, 1]))
    key_map.add(pa.array(["k3", "k2"]), np.array([1, 1]))
    key_map.freeze()
    rows = key_map.rows_by_bucket(pa.array(["k3", "k1", "zz", None]))
    assert {b: r.tolist() for b, r in rows.items()} == {0: [1], 1: [0, 1]}


def test_bucket_count_keeps_rolls_up_to_a_million_whole():
    assert buckets.bucket_count(1_000_000) == 1
    assert buckets.bucket_count(buckets.WHOLE_VOTERS + 1) == 3
    assert buckets.bucket_count(4_000_000) == 8


def test_the_stage_writes_the_same_files_in_buckets(data_root, monkeypatch):
    pytest.importorskip("voterpipe.tasks.geocode")
    import luigi
    from test_households import _frames, _publish

    from voterpipe.tasks.addresses import NormaliseAddresses
    import voterpipe.tasks.households as stage
    from voterpipe.tasks.households import BuildHouseholds

    voters, _, _, geocodes = _frames()
    voters["res_address_line"] = ["1 MAIN ST #1", "1 MAIN ST APT 1", "1 MAIN ST #2", "5 OAK AVE", "5 OAK AVE",
                                  "7 ELM ST", "7 ELM ST", "9 ELM ST", "1 MAIN ST # 1", "PO BOX 9"]
    voters["res_zip5"] = "27601"
    _publish("canonical", {"voters": pa.Table.from_pandas(voters, preserve_index=False),
                           "history": schema.HISTORY.empty_table(), "rejects": schema.REJECTS.empty_table()})
    assert luigi.build([NormaliseAddresses(state="nc", snapshot=SNAPSHOT)], local_scheduler=True)
    _publish("geocoded", {"geocodes": pa.Table.from_pandas(geocodes.assign(backend="tiger"), preserve_index=False)})

    def built() -> tuple[dict, dict]:
        task = BuildHouseholds(state="nc", snapshot=SNAPSHOT)
        assert luigi.build([task], local_scheduler=True)
        files = {f: pq.read_table(task.output().file(f)) for f in ("households.parquet", "voter_households.parquet")}
        manifest = json.loads((task.output().path / "manifest.json").read_text())
        assert sorted(p.name for p in task.output().path.iterdir()) == ["households.parquet", "manifest.json",
                                                                        "voter_households.parquet"]
        shutil.rmtree(task.output().path)
        return files, manifest

    whole, whole_manifest = built()
    monkeypatch.setattr(buckets, "WHOLE_VOTERS", 0)
    monkeypatch.setattr(buckets, "BUCKET_VOTERS", 3)
    calls = []
    monkeypatch.setattr(stage, "build_households_in_buckets",
                        lambda *args: calls.append(args[-2]) or buckets.build_households_in_buckets(*args))
    split, split_manifest = built()
    assert calls == [4]  # 10 voters, 3 a bucket
    for name, table in whole.items():
        assert split[name].schema == table.schema and split[name].equals(table)
    assert split_manifest == whole_manifest and whole_manifest["households"] >= 3
