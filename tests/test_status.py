"""`voterpipe status`: snapshots x stages from the targets and fingerprints (done, stale and why,
missing), the warehouse's current snapshot, and --json giving the same."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import storage  # noqa: E402

pytestmark = pytest.mark.slow

FIRST, SECOND = date(2026, 11, 1), date(2026, 11, 8)
STAGES = ("canonical", "addresses", "geocoded", "households", "cohorts", "voter_file", "report", "publish")


def test_status_table_and_json_after_a_run_and_a_threshold_change(data_root, tmp_path, capsys):
    ops.write_nc_drops([FIRST], voters=300)
    assert ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)[0] == 0
    ops.write_nc_drops([SECOND], voters=300)  # arrived since: not built yet

    code, table = ops.voterpipe("status", "--state", "nc", capsys=capsys)
    assert code == 0
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("snapshot"))
    assert header.split() == ["snapshot", "raw", *STAGES]
    first_row = next(line for line in lines if line.startswith(FIRST.isoformat()))
    assert first_row.split() == [FIRST.isoformat(), "complete", *["done"] * len(STAGES)]
    second_row = next(line for line in lines if line.startswith(SECOND.isoformat()))
    assert second_row.split() == [SECOND.isoformat(), "complete", *["missing"] * len(STAGES)]
    assert f"  nc {FIRST.isoformat()}: " in table and " voters, published " in table

    # a canonical threshold changes: canonical is stale because of it, the rest because canonical is
    with ops.config_values({("quality", "rejected_lines"): 0.02}):
        code, text = ops.voterpipe("status", "--state", "nc", "--json", capsys=capsys)
        report = json.loads(text)
        table = ops.voterpipe("status", "--state", "nc", capsys=capsys)[1]
    row = report["states"]["nc"][FIRST.isoformat()]
    assert {stage: row[stage]["status"] for stage in STAGES} == {stage: "stale" for stage in STAGES}
    assert row["canonical"]["why"] == ["settings.quality.rejected_lines changed (0.01 -> 0.02)"]
    assert any(why.startswith("inputs.canonical changed") for why in row["addresses"]["why"])
    assert "[1] 2026-11-01 canonical stale: settings.quality.rejected_lines changed (0.01 -> 0.02)" in table
    assert report["warehouse"]["states"]["nc"]["current"] == FIRST.isoformat()
    canonical = storage.read_manifest(storage.stage_dir("canonical", "nc", FIRST))
    assert report["warehouse"]["states"]["nc"]["rows"]["voters_enriched"] == canonical["totals"]["voters_loaded"]

    # back to the shipped threshold: done again, nothing was rebuilt
    assert set(ops.cells(ops.status_json(), FIRST).values()) == {"complete", "done"}


def test_status_of_an_empty_data_root(data_root, capsys):
    code, table = ops.voterpipe("status", capsys=capsys)
    assert code == 0
    assert "warehouse (duckdb): nothing published" in table
