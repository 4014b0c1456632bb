"""End to end: a tiny synthetic drop through every stage, resume, and a second snapshot."""

from __future__ import annotations

from datetime import date

import luigi
import pyarrow.parquet as pq
import pytest

from voterpipe import catalog, storage, synth
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.tasks import EnrichSnapshot

pytestmark = pytest.mark.slow

FIRST = date(2026, 11, 1)
SECOND = date(2026, 11, 8)


def _build(*tasks):
    luigi.task_register.Register.clear_instance_cache()
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def _rows(dataset, snapshot):
    return pq.ParquetFile(catalog.dataset_path(dataset, "nc", snapshot)).metadata.num_rows


@pytest.fixture
def nc_drop(data_root):
    summary = synth.write_drop(state="nc", voters=3000, snapshot=FIRST, seed=7, dirty_rate=0.01)
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    return summary


def test_every_voter_reaches_every_stage_and_rerun_does_nothing(nc_drop, data_root):
    result = _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert result.status.name == "SUCCESS", result.summary_text

    canonical = storage.read_manifest(storage.stage_dir("canonical", "nc", FIRST))
    voters = _rows("voters", FIRST)
    rejected = _rows("rejects", FIRST)
    assert voters > 2500 and rejected > 0
    assert _rows("voter_addresses", FIRST) == voters
    assert _rows("voter_households", FIRST) == voters
    assert _rows("voter_cohorts", FIRST) == voters
    assert _rows("voters_enriched", FIRST) == voters
    assert canonical  # provenance is recorded
    assert catalog.dataset_path("report", "nc", FIRST).stat().st_size > 10_000

    geocodes = pq.read_table(catalog.dataset_path("geocodes", "nc", FIRST)).to_pandas()
    addresses = pq.read_table(catalog.dataset_path("addresses", "nc", FIRST)).to_pandas()
    clean = addresses.loc[addresses["parse_status"] == "ok", "address_key"]
    match_rate = geocodes.set_index("address_key").loc[clean, "status"].eq("match").mean()
    assert match_rate > 0.95

    before = {p: p.stat().st_mtime_ns for p in data_root.rglob("*.parquet")}
    rerun = _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert rerun.status.name == "SUCCESS"
    assert {p: p.stat().st_mtime_ns for p in data_root.rglob("*.parquet")} == before


def test_second_snapshot_reuses_caches_and_reports_transitions(nc_drop, data_root):
    assert _build(EnrichSnapshot(state="nc", snapshot=FIRST)).status.name == "SUCCESS"
    synth.write_drop(state="nc", voters=3000, snapshot=SECOND, seed=7, from_snapshot=FIRST)
    result = _build(EnrichSnapshot(state="nc", snapshot=SECOND))
    assert result.status.name == "SUCCESS", result.summary_text
    geocoded = storage.read_manifest(storage.stage_dir("geocoded", "nc", SECOND))
    assert geocoded["cache_hits"] > geocoded["cache_misses"]


@pytest.mark.parametrize("state,layout,snapshot", [
    ("nc", "nc_pre2022", date(2021, 11, 1)),
    ("oh", "oh_swvf", FIRST),
    ("fl", "fl_extract", FIRST),
    ("mi", "mi_csv", FIRST),
    ("mi", "mi_fixed", date(2020, 11, 1)),
    ("wa", "wa_vrdb", FIRST),
])
def test_every_shipped_layout_runs_end_to_end(data_root, state, layout, snapshot):
    summary = synth.write_drop(state=state, voters=2000, snapshot=snapshot, seed=3, layout=layout,
                               dirty_rate=0.01)
    import_tiger_dir(storage.cache_dir("synth") / state / "tiger")
    result = _build(EnrichSnapshot(state=state, snapshot=snapshot))
    assert result.status.name == "SUCCESS", result.summary_text

    manifest = storage.read_manifest(storage.stage_dir("canonical", state, snapshot))
    voters = pq.ParquetFile(catalog.dataset_path("voters", state, snapshot)).metadata.num_rows
    rejects = pq.read_table(catalog.dataset_path("rejects", state, snapshot)).to_pandas()
    structural = summary["damaged"].get("extra_fields", 0) + summary["damaged"].get("missing_fields", 0)
    assert rejects["reason"].str.contains("field|length").sum() == structural
    assert voters + len(rejects) >= summary["voters"]
    addresses = catalog.dataset_path("voter_addresses", state, snapshot)
    assert pq.ParquetFile(addresses).metadata.num_rows == voters
    geocoded = storage.read_manifest(storage.stage_dir("geocoded", state, snapshot))
    assert manifest and geocoded
    geocodes = pq.read_table(catalog.dataset_path("geocodes", state, snapshot)).to_pandas()
    sent = geocodes[geocodes["status"] != "not_sent"]
    assert sent["status"].eq("match").mean() > 0.95
