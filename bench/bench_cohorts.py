"""Cohorts + report for a synthetic 1M-voter state with 6 elections of history (target < 20 s).

Tables are built in memory with numpy in the stage schemas, written as Parquet into a temporary
data tree, then timed: reading the inputs, analyse_cohorts + writing 06_cohorts, and the report.
Baseline (same run): a plain pandas merge + groupby computing state-level turnout by age band for
every election, the obvious way to write the same analysis; ratios are reported against it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.common import record
from voterpipe import catalog, cohorts, report, schema, storage
from voterpipe.manifests import FileRecord, ImportManifest

VOTERS = int(os.environ.get("BENCH_COHORT_VOTERS", 1_000_000))
SNAPSHOT = date(2026, 11, 1)
ELECTIONS = [
    (date(2018, 11, 6), "general"), (date(2020, 11, 3), "general"), (date(2022, 5, 17), "primary"),
    (date(2022, 11, 8), "general"), (date(2024, 3, 5), "primary"), (date(2024, 11, 5), "general"),
]


def synthetic_state(n: int, seed: int = 1) -> dict[str, pd.DataFrame]:
    """voters, history, voter_households, households, geocodes, rejects for `n` voters."""
    rng = np.random.default_rng(seed)
    snapshot_day = np.datetime64(SNAPSHOT, "D")
    counties = 100
    county = np.minimum(rng.zipf(1.3, n), counties) - 1
    birth = snapshot_day - (rng.integers(18 * 365, 95 * 365, n)).astype("timedelta64[D]")
    birth_date = pd.Series(birth.astype("datetime64[s]"))
    birth_date[rng.random(n) < 0.02] = pd.NaT
    placeholder = rng.random(n) < 0.003
    birth_date[placeholder] = pd.Timestamp("1800-01-01")
    birth_year = birth_date.dt.year.astype("Int16")
    adult = birth + np.timedelta64(18 * 365, "D")
    registered = adult + ((snapshot_day - adult).astype(np.int64) * rng.random(n) ** 1.5).astype("timedelta64[D]")
    registered_on = pd.Series(registered.astype("datetime64[s]"))
    registered_on[rng.random(n) < 0.01] = pd.NaT
    parties = np.array(["DEM", "REP", "UNA", "LIB", "GRE", "OTH"], dtype=object)
    party = parties[rng.choice(6, n, p=[0.35, 0.32, 0.29, 0.02, 0.01, 0.01])]
    statuses = np.array(["active", "inactive", "removed"], dtype=object)
    status = statuses[rng.choice(3, n, p=[0.86, 0.11, 0.03])]
    county_code = np.char.zfill(county.astype(str), 3).astype(object)
    cd = (county % 14 + 1).astype(str).astype(object)
    voters = pd.DataFrame({
        "voter_id": pd.Series(np.char.add("BM", np.char.zfill(np.arange(n).astype(str), 10))).astype(object),
        "county_code": county_code, "county_name": np.char.add("COUNTY ", county_code.astype(str)).astype(object),
        "birth_date": birth_date, "birth_year": birth_year, "party": party, "status": status,
        "registered_on": registered_on, "congressional_district": cd,
        "state_senate_district": (county % 50 + 1).astype(str).astype(object),
        "state_house_district": (county + rng.integers(0, 2, n) * 100 % 120 + 1).astype(str).astype(object),
        "source_file": "ncvoter_Statewide.txt",
    })

    age = (snapshot_day - birth).astype(np.int64) / 365.25
    propensity = np.clip(0.25 + age / 120 + rng.normal(0, 0.2, n), 0.02, 0.98)
    voter_rows, day_rows, type_rows = [], [], []
    for day, kind in ELECTIONS:
        eligible = np.isnat(registered) | (registered <= np.datetime64(day, "D"))
        chance = propensity * (1.0 if kind == "general" else 0.35) * (1.0 if day.year % 4 == 0 else 0.75)
        voted = np.flatnonzero(eligible & (rng.random(n) < chance))
        voter_rows.append(voted)
        day_rows.append(np.full(len(voted), np.datetime64(day, "D")))
        type_rows.append(np.full(len(voted), kind, dtype=object))
    index = np.concatenate(voter_rows)
    history = pd.DataFrame({
        "voter_id": voters["voter_id"].to_numpy()[index],
        "election_date": np.concatenate(day_rows).astype("datetime64[s]"),
        "election_type": np.concatenate(type_rows), "source_file": "ncvhis_Statewide.txt",
    })

    sizes = rng.choice([1, 2, 3, 4, 5, 6, 9], size=n, p=[0.38, 0.36, 0.13, 0.08, 0.03, 0.015, 0.005])
    household_of = np.repeat(np.arange(len(sizes)), sizes)[:n]
    households_n = household_of[-1] + 1
    household_ids = np.char.add("H", np.arange(households_n).astype(str)).astype(object)
    no_address = rng.random(n) < 0.01
    voter_households = pd.DataFrame({
        "voter_id": voters["voter_id"],
        "household_id": np.where(no_address, None, household_ids[household_of]),
    })
    counts = np.bincount(household_of, minlength=households_n)
    dem = np.bincount(household_of, weights=party == "DEM", minlength=households_n)
    rep = np.bincount(household_of, weights=party == "REP", minlength=households_n)
    mix = np.where((dem == counts) | (rep == counts) | (counts == 1), "single_party", "mixed").astype(object)
    households = pd.DataFrame({"household_id": household_ids, "voter_count": counts.astype(np.int32), "party_mix": mix})
    household_county = np.zeros(households_n, dtype=np.int64)
    household_county[household_of] = county
    matched = rng.random(households_n) < 0.93
    geocodes = pd.DataFrame({
        "address_key": household_ids,
        "status": np.where(matched, "match", "no_match").astype(object),
        "state_fips": "37",
        "county_fips": np.char.zfill((household_county * 2 + 1).astype(str), 3).astype(object),
        # about 22 tracts per county, 2,200 in the state (NC has about 2,670)
        "tract": np.char.zfill((rng.integers(1, 23, households_n) * 100).astype(str), 6).astype(object),
        "congressional_district": np.char.zfill((household_county % 14 + 1).astype(str), 2).astype(object),
        "state_senate_district": None, "state_house_district": None,
    })
    reasons = np.array(["wrong field count", "bad date in registr_dt", "missing ncid"], dtype=object)
    rejects = pd.DataFrame({"source_file": "ncvoter_Statewide.txt", "line_number": np.arange(n // 1000),
                            "reason": reasons[rng.integers(0, 3, n // 1000)]})
    return {"voters": voters, "history": history, "voter_households": voter_households,
            "households": households, "geocodes": geocodes, "rejects": rejects}


def _write(frame: pd.DataFrame, target: pa.Schema, path: Path) -> None:
    storage.write_parquet(schema.conform(pa.Table.from_pandas(frame, preserve_index=False), target), path)


def baseline_pandas_turnout(voters: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The obvious pandas version of one slice of the work: state turnout by age band per election."""
    ages = (pd.Timestamp(SNAPSHOT) - pd.to_datetime(voters["birth_date"])).dt.days // 365
    roll = voters[["voter_id", "registered_on"]].assign(age_band=pd.cut(ages, [0, 24, 34, 44, 54, 64, 74, 200]))
    out = []
    for (day, kind), votes in history.groupby(["election_date", "election_type"]):
        eligible = roll[roll["registered_on"].isna() | (roll["registered_on"] <= day)]
        merged = eligible.merge(votes[["voter_id"]].drop_duplicates().assign(voted=1), on="voter_id", how="left")
        out.append(merged.groupby("age_band", observed=True)["voted"].agg(["size", "count"]).assign(day=day))
    return pd.concat(out)


# each dataset's file name, from the catalogue
FILE = {name: entry.file for name, (_, entry) in catalog.DATASETS.items()}


def main() -> None:
    started = time.perf_counter()
    tables = synthetic_state(VOTERS)
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-cohorts-") as tmp:
        root = Path(tmp)
        canonical, households_dir, geocoded = root / "02", root / "05", root / "04"
        for directory in (canonical, households_dir, geocoded):
            directory.mkdir()
        _write(tables["voters"], schema.VOTERS, canonical / FILE["voters"])
        _write(tables["history"], schema.HISTORY, canonical / FILE["history"])
        _write(tables["rejects"], schema.REJECTS, canonical / FILE["rejects"])
        storage.write_manifest(canonical, ImportManifest(layout="nc_synthetic", files=[FileRecord(
            name="ncvoter_Statewide.txt", role="voters", sha256="0" * 64)]).to_json())
        _write(tables["voter_households"], schema.VOTER_HOUSEHOLDS, households_dir / FILE["voter_households"])
        _write(tables["households"], schema.HOUSEHOLDS, households_dir / FILE["households"])
        _write(tables["geocodes"], schema.GEOCODES, geocoded / FILE["geocodes"])
        storage.write_manifest(geocoded, {})
        history_rows = len(tables["history"])
        del tables

        def read(path: Path, columns: list[str]) -> pd.DataFrame:
            return storage.read_parquet(path, columns=columns).to_pandas(date_as_object=False)

        from voterpipe.tasks.cohorts import GEOCODE_COLUMNS, HISTORY_COLUMNS, VOTER_COLUMNS

        t0 = time.perf_counter()
        voters = read(canonical / FILE["voters"], VOTER_COLUMNS)
        history = read(canonical / FILE["history"], HISTORY_COLUMNS)
        voter_households = read(households_dir / FILE["voter_households"], ["voter_id", "household_id"])
        households = read(households_dir / FILE["households"], ["household_id", "voter_count", "party_mix"])
        geocodes = read(geocoded / FILE["geocodes"], GEOCODE_COLUMNS)
        t1 = time.perf_counter()
        config = cohorts.load_cohort_config()
        previous = None
        result = cohorts.analyse_cohorts(voters, history, voter_households, households, geocodes,
                                         state="nc", snapshot=SNAPSHOT, config=config, previous=previous)
        t2 = time.perf_counter()
        out = root / "06"
        out.mkdir()
        written = cohorts.cohort_arrow_tables(result, "nc", SNAPSHOT)
        for name, path in catalog.stage("cohorts").files_in(out).items():
            if name in written:
                storage.write_parquet(written[name], path)
        storage.write_manifest(out, cohorts.cohort_manifest(result, written, config).to_json())
        t_written = time.perf_counter()
        # A second snapshot's transitions against this one (1% churn) are part of the steady state;
        # building the stand-in previous table is not timed.
        previous_frame = result.voter_cohorts.sample(frac=0.99, random_state=1)
        t3 = time.perf_counter()
        transitions = cohorts.snapshot_transitions(previous_frame, result.voter_cohorts,
                                                   ["all", "age_band_default", "generation", "party", "turnout_cohort", "county_code"])
        t4 = time.perf_counter()
        sources = report.ReportSources.from_directories(state="nc", snapshot=SNAPSHOT, cohorts_dir=out,
                                                        canonical_dir=canonical, geocoded_dir=geocoded)
        sources.transitions = transitions.assign(previous_snapshot=pd.Timestamp("2026-10-25"))
        report_dir = root / "07"
        report_dir.mkdir()
        report.write_report(sources, report_dir, config)
        t5 = time.perf_counter()
        if os.environ.get("BENCH_COHORT_REPORT_DIR"):  # keep the report to look at
            shutil.copytree(report_dir, os.environ["BENCH_COHORT_REPORT_DIR"], dirs_exist_ok=True)
        base_start = time.perf_counter()
        baseline_pandas_turnout(voters, history)
        baseline = time.perf_counter() - base_start
        total = (t5 - t0) - (t3 - t_written)
        results = {
            "voters": VOTERS, "history_rows": history_rows, "elections": len(ELECTIONS),
            "synthetic_build_seconds": round(built, 2),
            "read_inputs_seconds": round(t1 - t0, 2),
            "analyse_cohorts_seconds": round(t2 - t1, 2),
            "write_cohort_tables_seconds": round(t_written - t2, 2),
            "transitions_seconds": round(t4 - t3, 2),
            "report_seconds": round(t5 - t4, 2),
            "total_seconds": round(total, 2),
            "target_seconds": 20,
            "meets_target": total < 20,
            "cohort_turnout_rows": written["cohort_turnout"].num_rows,
            "baseline_pandas_state_age_turnout_seconds": round(baseline, 2),
            "ratio_total_to_baseline": round(total / baseline, 2),
            "ratio_analyse_to_baseline": round((t2 - t1) / baseline, 2),
        }
    record("cohorts", results)


if __name__ == "__main__":
    main()
