"""Offline TIGER geocoder throughput, match rate and cache reuse on a synthetic county.

Baseline (same run): a plain per-address Python matcher over the same range table (dict of
street+ZIP -> ranges, then a loop), the obvious first implementation.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import record
from voterpipe.config import DATA_ROOT_ENV

ADDRESSES = int(os.environ.get("BENCH_GEOCODE_ADDRESSES", "250000"))
BASELINE_SAMPLE = 20_000


def _baseline_rate(engine, addresses: pd.DataFrame) -> tuple[float, int]:
    """Addresses/s of a row-by-row matcher (no interpolation): the speed to beat."""
    from voterpipe.geocode.tiger_names import street_keys

    ranges = engine.ranges
    index: dict[tuple, list] = {}
    for row in ranges[["key_full", "zip", "lo", "hi", "parity", "tlid", "side"]].itertuples(index=False):
        index.setdefault((row.key_full, row.zip), []).append(row)
    start = time.perf_counter()
    keys = street_keys(addresses[["pre_dir", "street_name", "street_type", "post_dir"]])["key_full"]
    matched = 0
    for key, zip5, number_text in zip(keys, addresses["zip5"], addresses["house_number"]):
        number = int(number_text)
        parity = 1 if number % 2 else 2
        hits = {(r.tlid, r.side) for r in index.get((key, zip5), ())
                if r.lo <= number <= r.hi and r.parity in (parity, 3)}
        matched += len(hits) == 1
    return len(addresses) / (time.perf_counter() - start), matched


def main() -> None:
    from voterpipe.geocode.cache import GeocodeCache, geocode_addresses
    from voterpipe.geocode.tiger import TigerGeocoder, import_tiger_dir
    from voterpipe.synth.county import CountySpec, build_county
    from voterpipe.synth.tiger_files import write_tiger_files

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ[DATA_ROOT_ENV] = str(tmp_path / "data")
        spec = CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.9, 35.6))
        network = build_county(spec, ADDRESSES, seed=7)
        buildings = network.buildings.assign(address_key=lambda f: "k" + f["building_id"], state="NC")

        t0 = time.perf_counter()
        write_tiger_files(network, tmp_path / "tiger")
        write_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = import_tiger_dir(tmp_path / "tiger")
        import_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine = TigerGeocoder.load()
        engine.geocode(buildings.iloc[:1000])  # builds the level indexes once
        load_seconds = time.perf_counter() - t0

        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = engine.geocode(buildings)
            timings.append(time.perf_counter() - t0)
        best = min(timings)
        rate = len(buildings) / best
        match_rate = float((out["status"] == "match").mean())
        exact_rate = float((out["match_type"] == "exact").mean())
        merged = out.merge(buildings[["address_key", "lon", "lat"]], on="address_key", suffixes=("", "_true"))
        metres = np.hypot((merged["lon"] - merged["lon_true"]) * 111_320 * np.cos(np.radians(merged["lat_true"])),
                          (merged["lat"] - merged["lat_true"]) * 110_540)

        # Messier input: no ZIP for a tenth, no pre-direction for a tenth.
        rng = np.random.default_rng(3)
        dirty = buildings.copy()
        no_zip = rng.random(len(dirty)) < 0.1
        dirty.loc[no_zip, "zip5"] = ""
        dirty.loc[rng.random(len(dirty)) < 0.1, "pre_dir"] = ""
        t0 = time.perf_counter()
        dirty_out = engine.geocode(dirty)
        dirty_rate = len(dirty) / (time.perf_counter() - t0)

        baseline_rate, baseline_matched = _baseline_rate(engine, buildings.iloc[:BASELINE_SAMPLE])

        # Two snapshots through the cache: the second holds 10% new keys.
        cache = GeocodeCache(tmp_path / "geocodes", "tiger", engine.benchmark, engine.vintage)
        first = buildings.assign(parse_status="ok")
        t0 = time.perf_counter()
        _, stats1 = geocode_addresses(first, cache, engine.geocode)
        first_seconds = time.perf_counter() - t0
        renamed = first.sample(frac=0.1, random_state=1).index
        second = first.copy()
        second.loc[renamed, "address_key"] = second.loc[renamed, "address_key"] + "-new"
        t0 = time.perf_counter()
        _, stats2 = geocode_addresses(second, cache, engine.geocode)
        second_seconds = time.perf_counter() - t0

    record("geocode_tiger", {
        "addresses": len(buildings),
        "ranges": summary["ranges"],
        "write_tiger_files_seconds": round(write_seconds, 3),
        "import_seconds": round(import_seconds, 3),
        "load_and_index_seconds": round(load_seconds, 3),
        "geocode_seconds_best_of_3": round(best, 3),
        "addresses_per_second": round(rate),
        "target_addresses_per_second": 100_000,
        "match_rate": round(match_rate, 5),
        "exact_rate": round(exact_rate, 5),
        "distance_to_true_point_m": {"median": round(float(metres.median()), 2),
                                     "p99": round(float(metres.quantile(0.99)), 2),
                                     "max": round(float(metres.max()), 2)},
        "dirty_input": {"addresses_per_second": round(dirty_rate),
                        "match_rate": round(float((dirty_out["status"] == "match").mean()), 5),
                        "non_exact": int((dirty_out["match_type"] == "non_exact").sum()),
                        "tie": int((dirty_out["status"] == "tie").sum())},
        "baseline_row_loop": {"addresses_per_second": round(baseline_rate),
                              "sample": BASELINE_SAMPLE, "matched": baseline_matched},
        "speedup_vs_row_loop": round(rate / baseline_rate, 1),
        "snapshot_1": {**stats1, "seconds": round(first_seconds, 3)},
        "snapshot_2": {**stats2, "seconds": round(second_seconds, 3)},
        "snapshot_2_only_new_keys_geocoded": stats2["cache_misses"],
    })


if __name__ == "__main__":
    main()
