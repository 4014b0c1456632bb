"""The report's bounded-memory paths (issue 17) give what the one-hash forms they replace give:
value-range lookups of households and votes (forced into many small ranges here), and
write_report leaves the caller's sources as they were while it lets its own copies go."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from voterpipe.cohorts import arrays
from voterpipe.report import geography, maps
from voterpipe.report.sources import ReportSources

DAYS = [date(2022, 11, 8), date(2024, 11, 5)]


@pytest.fixture(params=[1 << 20, 7], ids=["one hash", "many ranges"])
def lookup_rows(request, monkeypatch):
    monkeypatch.setattr(arrays, "LOOKUP_SET_ROWS", request.param)
    return request.param


def _roll(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "voter_id": pd.array(rng.choice([f"v{i}" for i in range(n)] + [None], n, replace=False), dtype="str"),
        "household_id": pd.array(rng.choice([f"h{i}" for i in range(n // 4)] + [None], n), dtype="str"),
        "county_code": pd.Categorical(rng.choice(["001", "003", None], n)),
        "tract": pd.Categorical(rng.choice(["37001000100", "37001000200", None], n)),
        "status": pd.Categorical(rng.choice(["active", "inactive"], n)),
        "party": pd.Categorical(rng.choice(["DEM", "REP", "UNA", None], n)),
        "registered_on": pd.to_datetime(rng.choice(["2020-01-01", "2024-01-01", None], n)),
    })


def test_household_numbers_number_each_household_once(lookup_rows):
    ids = _roll(1)["household_id"]
    numbers = geography.household_numbers(ids)
    first = {}
    for row, value in enumerate(ids):
        if isinstance(value, str):
            first.setdefault(value, row)
    if lookup_rows < len(ids):  # by value ranges: the row of the household's first voter
        assert list(numbers) == [first.get(v, -1) if isinstance(v, str) else -1 for v in ids]
    else:  # one hash: value_codes
        assert np.array_equal(numbers, geography.value_codes(ids))
    by_id = {v: n for v, n in zip(ids, numbers) if isinstance(v, str)}
    assert len(set(by_id.values())) == len(by_id) == len(first) and all(
        (n == -1) == (not isinstance(v, str)) for v, n in zip(ids, numbers))


def test_geography_tables_count_households_the_same_by_first_row_or_by_code(lookup_rows):
    voters = _roll(2)
    votes = pd.DataFrame({"voter_id": pd.array(voters["voter_id"].sample(150, random_state=1).tolist() + [None],
                                               dtype="str"),
                          "election_date": pd.to_datetime([DAYS[0]] * 100 + [DAYS[1]] * 51)})
    level = geography.Level("county", "By county", ("county_code",))
    tables = [geography.geography_table(voters, votes, DAYS, level, ("DEM", "REP"), counts=geography.voter_counts(
        voters, votes, DAYS, ("DEM", "REP"), household_codes=codes))
        for codes in (geography.value_codes(voters["household_id"]), geography.household_numbers(voters["household_id"]))]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[0]["households"].sum() > 0


def test_voted_is_membership_of_the_days_ids_nulls_matching_nulls(lookup_rows):
    voters = _roll(3)
    ids = voters["voter_id"].sample(200, random_state=2).tolist() + [None]
    votes = pd.DataFrame({"voter_id": pd.array(ids, dtype="str"),
                          "election_date": pd.to_datetime([DAYS[0]] * 120 + [DAYS[1]] * 81)})
    counts = geography.voter_counts(voters, votes, DAYS, ("DEM",))
    for day, on_day in ((DAYS[0], ids[:120]), (DAYS[1], ids[120:])):
        roll = pa.array(voters["voter_id"], from_pandas=True)
        expected = pc.is_in(roll, value_set=pa.array(on_day, pa.string()), skip_nulls=False).to_numpy(
            zero_copy_only=False)
        assert np.array_equal(counts[f"voted_{day}"].to_numpy(), expected)
    assert counts[f"voted_{DAYS[1]}"].any() and not counts[f"voted_{DAYS[1]}"].all()


def test_household_points_by_value_ranges_are_the_inner_join(lookup_rows):
    voters = _roll(4)
    keys = pd.Series(voters["household_id"].dropna().unique()).sample(40, random_state=3).tolist() + ["elsewhere"]
    rng = np.random.default_rng(4)
    points = pd.DataFrame({"address_key": pd.array(keys, dtype="str"), "lon": rng.random(len(keys)),
                           "lat": rng.random(len(keys))})
    empty = {k: pd.DataFrame() for k in ("cohort_turnout", "elections", "household_sizes", "household_party_mix",
                                         "geocode_coverage", "registrations")}
    got = maps.household_points(ReportSources(state="nc", snapshot=date(2026, 11, 1), voter_geography=voters,
                                              points=points, **empty))
    homes = voters.dropna(subset=["household_id"]).drop_duplicates("household_id")
    expected = homes.merge(points, left_on="household_id", right_on="address_key")[got.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == 40
