"""Address normalisation speed: cold (empty cache), cache-hit, and a second snapshot after 2 %
churn, on NC-style one-line addresses from the synthetic county; baseline: usaddress alone.
Each stage timing covers everything NormaliseAddresses does between reading voters.parquet and
writing its outputs: opening the on-disk cache, grouping, lookups, parsing, building both tables.

Run: .venv/bin/python -m bench.bench_addresses [dwellings]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import usaddress

from bench.common import record
from voterpipe import schema
from voterpipe.addresses import normalise, parse, samples
from voterpipe.addresses.cache import AddressCache
from voterpipe.tasks.addresses import VOTER_COLUMNS

VOTERS_PER_DWELLING = 1.6
CHURN = 0.02


def _voters(lines: list[str], zips: list[str], seed: int) -> pa.Table:
    """About VOTERS_PER_DWELLING voters per address string."""
    rng = np.random.default_rng(seed)
    per = rng.poisson(VOTERS_PER_DWELLING - 1, len(lines)) + 1
    idx = np.repeat(np.arange(len(lines)), per)
    line_arr, zip_arr = pa.array(lines), pa.array(zips)
    voters = pa.table({
        "voter_id": pa.array([f"NC{i:09d}" for i in range(len(idx))]),
        "res_address_line": line_arr.take(pa.array(idx)),
        "res_city": pa.array(["RALEIGH"] * len(idx)),
        "res_zip5": zip_arr.take(pa.array(idx)),
    })
    # The columns NormaliseAddresses reads from voters.parquet (schema.VOTERS), nulls included.
    return schema.conform(voters, schema.VOTERS).select(list(VOTER_COLUMNS))


def _churn(voters: pa.Table, dwellings, seed: int) -> pa.Table:
    """Move CHURN of the voters to addresses never seen before (house numbers past the grid)."""
    rng = np.random.default_rng(seed)
    n = voters.num_rows
    moved = np.flatnonzero(rng.random(n) < CHURN)
    rows = dwellings.iloc[rng.integers(0, len(dwellings), len(moved))]
    new_lines = [samples.nc_line(str(50_000 + int(number) + i), pre, name, stype, post, unit)
                 for i, (number, pre, name, stype, post, unit) in enumerate(
                     rows[["house_number", "pre_dir", "street_name", "street_type", "post_dir", "unit"]]
                     .itertuples(index=False, name=None))]
    lines = voters["res_address_line"].to_pylist()
    for position, line in zip(moved, new_lines):
        lines[position] = line
    return voters.set_column(voters.schema.get_field_index("res_address_line"), "res_address_line",
                             pa.array(lines))


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _best_of(repeats: int, fn, setup=None):
    """(last value, best seconds): the machine is shared, so single timings are noisy."""
    best, value = float("inf"), None
    for _ in range(repeats):
        if setup:
            setup()
        value, seconds = _timed(fn)
        best = min(best, seconds)
    return value, best


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    buildings = int(argv[0]) if argv else 150_000
    repeats = 3  # the cold run (seconds each)
    warm_repeats = 5  # the sub-second warm runs, noisier on a shared machine
    processes = 2
    load_at_start = os.getloadavg()
    dwellings = samples.county_dwellings(buildings, seed=21)
    lines = samples.address_variants(dwellings, None, seed=22, variant_share=0.2)
    zips = dwellings["zip5"].tolist()
    voters = _voters(lines, zips, seed=23)
    churned = _churn(voters, dwellings, seed=24)

    # Baseline: usaddress alone, one core, on a sample of the same strings.
    sample = lines[:: max(1, len(lines) // 20_000)]
    _, base_seconds = _timed(lambda: [usaddress.parse(s) for s in sample])
    usaddress_rate = len(sample) / base_seconds

    def fresh_cache(root: str) -> AddressCache:
        return AddressCache(root, parse.RULES_VERSION)

    with tempfile.TemporaryDirectory() as tmp:
        cold_root, root = os.path.join(tmp, "cold"), os.path.join(tmp, "warm")

        def empty_cold_cache():
            shutil.rmtree(cold_root, ignore_errors=True)

        # Every timed call below is what NormaliseAddresses.build does: open the cache from disk
        # (a new AddressCache), then normalise_addresses on the whole voters table.
        cold, cold_s = _best_of(repeats, lambda: normalise.normalise_addresses(
            voters, "nc", fresh_cache(cold_root), processes=processes), setup=empty_cold_cache)
        shutil.copytree(cold_root, root)
        unique = cold.stats["unique_address_strings"]
        _, load_s = _best_of(repeats, lambda: fresh_cache(root).table())
        hit, hit_s = _best_of(warm_repeats, lambda: normalise.normalise_addresses(
            voters, "nc", fresh_cache(root), processes=processes))
        assert hit.stats["parsed_new"] == 0
        assert hit.addresses.equals(cold.addresses) and hit.voter_addresses.equals(cold.voter_addresses)
        # The same with the cache already open in this process (no load, no index build).
        warm_cache = fresh_cache(root)
        _, warm_hit_s = _best_of(warm_repeats, lambda: normalise.normalise_addresses(
            voters, "nc", warm_cache, processes=processes))
        keys = normalise.voter_cache_keys(voters).combine_chunks().dictionary_encode().dictionary
        _, lookup_s = _best_of(repeats, lambda: warm_cache.positions(keys))

        def cache_before_second_snapshot():  # the second snapshot appends: start each run afresh
            shutil.rmtree(root)
            shutil.copytree(cold_root, root)

        second, second_s = _best_of(warm_repeats, lambda: normalise.normalise_addresses(
            churned, "nc", fresh_cache(root), processes=processes), setup=cache_before_second_snapshot)

    fast_share = sum(parse.tag_fast(parse.preprocess_line(s)[0]) is not None for s in sample) / len(sample)
    results = {
        "method": f"best of {repeats} (cold) or {warm_repeats} (warm); every stage timing opens the "
                  "cache from disk and runs normalise_addresses on all voters, as NormaliseAddresses.build does",
        "load_average_1min_at_start": round(load_at_start[0], 2),  # other jobs share the cores
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "voters": voters.num_rows,
        "unique_address_strings": unique,
        "processes": processes,
        "cpu_count": os.cpu_count(),
        "fast_path_share": round(fast_share, 4),
        "baseline_usaddress_per_core_per_s": round(usaddress_rate),
        "cold_seconds": round(cold_s, 3),
        "cold_unique_per_s": round(unique / cold_s),
        "cold_vs_usaddress_one_core": round(unique / cold_s / usaddress_rate, 2),
        "cache_load_seconds": round(load_s, 4),
        "cache_hit_seconds": round(hit_s, 3),
        "cache_hit_unique_per_s": round(unique / hit_s),
        "cache_hit_voters_per_s": round(voters.num_rows / hit_s),
        "cache_hit_cache_already_open_seconds": round(warm_hit_s, 3),
        "cache_hit_cache_already_open_unique_per_s": round(unique / warm_hit_s),
        "cache_positions_only_unique_per_s": round(unique / lookup_s),
        "churn_share": CHURN,
        "second_snapshot_new_strings": second.stats["parsed_new"],
        "second_snapshot_seconds": round(second_s, 3),
        "second_vs_cold": round(second_s / cold_s, 4),
        "targets": {"cold_unique_per_s": 25_000, "cache_hit_unique_per_s": 1_000_000, "second_vs_cold": 0.10},
    }
    record("addresses", results)
    return results


if __name__ == "__main__":
    main()
