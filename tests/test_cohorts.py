"""Cohort analysis on hand-built tables: every expected number below was worked out by hand."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from voterpipe import catalog, cohorts, schema, storage
from voterpipe.ages import MAX_PLAUSIBLE_AGE, MIN_PLAUSIBLE_AGE
from voterpipe.manifests import CohortManifest

SNAPSHOT = date(2026, 11, 1)
G20, G22, G24, P24 = date(2020, 11, 3), date(2022, 11, 8), date(2024, 11, 5), date(2024, 3, 5)


@pytest.fixture(scope="module")
def config():
    return cohorts.load_cohort_config()


def _voters() -> pd.DataFrame:
    # id, birth_date, birth_year, party, registered_on, county, state-file CD
    rows = [
        ("v1", date(1990, 6, 15), None, "DEM", date(2010, 1, 1), "001", "1"),
        ("v2", None, 1950, "REP", date(2015, 5, 5), "001", "1"),
        ("v3", date(2000, 1, 1), None, "DEM", date(2021, 3, 1), "001", "1"),
        ("v4", date(1985, 12, 31), None, "UNA", date(2025, 2, 1), "002", "2"),
        ("v5", None, None, None, date(2012, 7, 4), "002", "2"),
        ("v6", date(1800, 1, 1), None, "REP", date(2019, 1, 1), "002", "2"),  # placeholder birth
        ("v7", date(1960, 3, 3), None, "DEM", date(2022, 10, 1), "003", "3"),
        ("v8", date(1975, 7, 7), None, "REP", None, "003", "3"),  # no registration date
        ("v9", date(2008, 5, 1), None, "UNA", date(2024, 6, 1), "003", "3"),
        ("v10", date(1940, 11, 2), None, "DEM", date(2024, 11, 20), "001", "1"),  # date reset after voting
    ]
    frame = pd.DataFrame(rows, columns=["voter_id", "birth_date", "birth_year", "party", "registered_on",
                                        "county_code", "congressional_district"])
    frame["state"] = "nc"
    frame["snapshot"] = SNAPSHOT
    frame["county_name"] = frame["county_code"].map({"001": "ALAMANCE", "002": "ALEXANDER", "003": "ALLEGHANY"})
    frame["status"] = "active"
    frame["state_senate_district"] = "10"
    frame["state_house_district"] = None
    frame["birth_year"] = frame["birth_year"].astype("Int16")
    return frame


def _history() -> pd.DataFrame:
    votes = {
        "v1": [G20, G22, G24, G24],  # duplicate row for G24 must count once
        "v2": [G20, G24],
        "v3": [G22],
        "v6": [G24],
        "v7": [G22, G24],
        "v9": [G24],
        "v10": [G20, G22, G24],
        "x99": [G24],  # not on the roll
    }
    rows = [(vid, day, "general") for vid, days in votes.items() for day in days]
    rows.append(("v8", P24, "primary"))
    frame = pd.DataFrame(rows, columns=["voter_id", "election_date", "election_type"])
    frame["state"] = "nc"
    return frame


def _households() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    members = {"A": ["v1", "v3"], "B": ["v2"], "C": ["v4", "v6"], "D": ["v7", "v8", "v9"], "E": ["v10"]}
    voter_households = pd.DataFrame(
        [(v, h, h) for h, vs in members.items() for v in vs] + [("v5", None, None)],
        columns=["voter_id", "household_id", "building_key"])
    households = pd.DataFrame({
        "household_id": list(members),
        "voter_count": [len(v) for v in members.values()],
        "party_mix": ["single_party", "single_party", "mixed", "mixed", "single_party"],
    })
    geocodes = pd.DataFrame({
        "address_key": ["A", "B", "C", "D"],
        "status": ["match", "no_match", "match", "match"],
        "state_fips": ["37", None, "37", "37"],
        "county_fips": ["001", None, "003", "005"],
        "tract": ["020100", None, "37003000100", "990000"],
        "congressional_district": ["04", None, None, "03"],
        "state_senate_district": ["11", None, None, None],
        "state_house_district": ["063", None, None, None],
    })
    return voter_households, households, geocodes


@pytest.fixture(scope="module")
def tables(config):
    voter_households, households, geocodes = _households()
    return cohorts.analyse_cohorts(_voters(), _history(), voter_households, households, geocodes,
                                   state="nc", snapshot=SNAPSHOT, config=config)


def _by_voter(tables, column):
    frame = tables.voter_cohorts
    return dict(zip(frame["voter_id"], frame[column].astype(object)))


def test_turnout_cohorts_follow_the_written_rules(tables):
    assert _by_voter(tables, "turnout_cohort") == {
        "v1": "super_voter", "v2": "consistent", "v3": "sporadic", "v4": "new_registrant",
        "v5": "never_voted", "v6": "sporadic", "v7": "consistent", "v8": "lapsed",
        "v9": "consistent", "v10": "super_voter",
    }
    assert _by_voter(tables, "generals_eligible") == {
        "v1": 3, "v2": 3, "v3": 2, "v4": 0, "v5": 3, "v6": 3, "v7": 2, "v8": 3, "v9": 1, "v10": 3}
    assert _by_voter(tables, "generals_voted") == {
        "v1": 3, "v2": 2, "v3": 1, "v4": 0, "v5": 0, "v6": 1, "v7": 2, "v8": 0, "v9": 1, "v10": 3}
    assert tables.summary["generals_considered"] == [G20.isoformat(), G22.isoformat(), G24.isoformat()]
    assert tables.summary["history_rows_not_on_roll"] == 1


def test_ages_bands_generations_and_unknown_cohort(tables):
    assert _by_voter(tables, "age_band_default") == {
        "v1": "35-44", "v2": "75+", "v3": "25-34", "v4": "35-44", "v5": "unknown", "v6": "unknown",
        "v7": "65-74", "v8": "45-54", "v9": "18-24", "v10": "75+"}
    assert _by_voter(tables, "age_band_ncsbe")["v7"] == "Age Over 66"
    assert _by_voter(tables, "age_band_ncsbe")["v4"] == "Age 26 - 40"
    assert _by_voter(tables, "age_band_cps")["v8"] == "45-64"
    ages = _by_voter(tables, "age")
    assert ages["v10"] == 85 and ages["v9"] == 18 and pd.isna(ages["v5"]) and pd.isna(ages["v6"])
    methods = _by_voter(tables, "age_method")
    assert methods["v1"] == "birth_date" and methods["v2"] == "birth_year" and methods["v6"] == "unknown"
    generations = _by_voter(tables, "generation")
    assert generations["v2"] == "Baby Boomers (1946-1964)"
    assert generations["v3"] == generations["v9"] == "Generation Z (1997 onward)"
    assert generations["v10"] == "Silent (1928-1945)"
    assert generations["v5"] == generations["v6"] == "unknown"
    assert _by_voter(tables, "tenure_band")["v1"] == "10-19 years"
    assert _by_voter(tables, "tenure_band")["v8"] == "unknown"
    assert _by_voter(tables, "party")["v5"] == "unknown"


def _turnout(tables, election, level="state", dimension="all", cohort="all", geography=None):
    frame = tables.cohort_turnout
    mask = ((frame["election_date"] == pd.Timestamp(election)) & (frame["geography_level"] == level)
            & (frame["dimension"] == dimension) & (frame["cohort"] == cohort))
    if geography is not None:
        mask &= frame["geography"] == geography
    picked = frame[mask]
    assert len(picked) == 1, picked
    return int(picked["registered"].iloc[0]), int(picked["voted"].iloc[0])


def test_denominator_is_registered_as_of_each_election(tables):
    # G20: registered by then v1 v2 v5 v6 + v8 (no date) + v10 (voted) = 6; voted v1 v2 v10.
    assert _turnout(tables, G20) == (6, 3)
    # G22: + v3 (2021) + v7 (Oct 2022) = 8; voted v1 v3 v7 v10.
    assert _turnout(tables, G22) == (8, 4)
    # G24: all but v4 (2025) = 9; voted v1 v2 v6 v7 v9 v10 (duplicate and orphan rows ignored).
    assert _turnout(tables, G24) == (9, 6)
    # Primary: v10 and v9 registered only later and did not vote in it.
    assert _turnout(tables, P24) == (7, 1)
    row = tables.cohort_turnout[(tables.cohort_turnout["election_date"] == pd.Timestamp(G24))
                               & (tables.cohort_turnout["geography_level"] == "state")
                               & (tables.cohort_turnout["dimension"] == "all")]
    assert row["turnout"].iloc[0] == pytest.approx(6 / 9)


def test_turnout_by_county_district_and_cohort(tables):
    assert _turnout(tables, G24, "county", geography="001") == (4, 3)
    assert _turnout(tables, G24, "county", geography="002") == (2, 1)
    assert _turnout(tables, G24, "county", geography="003") == (3, 2)
    # Age as of election day: v9 was 16 on 5 Nov 2024.
    assert _turnout(tables, G24, dimension="age_band_default", cohort="16-17") == (1, 1)
    assert _turnout(tables, G24, dimension="party", cohort="DEM") == (4, 3)  # v1 v3 v7 v10
    # CD: household A geocoded to '04' (wins over the file's '1'); B no match and E not geocoded
    # fall back to the file's '1'; D geocoded '03'; C matched without districts -> file '2'.
    assert _turnout(tables, G24, "congressional_district", geography="4") == (2, 1)  # v1 v3
    assert _turnout(tables, G24, "congressional_district", geography="1") == (2, 2)  # v2 v10
    assert _turnout(tables, G24, "congressional_district", geography="2") == (2, 1)  # v5 v6
    assert _turnout(tables, G24, "congressional_district", geography="3") == (3, 2)
    assert _turnout(tables, G24, "tract", geography="37001020100") == (2, 1)
    assert _turnout(tables, G24, "tract", geography="37003000100") == (1, 1)  # v6 (v4 not yet registered)
    assert _turnout(tables, G24, "tract", geography="unknown") == (3, 2)  # v2 v5 v10
    assert _by_voter(tables, "district_source") == {
        "v1": "geocode", "v2": "state_file", "v3": "geocode", "v4": "state_file", "v5": "state_file",
        "v6": "state_file", "v7": "geocode", "v8": "geocode", "v9": "geocode", "v10": "state_file"}
    county = tables.cohort_turnout[tables.cohort_turnout["geography_level"] == "county"]
    assert set(county["geography_name"]) == {"ALAMANCE", "ALEXANDER", "ALLEGHANY"}


def test_household_aggregates(tables):
    sizes = tables.household_sizes.set_index("household_size")
    assert sizes.loc["1", "households"] == 2 and sizes.loc["1", "voters"] == 2
    assert sizes.loc["2", "households"] == 2 and sizes.loc["2", "voters"] == 4
    assert sizes.loc["3", "households"] == 1 and sizes.loc["8+", "households"] == 0
    mix = tables.household_party_mix
    party_rep = mix[(mix["dimension"] == "party") & (mix["cohort"] == "REP")].set_index("party_mix")
    assert party_rep.loc["mixed", "voters"] == 2  # v6 (C) and v8 (D)
    assert party_rep.loc["single_party", "voters"] == 1  # v2
    everyone = mix[mix["dimension"] == "all"].set_index("party_mix")["voters"].to_dict()
    assert everyone == {"single_party": 4, "mixed": 5, "no_household": 1}
    coverage = tables.geocode_coverage.set_index("county_code")
    assert coverage.loc["001", "voters"] == 4 and coverage.loc["001", "voters_geocoded"] == 2
    assert coverage.loc["002", "voters_with_address"] == 2
    assert coverage.loc["003", "geocode_rate"] == 1.0


def test_tables_conform_to_their_schemas(tables):
    import pyarrow as pa

    for frame, target in ((tables.voter_cohorts, schema.VOTER_COHORTS), (tables.cohort_turnout, schema.COHORT_TURNOUT)):
        table = schema.conform(pa.Table.from_pandas(frame, preserve_index=False), target)
        assert table.num_rows == len(frame)
        for name in target.names:
            if name not in ("state", "snapshot"):
                assert name in frame.columns, name


def test_transitions_between_two_snapshots(tables, config):
    current = tables.voter_cohorts
    previous = current[current["voter_id"] != "v4"].copy()  # v4 registered since
    previous["household_id"] = previous["household_id"].astype(object)
    previous["party"] = previous["party"].astype(object)
    previous.loc[previous["voter_id"] == "v2", "household_id"] = "OLD-ADDRESS"
    previous.loc[previous["voter_id"] == "v3", "party"] = "REP"
    gone = previous[previous["voter_id"] == "v1"].copy()
    gone["voter_id"] = "v0"
    previous = pd.concat([previous, gone], ignore_index=True)
    changes = cohorts.snapshot_transitions(previous, current, ["all", "age_band_default", "party"])
    totals = changes[changes["dimension"] == "all"].set_index("change")["voters"].to_dict()
    assert totals == {"new_registrant": 1, "removed": 1, "moved": 1, "party_switch": 1}
    switch = changes[changes["dimension"] == "party_switch"]
    assert switch["cohort"].tolist() == ["REP -> DEM"]
    removed_age = changes[(changes["change"] == "removed") & (changes["dimension"] == "age_band_default")]
    assert removed_age["cohort"].tolist() == ["35-44"]  # v0 is a copy of v1


def test_every_age_lands_in_exactly_one_band_of_every_scheme(config):
    rng = random.Random(20261101)
    ages = list(range(MIN_PLAUSIBLE_AGE, MAX_PLAUSIBLE_AGE + 1))
    ages += [rng.uniform(MIN_PLAUSIBLE_AGE, MAX_PLAUSIBLE_AGE + 1 - 1e-9) // 1 for _ in range(500)]
    for name, bands in config.age_schemes.items():
        for age in ages:
            hits = [b.label for b in bands if b.low <= age and (b.high is None or age <= b.high)]
            assert len(hits) == 1, (name, age, hits)
        codes = cohorts.band_codes(np.array(ages, dtype=float), bands)
        assert (codes < len(bands)).all(), name
        # The vectorised lookup agrees with the plain rule.
        for age, code in zip(ages, codes):
            band = bands[code]
            assert band.low <= age and (band.high is None or age <= band.high)
        unknown = cohorts.band_codes(np.array([np.nan]), bands)
        assert unknown[0] == len(bands)
    for year in range(1880, 2030):
        hits = [g for g in config.generations
                if (g.low is None or g.low <= year) and (g.high is None or year <= g.high)]
        assert len(hits) == 1, year


def test_bad_band_config_is_rejected(tmp_path):
    text = cohorts.DEFAULT_CONFIG_PATH.read_text().replace(
        '{ label = "25-34", min = 25, max = 34 }', '{ label = "25-34", min = 26, max = 34 }')
    bad = tmp_path / "cohorts.toml"
    bad.write_text(text)
    with pytest.raises(ValueError, match="not contiguous"):
        cohorts.load_cohort_config(bad)


def test_no_general_elections_gives_unknown_turnout_cohort(config):
    voters = _voters()
    history = _history()
    history = history[history["election_type"] != "general"]
    frame, votes, _ = cohorts.cohorts_for_roll(voters, history, SNAPSHOT, config)
    labels = dict(zip(frame["voter_id"], frame["turnout_cohort"].astype(object)))
    assert votes.generals == []
    assert set(labels.values()) == {"unknown"}


def test_arrow_tables_follow_the_catalogue_schemas_and_the_manifest_counts_them(tables, config):
    arrow = cohorts.cohort_arrow_tables(tables, "nc", SNAPSHOT)
    assert "transitions" not in arrow  # no previous roll
    for name, table in arrow.items():
        assert table.schema.equals(catalog.dataset(name)[1].schema), name
    assert arrow["voter_cohorts"].schema.equals(schema.VOTER_COHORTS)
    assert arrow["cohort_turnout"].num_rows == len(tables.cohort_turnout)
    rows = arrow["voter_cohorts"].to_pandas().set_index("voter_id")
    assert rows.loc["v9", "age_band_default"] == "18-24" and rows.loc["v5", "generation"] == "unknown"
    assert rows.loc["v1", "tract"] == "37001020100" and rows.loc["v1", "snapshot"] == SNAPSHOT
    manifest = cohorts.cohort_manifest(tables, arrow, config)
    assert manifest.files["voter_cohorts.parquet"] == 10 and "transitions.parquet" not in manifest.files
    assert manifest.previous_snapshot is None and manifest.config == "cohorts.toml"
    assert manifest.turnout_cohorts["super_voter"] == 2
    # The task layer adds stage, state, snapshot and fingerprint; reading back ignores them.
    body = {"stage": "AnalyseCohorts", "fingerprint": {"value": "x"}, **manifest.to_json()}
    assert CohortManifest.from_json(body) == manifest


def test_previous_cohorts_read_back_from_parquet_give_the_same_transitions(tables, config, tmp_path):
    assigned = tables.voter_cohorts
    storage.write_parquet(cohorts.cohort_arrow_tables(tables, "nc", SNAPSHOT)["voter_cohorts"], tmp_path / "vc.parquet")
    read_back = cohorts.cohort_categories(pd.read_parquet(tmp_path / "vc.parquet"), config)
    assert isinstance(read_back["age_band_default"].dtype, pd.CategoricalDtype)
    current = assigned[~assigned["voter_id"].isin(["v1", "v5"])]  # both removed since
    dimensions = cohorts.TRANSITION_DIMENSIONS
    expected = cohorts.snapshot_transitions(assigned, current, dimensions)
    got = cohorts.snapshot_transitions(read_back, current, dimensions)
    assert (expected["change"] == "removed").sum() > len(dimensions)  # every dimension counted
    pd.testing.assert_frame_equal(got, expected)


def test_transitions_table_carries_the_previous_snapshot(tables, config):
    previous = tables.voter_cohorts[tables.voter_cohorts["voter_id"] != "v4"]
    voter_households, households, geocodes = _households()
    later = cohorts.analyse_cohorts(_voters(), _history(), voter_households, households, geocodes,
                                    state="nc", snapshot=SNAPSHOT, config=config, previous=previous)
    earlier = date(2026, 10, 1)
    arrow = cohorts.cohort_arrow_tables(later, "nc", SNAPSHOT, earlier)
    assert arrow["transitions"].schema.equals(schema.COHORT_TRANSITIONS)
    assert set(arrow["transitions"].column("previous_snapshot").to_pylist()) == {earlier}
    manifest = cohorts.cohort_manifest(later, arrow, config, earlier)
    assert manifest.previous_snapshot == "2026-10-01"
    assert manifest.files["transitions.parquet"] == arrow["transitions"].num_rows


def test_luigi_tasks_write_cohorts_transitions_and_report(data_root):
    """AnalyseCohorts and ReportSnapshot through Luigi over published upstream stages, with the
    previous snapshot named (previous=): only its canonical roll and its addresses are read."""
    import luigi
    import pyarrow as pa

    from stage_fixtures import publish_stage
    from voterpipe.tasks.base import task_class
    from voterpipe.tasks.cohorts import AnalyseCohorts, ReportSnapshot

    def publish(stage, snapshot, frames):
        publish_stage(task_class(stage)(state="nc", snapshot=snapshot),
                      {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in frames.items()})

    earlier = date(2026, 10, 1)
    old_voters = _voters()
    old_voters = old_voters[old_voters["voter_id"] != "v4"].copy()  # v4 registers later
    old_voters.loc[old_voters["voter_id"] == "v3", "party"] = "REP"  # v3 switches to DEM
    empty_rejects = schema.REJECTS.empty_table().to_pandas()
    publish("canonical", earlier, {"voters": old_voters, "history": _history(), "rejects": empty_rejects})
    voter_households, households, geocodes = _households()
    old_links = voter_households[voter_households["voter_id"] != "v4"].rename(columns={"household_id": "address_key"})
    old_links["parse_status"] = np.where(old_links["address_key"].notna(), "ok", "missing")
    old_links.loc[old_links["voter_id"] == "v2", "address_key"] = "Z"  # v2 has moved to B since
    publish("addresses", earlier, {"addresses": pd.DataFrame({"address_key": ["A"]}), "voter_addresses": old_links})
    publish("canonical", SNAPSHOT, {"voters": _voters(), "history": _history(), "rejects": empty_rejects})
    publish("geocoded", SNAPSHOT, {"geocodes": geocodes})
    publish("households", SNAPSHOT, {"voter_households": voter_households, "households": households})

    # The hand-built history names one voter who is not on the roll on purpose (1 of 16 rows):
    # above the history_not_on_roll gate, accepted here as a run would with --accept.
    parser = luigi.configuration.get_config()
    if not parser.has_section("quality"):
        parser.add_section("quality")
    had = parser.get("quality", "accept", None)
    parser.set("quality", "accept", "history_not_on_roll")
    try:
        result = luigi.build([ReportSnapshot(state="nc", snapshot=SNAPSHOT, previous=earlier)],
                             local_scheduler=True, detailed_summary=True, log_level="WARNING")
    finally:
        if had is None:
            parser.remove_option("quality", "accept")
        else:
            parser.set("quality", "accept", had)
    assert result.status.name == "SUCCESS", result.summary_text
    cohorts_dir = AnalyseCohorts(state="nc", snapshot=SNAPSHOT, previous=earlier).output()
    manifest = CohortManifest.from_json(cohorts_dir.manifest())
    assert manifest.previous_snapshot == earlier.isoformat() and manifest.voters == 10
    transitions = pq.read_table(cohorts_dir.file(catalog.dataset("transitions")[1].file)).to_pandas()
    totals = transitions[transitions["dimension"] == "all"].set_index("change")["voters"].to_dict()
    assert totals == {"new_registrant": 1, "party_switch": 1, "moved": 1}
    report_dir = storage.stage_dir("reporting/report", "nc", SNAPSHOT)
    assert (report_dir / catalog.REPORT_PAGE).stat().st_size > 10_000


def test_band_lookup_for_large_whole_number_arrays_matches_the_plain_rule(config):
    rng = np.random.default_rng(5)
    ages = rng.integers(MIN_PLAUSIBLE_AGE - 3, MAX_PLAUSIBLE_AGE + 3, 20_000).astype(float)
    ages[rng.random(len(ages)) < 0.05] = np.nan
    for bands in (*config.age_schemes.values(), config.tenure_bands):
        fast = cohorts.band_codes(ages, bands)  # table lookup path (large, whole numbers)
        plain = np.concatenate([cohorts.band_codes(chunk, bands) for chunk in np.array_split(ages, 4)])
        assert (fast == plain).all()
        assert (fast[np.isnan(ages)] == len(bands)).all()


# ---- vote-history semantics, precinct turnout, one code form across tables ----------------------

def test_ballots_the_state_did_not_count_are_no_votes(config):
    history = _history()
    history["ballot_status"] = "counted"
    # v2's G24 ballot was not counted (FL B/P): G24 turnout loses one vote, v2 one general.
    history.loc[(history["voter_id"] == "v2") & (history["election_date"] == G24), "ballot_status"] = "not_counted"
    voter_households, households, geocodes = _households()
    counted = cohorts.analyse_cohorts(_voters(), _history(), voter_households, households, geocodes,
                                      state="nc", snapshot=SNAPSHOT, config=config)
    uncounted = cohorts.analyse_cohorts(_voters(), history, voter_households, households, geocodes,
                                        state="nc", snapshot=SNAPSHOT, config=config)
    registered, voted = _turnout(counted, G24)
    assert _turnout(uncounted, G24) == (registered, voted - 1)
    assert uncounted.summary["history_rows_not_counted"] == 1 and counted.summary["history_rows_not_counted"] == 0
    before, after = (dict(zip(t.voter_cohorts["voter_id"], t.voter_cohorts["generals_voted"])) for t in (counted, uncounted))
    assert after["v2"] == before["v2"] - 1 and {k: v for k, v in after.items() if k != "v2"} == \
        {k: v for k, v in before.items() if k != "v2"}


def test_precinct_is_a_turnout_geography_qualified_by_county(config):
    voters = _voters()
    voters["precinct"] = ["01", "01", "02", "01", "01", None, "01", "01", "01", "02"]
    voter_households, households, geocodes = _households()
    result = cohorts.analyse_cohorts(voters, _history(), voter_households, households, geocodes,
                                     state="nc", snapshot=SNAPSHOT, config=config)
    assert "precinct" in cohorts.GEOGRAPHY_LEVELS
    frame = result.cohort_turnout
    picked = frame[(frame["geography_level"] == "precinct") & (frame["dimension"] == "all")
                   & (frame["election_date"] == pd.Timestamp(G24))]
    # precinct 01 of county 001 and of county 002 are different precincts
    assert {"001:01", "002:01", "001:02", "003:01"} <= set(picked["geography"])
    assert picked["registered"].sum() == _turnout(result, G24)[0]


def test_geocoded_districts_take_the_state_code_form(config):
    voter_households, households, geocodes = _households()
    forms = {"congressional_district": cohorts.geography.CodeForm("pad", 2)}
    place = cohorts.voter_households_and_geography(_voters(), voter_households, households, geocodes, forms)
    assert set(place["congressional_district"].dropna()) <= {"01", "02", "03", "04"}
    assert "4" not in set(place["congressional_district"].dropna())


def test_cohort_turnout_joins_voters_enriched_on_every_geography_level(config):
    """Padded census districts, canonical voter districts: households, cohorts and the voter file all
    end in the state's form, so each turnout cell finds exactly its voters in voters_enriched."""
    import sys
    from pathlib import Path

    import duckdb
    import pyarrow as pa

    from voterpipe.formats.layouts import state_canonical
    from voterpipe.households import build_households
    from voterpipe.warehouse.enriched import build_voters_enriched

    sys.path.insert(0, str(Path(__file__).parent))
    import warehouse_data

    t = warehouse_data.upstream_tables("nc", SNAPSHOT, 80, seed=3)
    geocodes = t["geocodes"].to_pandas()
    for column, width in (("congressional_district", 2), ("state_senate_district", 3), ("state_house_district", 3)):
        geocodes[column] = geocodes[column].str.zfill(width)  # the geocoder writes 01, 004, 012
    geocodes.loc[::7, "status"] = "no_match"  # some voters keep the state file's district
    voters, history = t["voters"].to_pandas(), t["history"].to_pandas()
    addresses = t["addresses"].to_pandas()[["address_key", "unit_type", "unit_number"]]
    households, voter_households = build_households(voters, t["voter_addresses"].to_pandas(), addresses, geocodes,
                                                    SNAPSHOT, code_forms=state_canonical("nc").code_forms)
    assert set(households["congressional_district"].dropna()) <= {"1", "2", "13"}
    result = cohorts.analyse_cohorts(voters, history, voter_households, households, geocodes,
                                     state="nc", snapshot=SNAPSHOT, config=config)
    arrow = cohorts.cohort_arrow_tables(result, "nc", SNAPSHOT)
    enriched = build_voters_enriched("nc", SNAPSHOT, {
        **{name: t[name] for name in ("voters", "voter_addresses", "addresses")},
        "geocodes": pa.Table.from_pandas(geocodes, preserve_index=False),
        "households": pa.Table.from_pandas(households, preserve_index=False),
        "voter_households": pa.Table.from_pandas(voter_households, preserve_index=False),
        "voter_cohorts": arrow["voter_cohorts"]})
    expressions = {
        "state": "upper(v.state)", "county": "v.county_code", "precinct": "v.county_code || ':' || v.precinct",
        # cohorts carry the 11-digit GEOID of matched geocodes; the voter file its parts
        "tract": "CASE WHEN v.geocode_status = 'match' THEN v.state_fips || v.county_fips || v.tract END",
        **{d: f"CASE WHEN v.geocode_status = 'match' THEN coalesce(v.geo_{d}, v.{d}) ELSE v.{d} END"
           for d in cohorts.DISTRICT_COLUMNS},
    }
    assert set(expressions) == set(cohorts.GEOGRAPHY_LEVELS)
    con = duckdb.connect()
    con.register("v", enriched)
    con.register("turnout", arrow["cohort_turnout"])
    for level, expression in expressions.items():
        mismatched = con.execute(f"""
            WITH cells AS (SELECT geography, registered FROM turnout
                           WHERE geography_level = '{level}' AND dimension = 'all'),
                 voters AS (SELECT {expression} AS geography, count(*) AS n FROM v GROUP BY 1)
            SELECT count(*) FROM cells FULL JOIN voters USING (geography)
            WHERE cells.registered IS DISTINCT FROM voters.n AND cells.geography IS DISTINCT FROM '{config.unknown}'
              AND voters.geography IS NOT NULL""").fetchone()[0]
        cells = con.execute(f"SELECT count(*) FROM turnout WHERE geography_level = '{level}'").fetchone()[0]
        assert cells > 0 and mismatched == 0, level


def test_transition_matches_take_the_first_previous_row_and_ignore_null_ids():
    from voterpipe.cohorts.transitions import _matches

    previous = pd.Series(["a", "b", "a", None, "c"], dtype=object)
    current = pd.Series(["c", None, "a", "d"], dtype=object)
    row_in_previous, previous_on_current = _matches(previous, current)
    assert row_in_previous.tolist() == [4, -1, 0, -1]  # 'a' at its first row; null and new ids absent
    assert previous_on_current.tolist() == [True, False, True, False, True]
