"""Bucketed normalisation (addresses.bucketed) writes exactly what one whole-table run writes."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import storage
from voterpipe.addresses import bucketed, parse
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.normalise import normalise_addresses

STREETS = ["MAIN ST", "Main Street", "OAK AVE", "ELM ST APT 4B", "ELM ST UNIT 4B", "PINE RD # 2"]


def _voters(n: int, seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    zips = ["27601", "27602", "27603-1234", " 27604", "ABCDE", None, "27605", "27606"]
    lines = []
    for i in range(n):
        pick = rng.random()
        if pick < 0.05:
            lines.append(rng.choice([None, "", "REMOVED", "MAIN ST & OAK AVE", "PO BOX 12", "RR 3 BOX 9"]))
        else:
            lines.append(f"{rng.randint(1, 40)} {rng.choice(STREETS)}")
    return pa.table({
        "voter_id": [f"V{i:05d}" for i in range(n)],
        "res_address_line": lines,
        "res_city": [rng.choice(["Raleigh", "cary", None]) for _ in range(n)],
        "res_state": [rng.choice(["NC", None]) for _ in range(n)],
        "res_zip5": [rng.choice(zips) for _ in range(n)],
    })


def _run_bucketed(tmp_path, voters: pa.Table, cache: AddressCache, bucket_voters: int, window: int,
                  monkeypatch) -> tuple[pa.Table, pa.Table, dict]:
    path = tmp_path / "voters.parquet"
    pq.write_table(voters, path, row_group_size=97)
    monkeypatch.setattr(bucketed, "MERGE_WINDOW", window)
    outputs = {"addresses": tmp_path / "addresses.parquet", "voter_addresses": tmp_path / "links.parquet"}
    spill = tmp_path / "spill"
    spill.mkdir(exist_ok=True)
    stats = bucketed.normalise_voter_file(path, voters.column_names, "nc", cache, outputs, storage.parquet_writer,
                                          spill, processes=1, bucket_voters=bucket_voters)
    assert not list(spill.iterdir()), "spill files are removed"
    return pq.read_table(outputs["addresses"]), pq.read_table(outputs["voter_addresses"]), stats


@pytest.mark.parametrize("bucket_voters,window", [(10_000, 10_000), (150, 64), (1, 7)])
def test_bucketed_run_equals_the_whole_table_run(tmp_path, monkeypatch, bucket_voters, window):
    voters = _voters(1_200)
    whole_cache = AddressCache(tmp_path / "whole", parse.RULES_VERSION)
    whole = normalise_addresses(voters, "nc", cache=whole_cache, processes=1)
    cache = AddressCache(tmp_path / "bucketed", parse.RULES_VERSION)
    addresses, links, stats = _run_bucketed(tmp_path, voters, cache, bucket_voters, window, monkeypatch)
    assert addresses.schema.equals(whole.addresses.schema) and addresses.equals(whole.addresses)
    assert links.schema.equals(whole.voter_addresses.schema) and links.equals(whole.voter_addresses)
    assert stats == whole.stats
    # the new cache part holds the same rows in the same order
    assert AddressCache(tmp_path / "bucketed", parse.RULES_VERSION).table().equals(
        AddressCache(tmp_path / "whole", parse.RULES_VERSION).table())


def test_a_second_run_takes_every_string_from_the_cache(tmp_path, monkeypatch):
    voters = _voters(600, seed=3)
    cache_dir = tmp_path / "cache"
    _, first_links, first = _run_bucketed(tmp_path, voters, AddressCache(cache_dir, "v"), 100, 50, monkeypatch)
    more = pa.concat_tables([voters, _voters(50, seed=11).set_column(0, "voter_id", pa.array(
        [f"W{i}" for i in range(50)]))])
    addresses, links, again = _run_bucketed(tmp_path, more, AddressCache(cache_dir, "v"), 100, 50, monkeypatch)
    whole = normalise_addresses(more, "nc", cache=None, processes=1)
    assert first["parsed_new"] == first["unique_address_strings"] and first["cache_hits"] == 0
    assert again["parsed_new"] + again["cache_hits"] == again["unique_address_strings"]
    assert again["parsed_new"] < 50 and again["cache_hits"] >= first["unique_address_strings"]
    assert addresses.equals(whole.addresses) and links.equals(whole.voter_addresses)
    assert links.slice(0, 600).equals(first_links)


def test_buckets_never_split_a_zip_and_balance_the_rest():
    counts = {"27601": 500, "27602": 300, "27603": 200, "27604": 100, "": 50}
    assigned = bucketed.assign_buckets(counts, 1_150, bucket_voters=400)
    assert set(assigned) == set(counts)
    load = [sum(c for z, c in counts.items() if assigned[z] == b) for b in range(3)]
    assert sorted(load) == [300, 350, 500]  # the largest ZIP alone; the others fill the lightest bucket
    # more buckets than voters / bucket_voters when ZIP sizes leave one over the limit
    even = {f"2760{i}": 333 for i in range(6)}
    assert len(set(bucketed.assign_buckets(even, 1_998, bucket_voters=400).values())) == 6
    assert len(set(bucketed.assign_buckets(even, 1_998, bucket_voters=700).values())) == 3


def test_spill_directories_of_dead_runs_are_removed(tmp_path):
    import socket
    from voterpipe.addresses.spill import spill_directory
    dead = tmp_path / f".spill-{socket.gethostname()}-999999999-x"  # no such process
    live = tmp_path / f".spill-{socket.gethostname()}-1-y"  # pid 1 is always alive
    dead.mkdir()
    live.mkdir()
    with spill_directory(tmp_path) as directory:
        (directory / "a.arrow").write_bytes(b"x")
        assert not dead.exists() and live.exists()
    assert not directory.exists()
