"""The snapshot report: every chart drawn and embedded, every chart's CSV beside the page."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest

from voterpipe import catalog, cohorts, report, schema, storage
from voterpipe.manifests import FileRecord, GeocodeManifest, ImportManifest, ImportTotals, MatchRate
from test_cohorts import SNAPSHOT, _history, _households, _voters  # hand-built tables

CHART_SLUGS = [
    "01_turnout_by_age", "02_registrations_by_generation_party", "03_geocode_match_rate_by_county",
    "04_import_rejects_by_reason", "05_household_sizes", "06_mixed_party_households", "07_snapshot_changes",
]


@pytest.fixture
def stage_dirs(tmp_path):
    """06_cohorts written from the hand-built tables (with a previous snapshot), plus a canonical
    directory with rejects and an import manifest, and a geocode manifest."""
    config = cohorts.load_cohort_config()
    voters = _voters()
    voters["source_file"] = "ncvoter_Statewide.txt"
    voter_households, households, geocodes = _households()
    first = cohorts.analyse_cohorts(voters, _history(), voter_households, households, geocodes,
                                    state="nc", snapshot=SNAPSHOT, config=config)
    previous = first.voter_cohorts[first.voter_cohorts["voter_id"] != "v4"].copy()
    previous["party"] = previous["party"].astype(object)
    previous.loc[previous["voter_id"] == "v3", "party"] = "REP"
    tables = cohorts.analyse_cohorts(voters, _history(), voter_households, households, geocodes,
                                     state="nc", snapshot=SNAPSHOT, config=config, previous=previous)
    cohorts_dir = tmp_path / "06"
    cohorts_dir.mkdir()
    arrow = cohorts.cohort_arrow_tables(tables, "nc", SNAPSHOT, date(2026, 10, 25))
    for name, path in catalog.stage("cohorts").files_in(cohorts_dir).items():
        storage.write_parquet(arrow[name], path)
    manifest = cohorts.cohort_manifest(tables, arrow, config, date(2026, 10, 25))
    storage.write_manifest(cohorts_dir, {"stage": "AnalyseCohorts", **manifest.to_json()})

    canonical = tmp_path / "02"
    canonical.mkdir()
    storage.write_parquet(schema.conform(pa.Table.from_pandas(voters, preserve_index=False), schema.VOTERS),
                          canonical / "voters.parquet")
    history = _history()
    history["source_file"] = "ncvhis_Statewide.txt"
    storage.write_parquet(schema.conform(pa.Table.from_pandas(history, preserve_index=False), schema.HISTORY),
                          canonical / "history.parquet")
    rejects = pd.DataFrame({
        "source_file": ["ncvoter_Statewide.txt"] * 3 + ["ncvhis_Statewide.txt"],
        "line_number": [5, 9, 12, 40],
        "reason": ["bad date in registr_dt", "wrong field count", "wrong field count", "unknown ncid"],
    })
    storage.write_parquet(schema.conform(pa.Table.from_pandas(rejects), schema.REJECTS), canonical / "rejects.parquet")
    imported = ImportManifest(
        layout="nc_ncvoter_2022", totals=ImportTotals(rows_read=30, rows_loaded=26, rows_rejected=4),
        files=[FileRecord(name="ncvoter_Statewide.txt", role="voters", rows_read=13, rows_loaded=10,
                          rows_rejected=3, sha256="ab" * 32),
               FileRecord(name="ncvhis_Statewide.txt", role="history", rows_read=17, rows_loaded=16,
                          rows_rejected=1, sha256="cd" * 32)],
        ignored_files=["ignored_readme.txt"])
    # The task layer adds these keys beside the manifest body; readers ignore them.
    storage.write_manifest(canonical, {"stage": "ImportSnapshot", "state": "nc", "snapshot": SNAPSHOT.isoformat(),
                                       "fingerprint": {"value": "sha256:0"}, **imported.to_json()})
    geocoded = tmp_path / "04"
    geocoded.mkdir()
    storage.write_manifest(geocoded, GeocodeManifest(match_rate_by_county={
        "001": MatchRate(addresses=3, match=1, no_match=2, match_rate=0.5),
        "002": MatchRate(addresses=1, match=1, match_rate=1.0)}).to_json())
    return {"cohorts_dir": cohorts_dir, "canonical_dir": canonical, "geocoded_dir": geocoded}


def test_report_embeds_every_chart_and_writes_their_csvs(stage_dirs, tmp_path):
    sources = report.ReportSources.from_directories(state="nc", snapshot=SNAPSHOT, **stage_dirs)
    out = tmp_path / "07"
    out.mkdir()
    written = report.write_report(sources, out)
    assert written["charts"][:len(CHART_SLUGS)] == CHART_SLUGS
    assert written["charts_drawn"] == CHART_SLUGS  # every chart had data to draw; no geocode points: no map
    page = (out / "report.html").read_text()
    assert len(re.findall(r"<img [^>]*src='data:image/png;base64,", page)) == len(CHART_SLUGS)
    for slug in CHART_SLUGS:
        assert (out / f"{slug}.csv").is_file() and (out / f"{slug}.png").stat().st_size > 5000
        assert f"href='{slug}.csv'" in page
    assert "2026-11-01" in page and "ncvoter_Statewide.txt" in page
    assert "ab" * 32 in page and "cd" * 32 in page  # checksums from the import manifest
    assert "ignored_readme.txt" not in page  # files the importer ignored are no source
    assert "REP -&gt; DEM" in page  # the party switch table

    turnout = pd.read_csv(out / "01_turnout_by_age.csv")
    g24 = turnout[turnout["election_date"] == "2024-11-05"].set_index("age_band")
    assert g24.loc["16-17", "registered"] == 1 and g24.loc["16-17", "voted"] == 1  # v9, 16 on election day
    assert set(turnout["election_date"]) == {"2020-11-03", "2022-11-08", "2024-11-05"}  # generals only
    registrations = pd.read_csv(out / "02_registrations_by_generation_party.csv")
    assert registrations["voters"].sum() == 10
    assert registrations.set_index(["generation", "party"]).loc[("Generation Z (1997 onward)", "DEM"), "voters"] == 1
    rejects = pd.read_csv(out / "04_import_rejects_by_reason.csv").set_index("reason")
    assert rejects.loc["wrong field count", "rejected"] == 2
    assert rejects.loc["wrong field count", "share_of_lines_read"] == pytest.approx(2 / (10 + 16 + 4))  # 10 voters + 16 history rows + 4 rejects
    geocode = pd.read_csv(out / "03_geocode_match_rate_by_county.csv", dtype={"county_code": str}).set_index("county_code")
    assert geocode.loc["001", "address_match_rate"] == 0.5 and geocode.loc["001", "geocode_rate"] == 0.5
    sizes = pd.read_csv(out / "05_household_sizes.csv", dtype={"household_size": str}).set_index("household_size")
    assert sizes.loc["2", "households"] == 2
    changes = pd.read_csv(out / "07_snapshot_changes.csv")
    assert changes.groupby("change")["voters"].sum().to_dict() == {"new_registrant": 1, "party_switch": 1}
    provenance = sources.provenance.set_index("file")
    assert provenance.loc["ncvoter_Statewide.txt", "rows_loaded"] == 10
    assert provenance.loc["ncvoter_Statewide.txt", "rows_rejected"] == 3
    assert provenance.loc["ncvhis_Statewide.txt", "rows_read"] == 17
    assert "nc_ncvoter_2022" in page


def test_first_snapshot_report_says_there_is_nothing_to_compare(stage_dirs, tmp_path):
    (stage_dirs["cohorts_dir"] / "transitions.parquet").unlink()
    sources = report.ReportSources.from_directories(state="nc", snapshot=SNAPSHOT, **stage_dirs)
    out = tmp_path / "07"
    out.mkdir()
    written = report.write_report(sources, out)
    assert "07_snapshot_changes" not in written["charts_drawn"]
    assert (out / "07_snapshot_changes.csv").read_text().strip() == "change,age_band,voters"
    assert "No earlier snapshot" in (out / "report.html").read_text()
