"""The report's faster paths (issue 17) give what the plain pandas/numpy forms they replace give:
area codes, map area names, households' first voters, probed lookups, the changes' id match, the
previous roll out of voters.parquet order, row-group reads and general votes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe.report import changes, geography, maps, sources
from voterpipe.report.changes import previous_roll, voter_changes
from voterpipe.report.sources import ReportSources, read_rows


def _sources(voters: pd.DataFrame, points: pd.DataFrame) -> ReportSources:
    empty = {k: pd.DataFrame() for k in ("cohort_turnout", "elections", "household_sizes", "household_party_mix",
                                         "geocode_coverage", "registrations")}
    return ReportSources(state="nc", snapshot=date(2026, 11, 1), voter_geography=voters, points=points, **empty)


@pytest.mark.parametrize("span", [50, 10_000_000])  # counted, and sorted (codes far apart)
def test_sorted_codes_are_numpys_unique(span):
    combined = np.random.default_rng(span).integers(0, span, 5000)
    uniques, inverse = geography._sorted_codes(combined)
    expected, expected_inverse = np.unique(combined, return_inverse=True)
    assert np.array_equal(uniques, expected) and np.array_equal(inverse, expected_inverse)


def test_area_codes_decode_every_key_of_a_two_key_level():
    rng = np.random.default_rng(3)
    voters = pd.DataFrame({"county_code": rng.choice(["001", "003", None, " "], 400),
                           "precinct": rng.choice(["P1", "P10", "P2", None], 400)}).astype("category")
    area, keys = geography._area_codes(voters, geography.LEVELS[-1], "unknown")
    pairs = voters.astype(object).where(voters.notna(), "unknown").replace(" ", "unknown")
    assert keys.to_dict("records") == sorted(keys.to_dict("records"), key=lambda r: (r["county_code"], r["precinct"]))
    assert [tuple(keys.iloc[a]) for a in area] == list(map(tuple, pairs.to_numpy()))


def test_sorted_names_are_numpys_unique_of_the_names():
    names = np.array(pd.Series(np.random.default_rng(1).choice(["b", "a", "10", "9", "nan"], 300)), dtype=object)
    areas, codes = maps._sorted_names(names)
    expected, expected_codes = np.unique(names, return_inverse=True)
    assert list(areas) == list(expected) and np.array_equal(codes, expected_codes)


def _points_roll(seed: int, duplicate_point: bool = False):
    rng = np.random.default_rng(seed)
    households = [f"h{i}" for i in range(60)]
    voters = pd.DataFrame({"household_id": pd.array(rng.choice(households + [None], 500), dtype="str"),
                           "county_code": pd.Categorical(rng.choice(["001", "003"], 500)),
                           "tract": pd.Categorical(rng.choice(["37001000100", "37001000200", None], 500))})
    keys = rng.choice(households + ["elsewhere"], 45, replace=False).tolist()
    if duplicate_point:
        keys.append(keys[0])
    points = pd.DataFrame({"address_key": pd.array(keys, dtype="str"), "lon": rng.random(len(keys)),
                           "lat": rng.random(len(keys))})
    return voters, points


@pytest.mark.parametrize("duplicate_point", [False, True])
def test_household_points_are_the_inner_join_of_each_households_first_voter(duplicate_point):
    voters, points = _points_roll(7, duplicate_point)
    got = maps.household_points(_sources(voters, points))
    homes = voters.dropna(subset=["household_id"]).drop_duplicates("household_id")
    expected = homes.merge(points, left_on="household_id", right_on="address_key")[got.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) and got["household_id"].is_unique != duplicate_point


def test_first_match_is_a_reindex_of_the_first_rows():
    keys = pd.Series(["a", "b", "a", None, "c", "d"], dtype="str")
    values = pd.Series(pd.Categorical(["A1", "B", "A2", "N", "C", None]))
    probe = pd.Series(["c", "a", "zz", None, "a", "d"], dtype="str")
    got = maps._first_match(probe, keys, values)
    assert list(got) == ["C", "A1", None, None, "A1", None]


def test_id_match_finds_previous_rows_and_removals_and_refuses_repeated_ids():
    previous, current = pa.array(["a", "b", "c", "d"]), pa.array(["c", "x", "a"])
    at, gone = changes._id_match(previous, current)
    assert at.to_pylist() == [2, None, 0] and gone.to_pylist() == [False, True, False, True]
    assert changes._id_match(pa.array(["a", "a"]), current) is None
    assert changes._id_match(previous, pa.array(["c", "c"])) is None
    assert changes._id_match(previous, pa.array(["c", None])) is None


def test_voter_changes_on_arrow_backed_rolls_equal_the_merge():
    rng = np.random.default_rng(5)
    ids = [f"v{i}" for i in range(300)]
    before = pd.DataFrame({"voter_id": ids, "county_code": rng.choice(["001", "003"], 300),
                           "county_name": "X", "status": rng.choice(["active", "inactive", "removed"], 300),
                           "party": rng.choice(["DEM", "REP", "unknown", None], 300),
                           "household_id": rng.choice(["k1", "k2", "k3", None], 300)})
    after = before.sample(frac=0.9, random_state=1).copy()
    after["party"] = rng.choice(["DEM", "REP", None], len(after))
    after = pd.concat([after, before.head(5).assign(voter_id=[f"n{i}" for i in range(5)])], ignore_index=True)
    arrow_backed = [frame.astype({c: "str" for c in frame.columns}) for frame in (before, after)]
    fast = voter_changes(*arrow_backed)
    merged = changes._voter_changes_merged(before, after)
    pd.testing.assert_frame_equal(fast.astype(object).where(fast.notna(), None),
                                  merged.astype(object).where(merged.notna(), None))


def test_previous_roll_out_of_order_and_with_repeated_ids():
    voters = pd.DataFrame({"voter_id": ["a", "b", "c"], "county_code": "001", "county_name": "X",
                           "status": ["active", "active", "removed"], "party": "DEM"})
    links = pd.DataFrame({"voter_id": ["c", "a", "b"], "address_key": ["K3", "K1", None],
                          "building_key": "B", "parse_status": ["ok", "ok", "ok"]})
    roll = previous_roll(voters, links)
    assert roll["voter_id"].tolist() == ["a", "b", "c"]
    assert roll["household_id"].tolist()[:1] == ["K1"] and roll["household_id"].isna().tolist()[1:] == [True, True]
    with pytest.raises(ValueError, match="not unique"):
        previous_roll(voters, pd.concat([links, links.head(1)]))


def test_read_rows_equals_a_filtered_read(tmp_path):
    table = pa.table({"level": ["state", "tract", "county", "state", "tract"] * 40, "n": list(range(200))})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=30)
    filters = [("level", "=", "state")]
    assert read_rows(path, filters).equals(pq.read_table(path, filters=filters))
    assert read_rows(path, filters, ["n"]).equals(pq.read_table(path, columns=["n"], filters=filters))


def test_general_votes_are_distinct_counted_votes_of_the_generals(tmp_path):
    days = [date(2022, 11, 8), date(2024, 11, 5), date(2024, 3, 5)]
    history = pa.table({"voter_id": ["a", "a", "b", "b", "c", "d", "a"],
                        "election_date": pa.array([days[1], days[1], days[0], days[2], days[1], days[1], days[0]]),
                        "election_type": ["general", "general", "general", "primary", "general", "general", "general"],
                        "ballot_status": ["counted", "counted", None, "counted", "not_counted", "counted", "counted"]})
    (tmp_path / "02").mkdir()
    pq.write_table(history, tmp_path / "02" / sources.CANONICAL.dataset("history").file)
    votes = sources._general_votes(tmp_path / "02", days[:2])
    pairs = list(zip(votes["voter_id"], pd.to_datetime(votes["election_date"]).dt.date))
    assert pairs == [("a", days[1]), ("b", days[0]), ("d", days[1]), ("a", days[0])]
