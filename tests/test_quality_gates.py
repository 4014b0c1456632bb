"""Quality gates stop a bad snapshot before it is published: real `voterpipe run`s on a drop that
lost 30% of its voters, a ZIP column nulled en masse, and a geocode match rate below the
threshold (TIGER data of another state's county). Each asserts the exit code, the message and
that the warehouse's current snapshot did not move; then the overrides (--accept, a threshold)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import luigi
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import bad_snapshots as bad  # noqa: E402

from voterpipe import quality, storage, synth  # noqa: E402
from voterpipe.geocode.tiger import import_tiger_dir  # noqa: E402

QUALITY_GATE = 50  # luigi.cfg [quality] exit_code




def _column(header: str, name: str) -> int:
    return header.rstrip("\n").split("\t").index(name)


def _drop_voters(drop: Path, share: float) -> int:
    """Remove `share` of the voters, spread over the file (and their history rows); return the voters kept."""
    header, rows = bad.header_and_rows(drop / bad.VOTER_FILE)
    ncid = _column(header, "ncid")
    gone = {row.split("\t")[ncid] for i, row in enumerate(rows) if i % 100 < share * 100}
    kept = [row for row in rows if row.split("\t")[ncid] not in gone]
    bad.rewrite(drop / bad.VOTER_FILE, header, kept)
    history_header, history = bad.header_and_rows(drop / bad.HISTORY_FILE)
    history_ncid = _column(history_header, "ncid")
    bad.rewrite(drop / bad.HISTORY_FILE, history_header,
                [row for row in history if row.split("\t")[history_ncid] not in gone])
    return len(kept)


def test_a_drop_that_loses_30_percent_of_its_voters(root, capsys):
    drop = bad.next_drop(root, marker=False)
    kept = _drop_voters(drop, 0.3)
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == QUALITY_GATE, output
    assert re.search(r"quality gate voter_count_change failed for nc 2026-11-08 \(stage cohorts\): "
                     r"voter_count_change = -0\.(29|30)\d* ", output)
    assert "(threshold: at most ±0.1)" in output
    counts = re.search(r"(\d+) voters against (\d+) in 2026-11-01", output)
    assert counts and kept - 10 <= int(counts[1]) <= kept  # a few damaged lines are rejected
    assert int(counts[1]) / int(counts[2]) == pytest.approx(0.7, abs=0.01)
    assert "rerun with `voterpipe run --state nc --snapshot 2026-11-08 --accept voter_count_change`" in output
    assert "[quality] (or [quality.nc])" in output
    assert not storage.is_published(storage.stage_dir("cohorts", "nc", bad.SECOND))
    assert bad.current_snapshots(root) == {bad.FIRST}

    # the loss is real (a purge): accept it for this run; it is recorded in the manifest
    code, output = bad.run_snapshot(bad.SECOND, "--accept", "voter_count_change", capsys=capsys)
    assert code == 0, output
    gates = {g["name"]: g for g in storage.read_manifest(storage.stage_dir("cohorts", "nc", bad.SECOND))["gates"]}
    assert gates["voter_count_change"]["passed"] is False and gates["voter_count_change"]["accepted"] is True
    assert gates["history_not_on_roll"]["passed"] is True
    assert bad.current_snapshots(root) == {bad.SECOND}
    # a plain rerun (cron) does not undo the decision: nothing is out of date
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == 0, output


def test_a_zip_column_nulled_en_masse(root, capsys):
    drop = bad.next_drop(root, marker=False)
    header, rows = bad.header_and_rows(drop / bad.VOTER_FILE)
    zip_code = _column(header, "zip_code")

    def spreadsheet(row: str) -> str:  # a spreadsheet re-saved the ZIPs as numbers: 2.7517E+04
        fields = row.split("\t")
        digits = fields[zip_code][:5]
        if digits.isdigit():
            fields[zip_code] = f"{int(digits) / 10_000:.4f}E+04"
        return "\t".join(fields)

    bad.rewrite(drop / bad.VOTER_FILE, header, [spreadsheet(row) for row in rows])
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == QUALITY_GATE, output
    assert "quality gate column_nulled failed for nc 2026-11-08 (stage canonical)" in output
    assert "voters.res_zip" in output and "bad_zip" in output and "(threshold: at most 0.02)" in output
    canonical = storage.stage_dir("canonical", "nc", bad.SECOND)
    assert not storage.is_published(canonical)
    assert f"Every gate's value: {canonical / 'gates.failed.json'}" in output
    recorded = {g["name"]: g for g in storage.read_json(canonical / "gates.failed.json")["gates"]}
    assert recorded["column_nulled"]["passed"] is False and recorded["rejected_lines"]["passed"] is True
    assert bad.current_snapshots(root) == {bad.FIRST}


def test_geocode_match_rate_below_the_threshold_with_another_countys_tiger_data(root, capsys):
    # the TIGER data now covers an Ohio county only, and the old matches are not cached
    other = root.parent / "other"
    synth.write_drop(state="oh", voters=200, snapshot=bad.FIRST, seed=2, root=other)
    for directory in ("tiger", "geocodes"):
        shutil.rmtree(root / "cache" / directory, ignore_errors=True)
    import_tiger_dir(other / "cache" / "synth" / "oh" / "tiger")
    bad.next_drop(root)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == QUALITY_GATE, output
    assert "quality gate geocode_match_rate failed for nc 2026-11-08 (stage geocoded): geocode_match_rate = 0.0" \
        in output
    assert "(threshold: at least 0.9)" in output and "parsed addresses matched" in output
    assert bad.current_snapshots(root) == {bad.FIRST}

    # a lower threshold for this state reruns the gate (it is part of the stage's fingerprint)
    config = luigi.configuration.get_config()
    config.set("quality.nc", "geocode_match_rate", "0") if config.has_section("quality.nc") else (
        config.add_section("quality.nc"), config.set("quality.nc", "geocode_match_rate", "0"))
    try:
        code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    finally:
        config.remove_section("quality.nc")
    assert code == 0, output
    assert bad.current_snapshots(root) == {bad.SECOND}


# ---- the gate arithmetic ----------------------------------------------------------------------

def test_gates_measure_what_they_name():
    lost = quality.voter_count_gate(700, 1000, "2026-11-01", 0.10)
    assert not lost.passed and lost.value == pytest.approx(-0.3, abs=1e-6)
    assert quality.voter_count_gate(1050, 1000, "2026-11-01", 0.10).passed
    assert quality.voter_count_gate(1000, None, None, 0.10).value is None  # first snapshot: not measured

    files = [{"name": "v.txt", "role": "voters", "rows_read": 1000, "rows_rejected": 20,
              "rejected_by_reason": {"extra_fields": 20},
              "values_nulled": {"res_zip5": {"bad_zip": 910}, "party": {"placeholder": 500}}},
             {"name": "h.txt", "role": "history", "rows_read": 3000, "rows_rejected": 500,
              "rejected_by_reason": {"not_a_vote": 500}}]
    rejected = quality.rejected_lines_gate(files, 0.01)
    assert rejected.value == pytest.approx(20 / 3500, abs=1e-6) and rejected.passed  # did-not-vote lines are not errors
    nulled = quality.column_nulled_gate(files, {"voters": {"res_zip5": 70, "party": 480}}, 0.02)
    assert nulled.value == pytest.approx(910 / 980, abs=1e-6) and not nulled.passed
    assert "voters.res_zip5 lost 92.9%" in nulled.detail  # placeholders are not a loss
    assert quality.column_nulled_gate(files, {"voters": {"res_zip5": 70}}, 0.02,
                                      accept=("column_nulled",)).accepted

    # six bad ZIPs null both parts: against the ZIP column's 900 values, not the 100 ZIP+4 codes
    zips = [{"role": "voters", "values_nulled": {"res_zip5": {"bad_zip": 6}, "res_zip4": {"bad_zip": 6}}}]
    counts = {"voters": {"res_zip5": 894, "res_zip4": 100}}
    assert not quality.column_nulled_gate(zips, counts, 0.02).passed  # 6 / 106 of res_zip4
    sources = {("voters", "res_zip5"): "zip_code", ("voters", "res_zip4"): "zip_code"}
    grouped = quality.column_nulled_gate(zips, counts, 0.02, sources=sources)
    assert grouped.passed and grouped.value == pytest.approx(6 / 900, abs=1e-6)
    assert "(raw column 'zip_code')" in grouped.detail

    with pytest.raises(quality.QualityGateError, match="rejected_lines"):
        quality.enforce([quality.rejected_lines_gate(files, 0.001)], "canonical", "nc", "2026-11-08")
    parse = quality.address_parse_gate({"ok": 80, "po_box": 5, "unparseable": 15, "missing": 50}, 0.9)
    assert parse.value == pytest.approx(0.85, abs=1e-6) and not parse.passed
    match = quality.geocode_match_gate({"ok": {"match": 17, "no_match": 983, "tie": 0, "not_sent": 0}}, 0.9)
    assert match.value == pytest.approx(0.017, abs=1e-6) and not match.passed
    counties = {"063": {"addresses": 900, "match_rate": 0.99}, "037": {"addresses": 300, "match_rate": 0.017}}
    match = quality.geocode_match_gate({"ok": {"match": 900, "no_match": 300}}, 0.7, rates_by_county=counties)
    assert match.passed and match.detail.endswith("worst county 037 at 1.7% of 300 addresses")
