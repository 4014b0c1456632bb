"""The cohort stage's analysis in parts (bounded memory) gives the same tables as the whole roll
analysed at once, on a random roll with the awkward cases: duplicate and orphan history rows,
uncounted ballots, null ids and labels, voters without households, unaligned household links."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from voterpipe import cohorts, schema
from voterpipe.cohorts import arrays
from voterpipe.cohorts.analysis import _SCHEMAS

SNAPSHOT = date(2026, 11, 8)
PREVIOUS = date(2026, 11, 1)
ELECTIONS = [(date(2018, 11, 6), "general"), (date(2020, 3, 3), "primary"), (date(2020, 11, 3), "general"),
             (date(2022, 11, 8), "general"), (date(2024, 11, 5), "general"), (date(2024, 11, 5), "municipal"),
             (date(2026, 3, 3), "primary"), (date(2026, 11, 20), "general")]  # the last is after the snapshot
VOTER_COLUMNS = ["voter_id", "county_code", "county_name", "birth_date", "birth_year", "party", "status",
                 "registered_on", "congressional_district", "state_senate_district", "state_house_district",
                 "precinct"]
GEOCODE_COLUMNS = ["address_key", "status", "state_fips", "county_fips", "tract", "congressional_district",
                   "state_senate_district", "state_house_district"]


@pytest.fixture(scope="module")
def config():
    return cohorts.load_cohort_config()


def _pick(rng, values, n, null_share=0.0):
    chosen = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
    chosen[rng.random(n) < null_share] = None
    return chosen


def _roll(rng, n: int) -> pd.DataFrame:
    counties = {"001": "ALAMANCE", "003": "ALLEGHANY", "005": "ANSON", "007": "ASHE"}
    county = _pick(rng, list(counties), n, 0.01)
    birth = np.array([date(1930, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 28000, n)], dtype=object)
    birth[rng.random(n) < 0.05] = None
    registered = np.array([date(1990, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 13100, n)],
                          dtype=object)
    registered[rng.random(n) < 0.03] = None
    registered[rng.random(n) < 0.02] = date(1900, 1, 1)  # placeholder
    ids = np.array([f"V{i:07d}" for i in rng.permutation(n * 3)[:n]], dtype=object)
    ids[rng.random(n) < 0.002] = None
    return pd.DataFrame({
        "voter_id": ids, "county_code": county,
        "county_name": [counties.get(c, "NO COUNTY") for c in county],
        "birth_date": pd.array(birth, dtype=object),
        "birth_year": pd.array([None if rng.random() < 0.3 else int(rng.integers(1920, 2008)) for _ in range(n)],
                               dtype="Int16"),
        "party": _pick(rng, ["DEM", "REP", "UNA", "LIB", "GRE", "CST"], n, 0.03),
        "status": _pick(rng, ["active", "inactive", "removed", "temporary"], n, 0.01),
        "registered_on": registered,
        "congressional_district": _pick(rng, ["1", "01", "4", "13", "13.0"], n, 0.1),
        "state_senate_district": _pick(rng, ["10", "22", "7"], n, 0.1),
        "state_house_district": _pick(rng, ["33", "101", "5"], n, 0.2),
        "precinct": _pick(rng, ["P1", "P2", "P17", "0804"], n, 0.05),
    })


def _history(rng, voters: pd.DataFrame) -> pd.DataFrame:
    rows = []
    ids = voters["voter_id"].tolist()
    for voter_id in ids + [f"X{i}" for i in range(40)] + [None] * 5:  # orphans and null ids
        for day, kind in ELECTIONS:
            if rng.random() < 0.45:
                rows.append((voter_id, day, kind, "not_counted" if rng.random() < 0.03 else None))
                if rng.random() < 0.05:
                    rows.append((voter_id, day, kind, None))  # a duplicate row
    rows.append((ids[0], None, "general", None))
    rows.append((ids[1], date(2024, 11, 5), None, None))
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order], columns=["voter_id", "election_date", "election_type",
                                                            "ballot_status"])


def _households(rng, voters: pd.DataFrame):
    n = len(voters)
    household = np.array([f"ADDR-{k:05d}" for k in rng.integers(0, n // 2, n)], dtype=object)
    household[rng.random(n) < 0.04] = None
    links = pd.DataFrame({"voter_id": voters["voter_id"], "household_id": household})
    keys = sorted({h for h in household if h is not None})
    sizes = pd.Series(household).value_counts()
    households = pd.DataFrame({"household_id": keys[:-3],  # a few voters' households are missing
                               "voter_count": [int(sizes[k]) for k in keys[:-3]],
                               "party_mix": _pick(rng, ["single_party", "mixed", None], len(keys) - 3)})
    geo_keys = keys[5:] + ["ADDR-NOT-A-HOUSEHOLD"]
    g = len(geo_keys)
    geocodes = pd.DataFrame({
        "address_key": geo_keys, "status": _pick(rng, ["match", "match", "no_match", "tie"], g),
        "state_fips": _pick(rng, ["37"], g), "county_fips": _pick(rng, ["001", "003"], g),
        "tract": _pick(rng, ["020100", "020200", "37001021300", "12"], g, 0.05),
        "congressional_district": _pick(rng, ["4", "13", "02"], g, 0.2),
        "state_senate_district": _pick(rng, ["10", "22"], g, 0.2),
        "state_house_district": _pick(rng, ["33", "5"], g, 0.3)})
    return links, households, geocodes


def _write(frame: pd.DataFrame, path, row_group_size: int = 700):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("birth_date", "registered_on", "election_date"):
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, table.column(name).cast(pa.date32()))
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.fixture(scope="module")
def roll(tmp_path_factory, config):
    rng = np.random.default_rng(17)
    where = tmp_path_factory.mktemp("bounded")
    voters = _roll(rng, 2500)
    history = _history(rng, voters)
    links, households, geocodes = _households(rng, voters)
    files = cohorts.CohortFiles(
        voters=_write(voters, where / "voters.parquet"), history=_write(history, where / "history.parquet", 1500),
        voter_households=_write(links, where / "voter_households.parquet", 1000),
        households=_write(households, where / "households.parquet"),
        geocodes=_write(geocodes, where / "geocodes.parquet"), voter_columns=VOTER_COLUMNS,
        geocode_columns=GEOCODE_COLUMNS)
    # the previous snapshot: most of the same voters, some moved or switched party, some new
    previous_voters = pd.concat([voters.iloc[200:], _roll(rng, 150)], ignore_index=True)
    previous_voters.loc[previous_voters.index[::17], "party"] = "REP"
    previous_history = _history(rng, previous_voters)
    previous, _, _ = cohorts.cohorts_for_roll(previous_voters, previous_history, PREVIOUS, config)
    previous["household_id"] = np.where(rng.random(len(previous)) < 0.1, "ADDR-ELSEWHERE",
                                        links["household_id"].reindex(range(len(previous))).to_numpy())
    return {"files": files, "voters": voters, "history": history, "links": links, "households": households,
            "geocodes": geocodes, "previous": previous}


def _whole(roll, config, links=None):
    return cohorts.analyse_cohorts(
        roll["voters"], roll["history"], roll["links"] if links is None else links, roll["households"],
        roll["geocodes"], state="nc", snapshot=SNAPSHOT, config=config, previous=roll["previous"],
        code_forms=cohorts.geography.code_forms("nc"))


def _in_parts(roll, config, files, voters_per_part):
    written = []
    previous = pa.Table.from_pandas(roll["previous"][[
        "voter_id", "status", "household_id", "party", "county_code", "age_band_default", "generation",
        "turnout_cohort"]], preserve_index=False)
    tables = cohorts.analyse_cohorts_in_parts(
        files, lambda part: written.append(cohorts.voter_cohorts_arrow(part)), state="nc", snapshot=SNAPSHOT,
        config=config, code_forms=cohorts.geography.code_forms("nc"), previous=previous,
        voters_per_part=voters_per_part)
    return tables, pa.concat_tables(written) if written else schema.empty_table(schema.VOTER_COHORTS)


def _assert_same(expected, got, voter_cohorts):
    assert voter_cohorts.equals(cohorts.voter_cohorts_arrow(expected.voter_cohorts))
    for name in [*list(_SCHEMAS)[1:], "transitions"]:
        want = cohorts.cohort_arrow_table(expected, name, "nc", SNAPSHOT, PREVIOUS)
        have = cohorts.cohort_arrow_table(got, name, "nc", SNAPSHOT, PREVIOUS)
        assert have.schema.equals(want.schema), name
        assert have.equals(want), name
    assert got.summary == expected.summary


@pytest.mark.parametrize("voters_per_part", [2500, 613, 97])
def test_parts_give_the_tables_of_the_whole_roll(roll, config, voters_per_part, monkeypatch):
    monkeypatch.setattr(arrays, "LOOKUP_SET_ROWS", 400)  # id lookups split into value ranges too
    expected = _whole(roll, config)
    got, voter_cohorts = _in_parts(roll, config, roll["files"], voters_per_part)
    assert voter_cohorts.num_rows == len(roll["voters"])
    assert len(expected.transitions) and expected.summary["history_rows_not_on_roll"] > 0
    _assert_same(expected, got, voter_cohorts)


def test_household_links_in_another_order_are_looked_up_by_voter_id(roll, config, tmp_path):
    shuffled = roll["links"].sample(frac=1.0, random_state=3).reset_index(drop=True)
    files = cohorts.CohortFiles(**{**roll["files"].__dict__,
                                   "voter_households": _write(shuffled, tmp_path / "links.parquet")})
    expected = _whole(roll, config, links=shuffled)
    got, voter_cohorts = _in_parts(roll, config, files, 400)
    _assert_same(expected, got, voter_cohorts)


def test_row_positions_split_by_value_ranges_match_one_lookup(monkeypatch):
    rng = np.random.default_rng(5)
    values = pa.array([None if rng.random() < 0.01 else f"id{v}" for v in rng.integers(0, 3000, 5000)])
    lookups = pa.array([None if rng.random() < 0.01 else f"id{v}" for v in rng.integers(0, 4000, 3000)])
    expected = pc.index_in(lookups, options=pc.SetLookupOptions(values, skip_nulls=True)) \
        .fill_null(-1).to_numpy(zero_copy_only=False)
    for rows in (64, 1000, 1 << 20):
        monkeypatch.setattr(arrays, "LOOKUP_SET_ROWS", rows)
        assert (arrays.row_positions(lookups, values) == expected).all()


def test_an_empty_roll_gives_empty_tables(roll, config, tmp_path):
    empty = {name: _write(roll[name].iloc[:0], tmp_path / f"{name}.parquet")
             for name in ("voters", "history", "links")}
    files = cohorts.CohortFiles(**{**roll["files"].__dict__, "voters": empty["voters"], "history": empty["history"],
                                   "voter_households": empty["links"]})
    got, voter_cohorts = _in_parts(roll, config, files, 100)
    assert voter_cohorts.num_rows == 0 and got.summary["voters"] == 0
    for name in [*list(_SCHEMAS)[1:], "transitions"]:
        table = cohorts.cohort_arrow_table(got, name, "nc", SNAPSHOT, PREVIOUS)
        assert table.schema.equals(_SCHEMAS.get(name, table.schema)), name
    assert cohorts.cohort_arrow_table(got, "cohort_turnout", "nc", SNAPSHOT).num_rows == 0
    removed = got.transitions[got.transitions["change"] == "removed"]
    assert removed.loc[removed["dimension"] == "all", "voters"].sum() == len(roll["previous"])


def test_a_county_whose_first_voter_has_no_name_takes_the_next_voters_name(roll, config, tmp_path):
    """The turnout table crashed on a null county name of a county's first voter (NaN is not a
    string); now the county is named by its first voter that has a name, whole or in parts."""
    voters = roll["voters"].copy()
    first = voters.drop_duplicates("county_code").index[:2]
    expected_names = {}
    for row in first:
        county = voters.loc[row, "county_code"]
        expected_names[county] = voters.loc[(voters.county_code == county) & (voters.index != row), "county_name"].iloc[0]
        voters.loc[row, "county_name"] = np.nan
    files = cohorts.CohortFiles(**{**roll["files"].__dict__, "voters": _write(voters, tmp_path / "voters.parquet")})
    expected = _whole({**roll, "voters": voters}, config)
    got, voter_cohorts = _in_parts({**roll, "voters": voters}, config, files, 300)
    turnout = cohorts.cohort_arrow_table(expected, "cohort_turnout", "nc", SNAPSHOT, PREVIOUS).to_pandas()
    coverage = cohorts.cohort_arrow_table(expected, "geocode_coverage", "nc", SNAPSHOT, PREVIOUS).to_pandas()
    for county, name in expected_names.items():
        assert set(turnout.loc[(turnout.geography_level == "county") & (turnout.geography == county),
                               "geography_name"]) == {name}
        assert coverage.set_index("county_code").loc[county, "county_name"] == name
    _assert_same(expected, got, voter_cohorts)  # the parts name them alike (their turnout is read once)


def test_packed_votes_give_the_votes_of_the_pairs(roll, config):
    """A roll in parts holds its votes as a bit per voter and election: the same voters voted."""
    from voterpipe.cohorts.votes import pack_votes, votes_of_voters

    votes = cohorts.index_votes(roll["voters"]["voter_id"], roll["history"], SNAPSHOT, config)
    packed = pack_votes(votes)
    assert packed.bits is not None and len(packed.voter_index) == 0 and len(votes.voter_index) > 0
    for start, stop in ((0, len(roll["voters"])), (100, 713), (2400, 2500)):
        pairs, bits = votes_of_voters(votes, start, stop), votes_of_voters(packed, start, stop)
        assert (pairs.has_history == bits.has_history).all()
        for election in votes.elections["election_id"]:
            assert (pairs.voted(election, stop - start) == bits.voted(election, stop - start)).all()
    few = cohorts.VoteIndex(elections=pd.DataFrame({"election_id": range(100)}), voter_index=np.array([3]),
                            election_id=np.array([7]), has_history=np.zeros(10, dtype=bool), generals=[])
    assert pack_votes(few) is few  # 13 bytes a voter would be more than the pairs


def test_distinct_votes_whose_keys_need_64_bits_match_a_sort():
    from voterpipe.cohorts.votes import _distinct_votes

    rng = np.random.default_rng(3)
    elections, voters = rng.integers(0, 9, 500).astype(np.int32), rng.integers(0, 40, 500).astype(np.int32)
    expected = np.unique(np.stack([elections, voters], axis=1), axis=0)
    for n in (40, 1 << 30):  # int32 keys, then keys beyond 2**31
        election_of, voter_of = _distinct_votes([elections.copy(), voters.copy()], n)
        assert (np.stack([election_of, voter_of], axis=1) == expected).all()


def test_spilled_rows_read_back_a_part_of_each_array():
    from voterpipe.cohorts.streamed import SpilledRows

    first, second = np.arange(10, dtype=np.int32), np.arange(10, dtype=np.int32)[::-1] - 3
    spilled = SpilledRows(10)
    spilled.append(first)
    spilled.append(second)
    got = spilled.rows(3, 8)
    spilled.close()
    assert [g.tolist() for g in got] == [first[3:8].tolist(), second[3:8].tolist()]
