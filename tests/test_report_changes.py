"""Snapshot changes in the report: voter by voter, by county, each change's voter ids in a CSV;
the counts agree with 06_cohorts transitions where the two overlap."""

from __future__ import annotations

import re
from datetime import date

import luigi
import numpy as np
import pandas as pd
import pytest

from voterpipe import catalog, cohorts, report, storage, synth
from voterpipe.cohorts.transitions import TRANSITION_CHANGES, snapshot_transitions
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.report.changes import CHANGES, previous_roll, voter_changes
from voterpipe.report.maps import tract_change
from voterpipe.report.sources import ReportSources
from voterpipe.tasks.cohorts import ReportSnapshot
from test_report import SNAPSHOT, stage_dirs  # noqa: F401 - hand-built stages without a previous roll

FIRST, SECOND = date(2026, 11, 1), date(2026, 11, 8)


def _rolls(seed: int = 1, voters: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A previous roll and a current one with every kind of change, drawn at random."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"v{i:04d}" for i in range(voters)], dtype=object)

    def pick(values, p=None):
        return rng.choice(np.array(values, dtype=object), voters, p=p)

    before = pd.DataFrame({
        "voter_id": ids, "county_code": pick(["001", "003", "005", None], [0.4, 0.3, 0.28, 0.02]),
        "status": pick(["active", "inactive", "removed", None], [0.8, 0.15, 0.03, 0.02]),
        "party": pick(["DEM", "REP", "UNA", "unknown", None], [0.35, 0.35, 0.2, 0.05, 0.05]),
        "household_id": pick([f"k{i}" for i in range(150)] + [None] * 10)})
    before["county_name"] = before["county_code"].map({"001": "Alamance", "003": "Alexander", "005": "Alleghany"})
    after = before.copy()
    for column, values in (("status", ["active", "inactive", "removed"]), ("party", ["DEM", "REP", "unknown", None]),
                           ("household_id", ["k1", "k2", None]), ("county_code", ["001", "005"])):
        changed = rng.random(voters) < 0.08
        after.loc[changed, column] = pick(values)[changed]
    after = after[rng.random(voters) > 0.05]  # off the roll
    newcomers = before.sample(30, random_state=seed).assign(voter_id=[f"n{i}" for i in range(30)])
    return before, pd.concat([after, newcomers], ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changes_agree_with_the_cohort_transitions_by_county(seed):
    before, after = _rolls(seed)
    changes = voter_changes(before, after)
    by_county = report.changes.changes_by_county(changes).set_index("county_code")
    transitions = snapshot_transitions(before, after, ["all", "county_code"])
    for change in TRANSITION_CHANGES:
        rows = transitions[(transitions["change"] == change) & (transitions["dimension"] == "county_code")]
        expected = rows.set_index("cohort")["voters"]
        got = by_county[change][by_county[change] > 0]
        assert got.sort_index().to_dict() == expected.sort_index().to_dict(), change
        total = transitions[(transitions["change"] == change) & (transitions["dimension"] == "all")]["voters"].sum()
        assert (changes["change"] == change).sum() == total > 0


def test_status_changes_are_other_than_removals_and_name_both_statuses():
    before, after = _rolls(4)
    changes = voter_changes(before, after)
    status = changes[changes["change"] == "status_change"]
    assert len(status) and (status["before"] != status["after"]).all()
    assert not (status["after"] == "removed").any()  # those are removals
    merged = after.merge(before, on="voter_id", suffixes=("", "_b"))
    expected = merged[merged["status"].notna() & merged["status_b"].notna() & (merged["status"] != merged["status_b"])
                      & ~((merged["status"] == "removed") & (merged["status_b"] != "removed"))]
    assert sorted(status["voter_id"]) == sorted(expected["voter_id"])
    moved = changes[changes["change"] == "moved"]  # moves carry the county before and after, no address
    assert set(moved.columns) >= {"before", "after"} and not moved["before"].astype(str).str.startswith("k").any()


def test_previous_roll_takes_households_by_the_household_rule():
    voters = pd.DataFrame({"voter_id": ["a", "b", "c"], "county_code": ["001"] * 3, "county_name": ["X"] * 3,
                           "status": ["active", "removed", "active"], "party": ["DEM", "REP", None]})
    links = pd.DataFrame({"voter_id": ["c", "b", "a"], "address_key": ["K2", "K1", "K1"],
                          "building_key": ["B2", "B1", "B1"], "parse_status": ["po_box", "ok", "ok"]})
    roll = previous_roll(voters, links).set_index("voter_id")
    # a removed voter and a PO box have no household (voterpipe.households.assign_households)
    assert roll["household_id"].fillna("none").to_dict() == {"a": "K1", "b": "none", "c": "none"}


def test_tract_change_places_removed_voters_through_the_current_geocodes_of_their_address():
    tracts = {"K1": "37001000100", "K2": "37001000200"}
    current = pd.DataFrame({"voter_id": ["a", "b", "n1", "n2", "n3"], "county_code": "001", "county_name": "X",
                            "status": "active", "party": "DEM", "household_id": ["K1", "K2", "K1", "K2", None]})
    current["tract"] = current["household_id"].map(tracts)
    previous = pd.DataFrame({"voter_id": ["a", "b", "r1", "r2", "r3"], "county_code": "001", "county_name": "X",
                             "status": "active", "party": "DEM", "household_id": ["K1", "K2", "K2", "K9", None]})
    sources = ReportSources(state="nc", snapshot=SNAPSHOT, **{k: pd.DataFrame() for k in (
        "cohort_turnout", "elections", "household_sizes", "household_party_mix", "geocode_coverage", "registrations")},
        voter_geography=current, previous_roll=previous,
        tracts_by_address=pd.DataFrame({"address_key": list(tracts), "tract": list(tracts.values())}))
    table = current.groupby("tract").size().rename("registered").reset_index()
    data, unplaced = tract_change(sources, table, voter_changes(previous, current))
    data = data.set_index("tract")
    # n1 (K1) and n2 (K2) new; r1 removed from K2, still on the roll; r2 (K9: no current geocode) and r3 unplaced
    assert data["new_registrant"].to_dict() == {"37001000100": 1, "37001000200": 1}
    assert data["removed"].to_dict() == {"37001000100": 0, "37001000200": 1}
    assert unplaced == {"new_registrant": (1, 3), "removed": (2, 3)}
    assert data.loc["37001000100", "change_share"] == 1.0  # a and n1 now, a alone before
    assert data.loc["37001000200", "change_share"] == 0


def test_page_without_a_previous_snapshot_says_so(stage_dirs, tmp_path):
    sources = report.ReportSources.from_directories(state="nc", snapshot=SNAPSHOT, **stage_dirs)
    out = tmp_path / "out"
    out.mkdir()
    written = report.write_report(sources, out)
    page = (out / catalog.REPORT_PAGE).read_text()
    assert "No previous snapshot" in page and "id='changes'" in page
    assert not any(name.startswith("12_changes_") for name in written["files"])


def _build_two_snapshots(state: str = "nc", voters: int = 1200):
    synth.write_drop(state=state, voters=voters, snapshot=FIRST, seed=11, dirty_rate=0.01)
    import_tiger_dir(storage.cache_dir("synth") / state / "tiger")
    synth.write_drop(state=state, voters=voters, snapshot=SECOND, seed=11, from_snapshot=FIRST)
    luigi.task_register.Register.clear_instance_cache()
    result = luigi.build([ReportSnapshot(state=state, snapshot=SECOND, previous=FIRST)], local_scheduler=True,
                         log_level="WARNING", detailed_summary=True)
    assert result.status.name == "SUCCESS", result.summary_text
    return catalog.stage("report").directory(state, SECOND)


@pytest.mark.slow
def test_report_changes_for_a_second_snapshot_match_transitions_and_list_voter_ids(data_root):
    out = _build_two_snapshots()
    page = (out / catalog.REPORT_PAGE).read_text()
    transitions = pd.read_parquet(catalog.dataset_path("transitions", "nc", SECOND))
    by_county = pd.read_csv(out / catalog.chart_csv("11_changes_by_county"), dtype={"county_code": str})
    previous = pd.read_parquet(catalog.dataset_path("voters", "nc", FIRST), columns=["voter_id"])
    current = pd.read_parquet(catalog.dataset_path("voters", "nc", SECOND), columns=["voter_id"])
    for change in CHANGES:
        ids = pd.read_csv(out / catalog.change_voters_csv(change), dtype=str)
        assert f"href='{catalog.change_voters_csv(change)}'" in page
        assert len(ids) == by_county[change].sum(), change
        if change in TRANSITION_CHANGES:
            rows = transitions[(transitions["change"] == change) & (transitions["dimension"] == "county_code")]
            assert rows.set_index("cohort")["voters"].sort_index().to_dict() == \
                by_county.set_index("county_code")[change][lambda s: s > 0].sort_index().to_dict(), change
        if change == "new_registrant":
            assert len(ids) and not ids["voter_id"].isin(previous["voter_id"]).any()
        if change == "removed":
            assert ids["voter_id"].isin(previous["voter_id"]).all()
    assert by_county[["new_registrant", "removed"]].to_numpy().sum() > 0
    tract = pd.read_csv(out / catalog.chart_csv("33_map_registration_change_by_tract"), dtype={"tract": str})
    found = re.search(r"Not placed, so left out: ([\d,]+) of ([\d,]+) .*? removed voters .*? and ([\d,]+) of "
                      r"([\d,]+) .*?new registrants", page)
    left_removed, all_removed, left_new, all_new = (int(g.replace(",", "")) for g in found.groups())
    assert tract["removed"].sum() + left_removed == all_removed == by_county["removed"].sum()
    assert tract["new_registrant"].sum() + left_new == all_new == by_county["new_registrant"].sum()
    assert (out / catalog.chart_image("33_map_registration_change_by_tract")).stat().st_size > 5000
    assert f"roll of {FIRST.isoformat()}" in page and "No previous snapshot" not in page
    assert set(current["voter_id"]) - set(previous["voter_id"])  # the synthetic drop did change
