"""The analyst's view of the report: geography tables, maps, the data-quality section (numbers
against the manifests), for a synthetic drop of every layout; and the page in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from html.parser import HTMLParser

import luigi
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from voterpipe import catalog, report, storage, synth
from voterpipe.quality import NOT_RECORDS
from voterpipe.demo import DEMO_DROPS
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.report.geography import LEVELS, geography_table
from voterpipe.report.maps import NO_GEOMETRY, nearest_area_raster
from voterpipe.report.quality import split_rejects, value_fixes
from voterpipe.report.sources import gate_rows
from voterpipe.tasks.cohorts import ReportSnapshot
from test_report import SNAPSHOT, stage_dirs  # noqa: F401 - hand-built stages, no geocoded points

G1, G2 = date(2022, 11, 8), date(2024, 11, 5)


# -- pure parts --------------------------------------------------------------------------------

def test_geography_table_counts_households_parties_and_turnout_by_election_day():
    voters = pd.DataFrame({
        "voter_id": ["a", "b", "c", "d", "e"],
        "county_code": ["01", "01", "01", "02", None],
        "status": ["active", "inactive", "active", "active", "active"],
        "party": ["DEM", "REP", "DEM", "XYZ", None],
        "household_id": ["h1", "h1", "h2", None, "h3"],
        # c registered after G1 (not counted then) but voted in G2; e has no date (always counted)
        "registered_on": pd.to_datetime(["2000-01-01", "2000-01-01", "2023-05-01", "2000-01-01", None]),
    })
    votes = pd.DataFrame({"voter_id": ["a", "c", "a", "d"], "election_date": [G1, G2, G2, G2]})
    county = next(level for level in LEVELS if level.name == "county")
    table = geography_table(voters, votes, [G1, G2], county, ("DEM", "REP")).set_index("county_code")
    assert table.loc["01", "registered"] == 3 and table.loc["01", "active"] == 2
    assert table.loc["01", "households"] == 2  # h1 counted once
    assert table.loc["01", "party_DEM"] == 2 and table.loc["01", "share_REP"] == pytest.approx(1 / 3)
    assert table.loc["02", "party_other"] == 1 and table.loc["unknown", "party_unknown"] == 1
    assert table.loc["01", f"registered_{G1}"] == 2 and table.loc["01", f"turnout_{G1}"] == pytest.approx(0.5)
    assert table.loc["01", f"registered_{G2}"] == 3 and table.loc["01", f"voted_{G2}"] == 2
    assert table.loc["unknown", f"registered_{G1}"] == 1 and table.loc["unknown", f"voted_{G1}"] == 0
    assert list(table.index) == ["01", "02", "unknown"]
    state = geography_table(voters, votes, [G1, G2], LEVELS[0], ("DEM", "REP"), state="nc")
    assert state.loc[0, "state"] == "NC" and state.loc[0, "registered"] == 5 and state.loc[0, "households"] == 3


def test_gate_records_in_either_manifest_key_become_rows():
    record = {"name": "rejected_lines", "value": 0.2, "threshold": 0.01, "limit": "max", "passed": False,
              "accepted": True, "detail": "20 of 100"}
    rows = gate_rows({"canonical": {"gates": [record]}, "geocoded": {"quality": {"gates": [dict(record, name="x")]}},
                      "cohorts": {}})
    assert list(rows["gate"]) == ["rejected_lines", "x"] and list(rows["stage"]) == ["canonical", "geocoded"]
    assert rows.loc[0, "threshold"] == 0.01 and rows.loc[0, "accepted"] and not rows.loc[0, "passed"]
    assert gate_rows({"canonical": {}}).empty


def test_skipped_lines_are_apart_and_fixes_come_from_the_manifest():
    rejects = pd.DataFrame({"source_file": ["h.txt", "h.txt", "v.txt"],
                            "reason": ["not_a_vote: code=N", "bad_date: x", "wrong_field_count: 3"],
                            "rejected": [1700, 2, 5]})
    rejected, skipped = split_rejects(rejects)
    assert list(skipped["rejected"]) == [1700] and rejected["rejected"].sum() == 7
    fixes = value_fixes({"files": [{"name": "v.txt", "values_nulled": {"birth_date": {"placeholder": 3}},
                                    "values_repaired": {"res_zip5": {"zip_plus4_split": 2}},
                                    "nul_bytes_stripped": 1}]})
    assert set(zip(fixes["action"], fixes["column"], fixes["values"])) == {
        ("nulled", "birth_date", 3), ("repaired", "res_zip5", 2), ("repaired", "(whole line)", 1)}


def test_nearest_area_raster_gives_each_cluster_its_own_area():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-80, 0.01, 50), rng.normal(-79, 0.01, 50)])
    y = np.concatenate([rng.normal(35, 0.01, 50), rng.normal(35, 0.01, 50)])
    area = np.repeat([0, 1], 50)
    grid, (x0, x1, _, _) = nearest_area_raster(x, y, area, size=50)
    middle = grid[25]
    assert middle[2] == 0 and middle[-3] == 1 and x0 < -80 < -79 < x1
    assert (grid == -1).any()  # outside the points' outline: no area


# -- every layout, end to end ------------------------------------------------------------------

class _Page(HTMLParser):
    """Images (with alt), scripts (with src) and sortable tables of a page."""

    def __init__(self):
        super().__init__()
        self.images, self.script_sources, self.sortable = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("alt") or "")
        elif tag == "script":
            self.script_sources.append(attrs.get("src"))
        elif tag == "table" and "sortable" in (attrs.get("class") or ""):
            self.sortable += 1


def _build_report(state: str, layout: str, snapshot: date, voters: int = 800):
    synth.write_drop(state=state, voters=voters, snapshot=snapshot, seed=5, layout=layout, dirty_rate=0.02)
    import_tiger_dir(storage.cache_dir("synth") / state / "tiger")
    luigi.task_register.Register.clear_instance_cache()
    result = luigi.build([ReportSnapshot(state=state, snapshot=snapshot)], local_scheduler=True,
                         log_level="WARNING", detailed_summary=True)
    assert result.status.name == "SUCCESS", result.summary_text
    return catalog.stage("report").directory(state, snapshot)


def _manifest(stage: str, state: str, snapshot: date) -> dict:
    return storage.read_manifest(catalog.stage(stage).directory(state, snapshot))


def _csv(directory, slug: str) -> pd.DataFrame:
    return pd.read_csv(directory / catalog.chart_csv(slug), dtype=str, keep_default_na=False)


def _check_geography(out, state, snapshot):
    cohorts_dir = catalog.stage("cohorts").directory(state, snapshot)
    voters = pq.read_table(cohorts_dir / "voter_cohorts.parquet").to_pandas()
    canonical = pq.read_table(catalog.dataset_path("voters", state, snapshot), columns=["precinct"]).to_pandas()
    statewide = _csv(out, "10_geography_state")
    assert int(statewide.loc[0, "registered"]) == len(voters)
    county = _csv(out, "10_geography_county")
    assert county["registered"].astype(int).sum() == len(voters)
    for level, column in (("congressional_district", "congressional_district"), ("precinct", None)):
        has = (canonical["precinct"] if column is None else voters[column]).notna().any()
        assert (out / catalog.chart_csv(f"10_geography_{level}")).is_file() == bool(has), level
    # county turnout agrees with the cohorts stage's own table, election by election
    turnout = pq.read_table(cohorts_dir / "cohort_turnout.parquet", filters=[
        ("geography_level", "=", "county"), ("dimension", "=", "all"), ("election_type", "=", "general")]).to_pandas()
    days = [c.removeprefix("turnout_") for c in county.columns if c.startswith("turnout_")]
    for day in days:
        expected = turnout[turnout["election_date"].astype(str) == day].set_index("geography")
        got = county.set_index("county_code")
        for code, row in expected.iterrows():
            assert int(got.loc[code, f"registered_{day}"]) == row["registered"]
            assert int(got.loc[code, f"voted_{day}"]) == row["voted"]
    return days


def _check_quality(out, state, snapshot):
    imported = _manifest("canonical", state, snapshot)
    rejected, skipped = _csv(out, "20_quality_rejects"), _csv(out, "21_quality_skipped")
    total = rejected["lines"].astype(int).sum() + skipped["lines"].astype(int).sum()
    # skipped non-records: counted apart by the import manifest, or (older imports) among the rejects
    assert total == imported["totals"]["rows_rejected"] + imported["totals"].get("rows_skipped", 0)
    assert not rejected["reason_code"].isin(NOT_RECORDS).any()
    fixes = _csv(out, "22_quality_values_nulled_repaired")
    by_column = fixes[fixes["column"] != "(whole line)"]
    for action in ("nulled", "repaired"):  # every (file, column, kind) count as the import manifest has it
        expected = {(f["name"], column, kind): n for f in imported["files"]
                    for column, kinds in f.get(f"values_{action}", {}).items() for kind, n in kinds.items()}
        rows = by_column[by_column["action"] == action]
        assert dict(zip(zip(rows["source_file"], rows["column"], rows["reason"]), rows["values"].astype(int))) \
            == expected, action
    line_fixes = {(f["name"], key): f[key] for f in imported["files"]
                  for key in ("nul_bytes_stripped", "undecodable_bytes_replaced", "stray_cr_replaced") if f.get(key)}
    whole = fixes[fixes["column"] == "(whole line)"]
    assert dict(zip(zip(whole["source_file"], whole["reason"]), whole["values"].astype(int))) == line_fixes
    files = _csv(out, "25_quality_source_files").set_index("file")
    assert {f["name"]: f["sha256"] for f in imported["files"]} == files["sha256"].to_dict()
    assert set(files["layout"]) == {imported["layout"]}
    geocoded = _manifest("geocoded", state, snapshot)
    by_county = _csv(out, "24_quality_geocode_status_by_county").set_index("county_code")
    for code, rate in geocoded["match_rate_by_county"].items():
        assert [int(by_county.loc[code, c]) for c in ("match", "tie", "no_match", "not_sent")] == \
               [rate["match"], rate["tie"], rate["no_match"], rate["not_sent"]]
    gates = _csv(out, "26_quality_gates")
    recorded = sum(len(_manifest(s, state, snapshot).get("gates", [])) for s in ("canonical", "addresses",
                                                                                  "geocoded", "cohorts"))
    assert len(gates) == recorded and recorded > 0
    return skipped


@pytest.mark.slow
@pytest.mark.parametrize("state,layout,snapshot", DEMO_DROPS, ids=[d[1] for d in DEMO_DROPS])
def test_report_for_every_layout(data_root, state, layout, snapshot):
    out = _build_report(state, layout, snapshot)
    page_text = (out / catalog.REPORT_PAGE).read_text()
    days = _check_geography(out, state, snapshot)
    skipped = _check_quality(out, state, snapshot)
    repaired = sum(n for f in _manifest("canonical", state, snapshot)["files"]
                   for kinds in f.get("values_repaired", {}).values() for n in kinds.values())
    if repaired:
        assert "Values nulled and repaired by column" in page_text and "no per-column repairs" not in page_text
    if len(skipped):  # FL 'did not vote' lines read as skipped, not as rejects
        assert "Lines skipped (not records)" in page_text

    page = _Page()
    page.feed(page_text)
    assert page.images and all(alt.strip() for alt in page.images)  # alt text on every chart
    assert page.script_sources == [None]  # one inline script, nothing fetched
    assert "http://" not in page_text and "https://" not in page_text
    assert page.sortable >= 2 and "@media print" in page_text
    drawn = json.loads((out / "manifest.json").read_text())["charts_drawn"]
    for slug in ("30_map_turnout_by_county", "31_map_turnout_by_tract"):
        if days and slug in drawn:
            assert (out / catalog.chart_image(slug)).stat().st_size > 5000
        else:
            assert NO_GEOMETRY in page_text or not days
    assert "No quality gates recorded" not in page_text


def test_page_without_geocoded_points_says_no_geometry(stage_dirs, tmp_path):
    sources = report.ReportSources.from_directories(state="nc", snapshot=SNAPSHOT, **stage_dirs)
    assert sources.points is None
    out = tmp_path / "out"
    out.mkdir()
    report.write_report(sources, out)
    page = (out / catalog.REPORT_PAGE).read_text()
    assert NO_GEOMETRY in page and "No quality gates recorded" in page
    assert not (out / catalog.chart_image("30_map_turnout_by_county")).exists()


# -- headless Chromium ---------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
PROBE = """<script>window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });</script>"""
CHECK = """<script>
var table = document.getElementById('10_geography_county');
table = table ? table.nextElementSibling.nextElementSibling.querySelector('table') : null;
var order = [];
if (table) {
  var header = table.querySelectorAll('th')[2];  // Registered
  header.click(); header.click();  // descending
  table.querySelectorAll('tbody tr').forEach(function (r) { order.push(parseFloat(r.cells[2].getAttribute('data-v'))); });
}
document.body.setAttribute('data-probe', JSON.stringify({errors: window.__errors, order: order}));
</script>"""


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "--hide-scrollbars", *args], capture_output=True, text=True, timeout=180)


def _probe(tmp_path, page_text: str, name: str) -> dict:
    probed = tmp_path / name
    probed.write_text(page_text.replace("<head>", "<head>" + PROBE, 1).replace("</body>", CHECK + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", probed.as_uri()).stdout
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, f"probe did not run; chromium printed {dom[:300]!r}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (.ci/run installs it with apt)")
def test_page_renders_in_headless_chromium_without_javascript_errors(data_root, tmp_path):
    out = _build_report("nc", "nc_current", date(2026, 11, 1), voters=1500)
    page_text = (out / catalog.REPORT_PAGE).read_text()
    probe = _probe(tmp_path, page_text, "probed.html")
    assert probe["errors"] == []
    assert len(probe["order"]) >= 2 and probe["order"] == sorted(probe["order"], reverse=True)  # sorted by click
    # the probe sees errors: a page with a broken script reports one
    broken = _probe(tmp_path, page_text.replace("</main>", "</main><script>undefinedFunction();</script>"), "broken.html")
    assert broken["errors"] and "undefinedFunction" in broken["errors"][0]

    shot = tmp_path / "page.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", (out / catalog.REPORT_PAGE).as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
