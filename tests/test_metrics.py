"""luigid's /metrics (config/cron/luigid.cfg): Luigi's Prometheus task counters and each stage's
rows, rejects, match rate and duration, after `voterpipe cron` ran against a real luigid."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import storage  # noqa: E402

pytestmark = pytest.mark.slow

SNAPSHOT = date(2026, 11, 1)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(metric, labels): value}."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").replace('"', "").split(",") if p)
        found[(name, pairs)] = float(value)
    return found


def test_stage_counts_and_task_counters_on_a_real_luigid(data_root, tmp_path, capsys):
    proc, port = ops.start_luigid(tmp_path)
    try:
        ops.write_nc_drops([SNAPSHOT], voters=300)
        log_file = tmp_path / "voterpipe.log"
        code, output = ops.voterpipe("cron", "--scheduler-url", f"http://127.0.0.1:{port}/",
                                     "--log-file", str(log_file), capsys=capsys)
        assert code == 0, output
        assert f"scheduler http://127.0.0.1:{port}/" in log_file.read_text()  # luigid answered: no fallback
        samples = _samples(ops.metrics_text(port))
    finally:
        ops.stop(proc)

    def metric(name, **labels):
        return samples[(name, frozenset(labels.items()))]

    canonical = storage.read_manifest(storage.stage_dir("canonical", "nc", SNAPSHOT))
    geocoded = storage.read_manifest(storage.stage_dir("geocoded", "nc", SNAPSHOT))
    assert metric("voterpipe_stage_rows", stage="canonical", state="nc") == canonical["totals"]["voters_loaded"]
    assert metric("voterpipe_stage_rejects", stage="canonical", state="nc") == canonical["totals"]["rows_rejected"]
    matched = geocoded["status_counts"]["match"]
    sent = matched + geocoded["status_counts"]["no_match"] + geocoded["status_counts"]["tie"]
    assert metric("voterpipe_stage_match_rate", stage="geocoded", state="nc") == pytest.approx(matched / sent, abs=1e-4)
    for stage in ("canonical", "addresses", "geocoded", "households", "cohorts", "voter_file", "report", "publish"):
        assert metric("voterpipe_stage_duration_seconds", stage=stage, state="nc") > 0
    assert metric("voterpipe_stage_rows", stage="publish", state="nc") == canonical["totals"]["voters_loaded"]
    assert metric("luigi_task_done_total", family="PublishSnapshot", state="nc") == 1
    assert metric("luigi_task_started_total", family="ImportSnapshot", state="nc") == 1
