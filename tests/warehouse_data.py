"""Synthetic upstream tables (02_canonical .. 06_cohorts) for warehouse tests and benchmarks.

Two voters share each address/household. Everything is generated, nothing is personal data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from voterpipe import schema, storage

SURNAMES = np.array(["SMITH", "JOHNSON", "O'BRIEN", "GARCIA", "NGUYEN", "MÜLLER", "BROWN", "LEE"])
FIRST = np.array(["ANA", "BEN", "CHLOE", "DMITRI", "EVA", "FARID", "GUS", "HANA"])
STREETS = np.array(["MAIN ST", "OAK AVE", "N ELM RD", "CEDAR LN", "1ST ST", "PARK BLVD"])
PARTIES = np.array(["DEM", "REP", "UNA", "LIB"])
VOTER_COHORTS_FALLBACK = pa.schema([("voter_id", pa.string()), ("age_band", pa.string()),
                                    ("generation", pa.string()), ("tenure_band", pa.string())])
COHORT_TURNOUT_FALLBACK = pa.schema([
    ("election_date", pa.date32()), ("election_type", pa.string()),
    ("geography_level", pa.string()), ("geography", pa.string()), ("dimension", pa.string()),
    ("cohort", pa.string()), ("registered", pa.int64()), ("voted", pa.int64()),
    ("turnout", pa.float64()),
])

# values that break naive COPY text/CSV encoders
HOSTILE = ["O'Brien \"Bud\"", "tab\there", "back\\slash\\N", "new\nline", "cr\r\nlf", "\\.",
           "comma, \"quoted\"", "nul\x00byte", "", "ünïcødé ✓"]


def _ids(prefix: str, n: int, offset: int = 0) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(offset, offset + n).astype(str)))


def _pick(values: np.ndarray, n: int, rng: np.random.Generator) -> pa.Array:
    return pa.array(values[rng.integers(0, len(values), n)])


def _sometimes(values: pa.Array, filled: float, rng: np.random.Generator) -> pa.Array:
    """`values` with about (1 - filled) of them null, as a real roll leaves optional fields."""
    return pa.array(values.to_numpy(zero_copy_only=False), mask=rng.random(len(values)) >= filled)


def upstream_tables(state: str, snapshot: date, voters: int, seed: int = 1,
                    history_per_voter: int = 1, hostile: bool = False) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    n = voters
    n_addr = (n + 1) // 2
    voter_id = _ids(f"{state.upper()}", n)
    addr_index = np.arange(n) // 2
    address_key = _ids("a", n_addr)
    building_key = pa.array(np.char.add("b", (np.arange(n_addr) // 4).astype(str)))
    county = rng.integers(1, 100, n_addr)
    county_fips = pa.array(np.char.zfill(county.astype(str), 3))
    tract = pa.array(np.char.zfill(rng.integers(100, 9999, n_addr).astype(str), 6))
    birth_year = rng.integers(1930, 2007, n).astype(np.int16)
    last = _pick(SURNAMES, n, rng)
    first = _pick(FIRST, n, rng)
    line = pa.array(np.char.add(np.char.add((addr_index + 1).astype(str), " "),
                                STREETS[addr_index % len(STREETS)]))
    if hostile:
        k = min(n, len(HOSTILE))
        last = pa.array(HOSTILE[:k] + last.to_pylist()[k:])
        line = pa.array(list(reversed(HOSTILE))[:k] + line.to_pylist()[k:])
    snap = pa.array(np.full(n, snapshot, dtype="datetime64[D]")).cast(pa.date32())
    voters_table = schema.conform(pa.table({
        "state": pa.array([state] * n), "snapshot": snap, "voter_id": voter_id,
        "county_code": pa.array(np.char.zfill((addr_index % 100).astype(str), 3)),
        "county_name": _pick(np.array(["ALAMANCE", "BUNCOMBE", "WAKE"]), n, rng),
        "last_name": last, "first_name": first,
        # filled about as often as in a real NC roll (the fields NC leaves empty stay null)
        "middle_name": _sometimes(_pick(FIRST, n, rng), 0.8, rng),
        "name_suffix": _sometimes(_pick(np.array(["JR", "SR", "III"]), n, rng), 0.02, rng),
        "birth_year": pa.array(birth_year),
        "birth_date": pa.array((birth_year.astype("int64") - 1970) * 365, pa.int32()).cast(pa.date32()),
        "gender": _pick(np.array(["M", "F", "U"]), n, rng),
        "party": _pick(PARTIES, n, rng), "party_raw": _pick(PARTIES, n, rng),
        "status": _pick(np.array(["active", "inactive"]), n, rng),
        "status_raw": _pick(np.array(["A", "I"]), n, rng),
        "registered_on": snap,
        "res_address_line": line, "res_city": _pick(np.array(["RALEIGH", "DURHAM"]), n, rng),
        "res_state": pa.array([state.upper()] * n), "res_zip5": pa.array(["27601"] * n),
        "res_zip4": _sometimes(pa.array(np.char.zfill((addr_index % 9999).astype(str), 4)), 0.15, rng),
        **_mail_columns(n, rng),
        "precinct": _pick(np.array(["01", "02", "03A"]), n, rng),
        "congressional_district": _pick(np.array(["1", "2", "13"]), n, rng),
        "state_senate_district": _pick(np.array(["4", "15", "38"]), n, rng),
        "state_house_district": _pick(np.array(["12", "33", "101"]), n, rng),
        "source_file": pa.array(["ncvoter_statewide.txt"] * n),
        "source_line": pa.array(np.arange(2, n + 2)),
    }), schema.VOTERS)

    h = n * history_per_voter
    history = schema.conform(pa.table({
        "state": pa.array([state] * h), "snapshot": pa.array(np.full(h, snapshot, dtype="datetime64[D]")).cast(pa.date32()),
        "voter_id": pa.array(np.repeat(np.asarray(voter_id), history_per_voter)),
        "election_date": pa.array(np.full(h, np.datetime64("2024-11-05"))).cast(pa.date32()),
        "election_type": pa.array(["general"] * h),
        "voting_method": _pick(np.array(["in_person", "early", "absentee"]), h, rng),
    }), schema.HISTORY)

    addresses = schema.conform(pa.table({
        "address_key": address_key, "building_key": building_key,
        "raw_address": pa.array(np.asarray(line)[::2]) if not hostile else pa.array(line.to_pylist()[::2]),
        "house_number": pa.array((np.arange(n_addr) * 2 + 1).astype(str)),
        "street_name": pa.array(STREETS[np.arange(n_addr) % len(STREETS)]),
        "city": pa.array(["RALEIGH"] * n_addr), "state": pa.array([state.upper()] * n_addr),
        "zip5": pa.array(["27601"] * n_addr),
        "standardized_line": pa.array(np.asarray(line)[::2]) if not hostile else pa.array(line.to_pylist()[::2]),
        "parse_status": pa.array(["ok"] * n_addr),
        "voter_count": pa.array(np.full(n_addr, 2, dtype=np.int32)),
    }), schema.ADDRESSES)
    voter_addresses = schema.conform(pa.table({
        "voter_id": voter_id, "address_key": address_key.take(pa.array(addr_index)),
        "building_key": building_key.take(pa.array(addr_index)), "parse_status": pa.array(["ok"] * n),
    }), schema.VOTER_ADDRESSES)
    geocodes = schema.conform(pa.table({
        "address_key": address_key, "status": pa.array(["match"] * n_addr),
        "match_type": pa.array(["exact"] * n_addr),
        "lon": pa.array(rng.uniform(-84, -76, n_addr)), "lat": pa.array(rng.uniform(34, 36.5, n_addr)),
        "tiger_line_id": pa.array(rng.integers(1, 10**9, n_addr)),
        "side": _pick(np.array(["L", "R"]), n_addr, rng),
        "state_fips": pa.array(["37"] * n_addr), "county_fips": county_fips, "tract": tract,
        "block_group": pa.array(["1"] * n_addr), "block": pa.array(["1001"] * n_addr),
        "backend": pa.array(["tiger"] * n_addr),
        "congressional_district": _pick(np.array(["1", "2", "13"]), n_addr, rng),
        "state_senate_district": _pick(np.array(["4", "15", "38"]), n_addr, rng),
        "state_house_district": _pick(np.array(["12", "33", "101"]), n_addr, rng),
    }), schema.GEOCODES)
    households = schema.conform(pa.table({
        "household_id": address_key, "building_key": building_key,
        "voter_count": pa.array(np.full(n_addr, 2, dtype=np.int32)),
        "party_mix": _pick(np.array(["single_party", "mixed"]), n_addr, rng),
        "likely_group_quarters": pa.array(np.zeros(n_addr, dtype=bool)),
        "building_multi_unit": pa.array(np.arange(n_addr) % 5 == 0),
        "geocode_status": pa.array(["match"] * n_addr),
        "county_fips": county_fips, "tract": tract, "block_group": pa.array(["1"] * n_addr),
    }), schema.HOUSEHOLDS)
    voter_households = schema.conform(pa.table({
        "voter_id": voter_id, "household_id": address_key.take(pa.array(addr_index)),
        "building_key": building_key.take(pa.array(addr_index)),
    }), schema.VOTER_HOUSEHOLDS)
    cohort_schema = getattr(schema, "VOTER_COHORTS", None) or VOTER_COHORTS_FALLBACK
    bands = np.array(["18-25", "26-40", "41-65", "66+"])
    voter_cohorts = schema.conform(pa.table({
        "voter_id": voter_id, "age_band_default": _pick(bands, n, rng), "age_band": _pick(bands, n, rng),
        "age": pa.array((2026 - birth_year).astype(np.int16)),
        "age_method": pa.array(["birth_year"] * n),
        "age_band_ncsbe": _pick(np.array(["18-25", "26-40", "41-65", "66+"]), n, rng),
        "age_band_cps": _pick(np.array(["18-24", "25-44", "45-64", "65+"]), n, rng),
        "generation": _pick(np.array(["Gen Z", "Millennial", "Gen X", "Boomer"]), n, rng),
        "tenure_years": pa.array(rng.integers(0, 40, n).astype(np.int16)),
        "tenure_band": _pick(np.array(["<2y", "2-5y", "5y+"]), n, rng),
        "generals_eligible": pa.array(np.full(n, 4, np.int8)),
        "generals_voted": pa.array(rng.integers(0, 5, n).astype(np.int8)),
        "turnout_cohort": _pick(np.array(["super_voter", "consistent", "sporadic", "lapsed"]), n, rng),
        "household_size": pa.array(np.full(n, 2, np.int32)),
        "geocoded": pa.array(np.ones(n, bool)),
        "district_source": pa.array(["geocode"] * n),
    }), cohort_schema)
    turnout_schema = getattr(schema, "COHORT_TURNOUT", None) or COHORT_TURNOUT_FALLBACK
    cohort_turnout = schema.conform(pa.table({
        "dimension": pa.array(["age_band_default"] * 4), "cohort": pa.array(bands),
        "election_date": pa.array([date(2024, 11, 5)] * 4, pa.date32()),
        "election_type": pa.array(["general"] * 4), "geography_level": pa.array(["state"] * 4),
        "geography": pa.array(["nc"] * 4), "registered": pa.array([10, 20, 30, 40], pa.int64()),
        "voted": pa.array([5, 10, 20, 35], pa.int64()),
        "turnout": pa.array([0.5, 0.5, 2 / 3, 0.875]),
    }), turnout_schema)
    return {"voters": voters_table, "history": history, "addresses": addresses,
            "voter_addresses": voter_addresses, "geocodes": geocodes, "households": households,
            "voter_households": voter_households, "voter_cohorts": voter_cohorts,
            "cohort_turnout": cohort_turnout}


def _mail_columns(n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """A mailing address for about four voters in five, as in NC's roll."""
    has_mail = rng.random(n) < 0.81
    boxes = np.char.add("PO BOX ", rng.integers(1, 9999, n).astype(str))
    return {"mail_address_line": pa.array(boxes, mask=~has_mail),
            "mail_city": pa.array(np.full(n, "RALEIGH"), mask=~has_mail),
            "mail_state": pa.array(np.full(n, "NC"), mask=~has_mail),
            "mail_zip": pa.array(np.full(n, "27602"), mask=~has_mail)}


def write_upstream(root: Path, state: str, snapshot: date, tables: dict[str, pa.Table],
                   voter_file: bool = True) -> None:
    """Write the tables where the upstream stages publish them, each directory with a manifest,
    then (voter_file) build the voter file from them as BuildVoterFile does."""
    from voterpipe.warehouse.enriched import write_voters_enriched
    from voterpipe import catalog
    from voterpipe.warehouse.tables import ENRICHED_INPUTS, PUBLISH_SOURCES, source_files

    from voterpipe.tasks.base import task_class

    by_dir: dict[Path, list[str]] = {}
    stages: dict[Path, str] = {}
    for name in (*ENRICHED_INPUTS, *PUBLISH_SOURCES):  # the voter file after what it is built from
        stage, dataset = catalog.dataset(name)
        directory = stage.directory(state, snapshot, root)
        if dataset.file in by_dir.get(directory, []):
            continue
        directory.mkdir(parents=True, exist_ok=True)
        if name == "voters_enriched":
            if not voter_file:
                continue
            write_voters_enriched(source_files(state, snapshot, root, ENRICHED_INPUTS), directory / dataset.file)
        else:
            storage.write_parquet(tables[name], directory / dataset.file)
        by_dir.setdefault(directory, []).append(dataset.file)
        stages[directory] = stage.name
    for directory, files in by_dir.items():
        # the fingerprint the stage's task expects, so the tasks downstream take it as complete
        task = task_class(stages[directory])(state=state, snapshot=snapshot)
        storage.write_manifest(directory, {"state": state, "snapshot": snapshot.isoformat(),
                                           "files": sorted(files), "synthetic": True,
                                           "fingerprint": task.fingerprint().to_json()})
