"""Householding speed on 1M synthetic voters (target: under 10 s); baseline: a bare pandas
groupby-size over the same household ids, measured in the same run.

Run: .venv/bin/python -m bench.bench_households [voters]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date

import numpy as np
import pandas as pd

from bench.common import record
from voterpipe.households import build_households

SNAPSHOT = date(2026, 11, 1)


def synthetic_frames(n_voters: int, seed: int = 5):
    """voters, voter_addresses, addresses, geocodes shaped like the pipeline's stage outputs."""
    rng = np.random.default_rng(seed)
    n_addresses = int(n_voters / 1.6)
    n_buildings = int(n_addresses * 0.85)
    address_ids = np.array([f"{i:032x}" for i in range(n_addresses)], dtype=object)
    building_of = rng.integers(0, n_buildings, n_addresses)
    building_ids = np.array([f"b{i:031x}" for i in range(n_buildings)], dtype=object)
    has_unit = np.bincount(building_of, minlength=n_buildings)[building_of] > 1
    addresses = pd.DataFrame({"address_key": address_ids,
                              "unit_type": np.where(has_unit, "APT", None),
                              "unit_number": np.where(has_unit, (np.arange(n_addresses) % 40).astype(str), None)})
    voter_address = rng.integers(0, n_addresses, n_voters)
    status = rng.choice(["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "po_box", "missing"], n_voters)
    keyed = status != "missing"
    voter_ids = np.array([f"NC{i:09d}" for i in range(n_voters)], dtype=object)
    links = pd.DataFrame({
        "voter_id": voter_ids,
        "address_key": np.where(keyed, address_ids[voter_address], None),
        "building_key": np.where(keyed, building_ids[building_of[voter_address]], None),
        "parse_status": status,
    })
    surnames = np.array([f"SURNAME{i}" for i in range(5000)], dtype=object)
    voters = pd.DataFrame({
        "voter_id": voter_ids,
        "status": rng.choice(["active", "active", "active", "inactive", "removed"], n_voters),
        "last_name": surnames[rng.integers(0, len(surnames), n_voters)],
        "party": rng.choice(np.array(["DEM", "REP", "UNA", "LIB", None], dtype=object), n_voters),
        "birth_date": pd.Series([None] * n_voters, dtype=object),
        "birth_year": rng.integers(1930, 2008, n_voters),
        "registered_on": pd.to_datetime("1990-01-01") + pd.to_timedelta(rng.integers(0, 12000, n_voters), "D"),
    })
    matched = rng.random(n_addresses) < 0.9
    geocodes = pd.DataFrame({
        "address_key": address_ids, "status": np.where(matched, "match", "no_match"),
        "lon": np.where(matched, -78.6 + rng.random(n_addresses), np.nan),
        "lat": np.where(matched, 35.7 + rng.random(n_addresses), np.nan),
        "state_fips": "37", "county_fips": "183",
        "tract": np.char.zfill((rng.integers(100, 900, n_addresses) * 100).astype(str), 6),
        "block_group": "1", "block": "1001",
        "congressional_district": "02", "state_senate_district": "016", "state_house_district": "033",
    })
    return voters, links, addresses, geocodes


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    n_voters = int(argv[0]) if argv else 1_000_000
    voters, links, addresses, geocodes = synthetic_frames(n_voters)

    start = time.perf_counter()
    links.groupby("address_key").size()
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    households, members = build_households(voters, links, addresses, geocodes, SNAPSHOT)
    seconds = time.perf_counter() - start
    results = {
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),  # other jobs share the cores
        "voters": n_voters,
        "households": len(households),
        "seconds": round(seconds, 2),
        "voters_per_s": round(n_voters / seconds),
        "baseline_groupby_size_seconds": round(baseline, 3),
        "ratio_to_baseline": round(seconds / baseline, 1),
        "target_seconds": 10,
    }
    record("households", results)
    return results


if __name__ == "__main__":
    main()
