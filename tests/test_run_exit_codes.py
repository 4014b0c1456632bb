"""`voterpipe run` exits with luigi's [retcode] codes and says why: a drop that is not there (20),
an import that fails (30), an unknown gate to accept (2). Real runs on hand-made drops."""

from __future__ import annotations

import sys
from pathlib import Path

import luigi

sys.path.insert(0, str(Path(__file__).parent))
import bad_snapshots as bad  # noqa: E402

from voterpipe import storage  # noqa: E402
from voterpipe.tasks.outcome import SHIPPED_RETCODES, retcodes  # noqa: E402


def test_no_drop_at_all_is_missing_data(data_root, capsys):
    code, output = bad.run_snapshot(bad.FIRST, capsys=capsys)
    assert code == 20, output
    assert f"raw drop {storage.raw_dir('nc', bad.FIRST)} is incomplete (no layout): the directory does not exist" \
        in output


def test_a_failing_import_is_task_failed_and_names_the_error(data_root, capsys):
    drop = storage.raw_dir("nc", bad.FIRST)
    drop.mkdir(parents=True)
    (drop / bad.VOTER_FILE).write_text("id\tname\n1\tx\n")
    (drop / bad.HISTORY_FILE).write_text("id\n1\n")
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.FIRST, capsys=capsys)
    assert code == 30, output
    assert "ImportSnapshot(state=nc, snapshot=2026-11-01) failed: " in output
    assert "ncvoter_Statewide.txt matches no known layout" in output


def test_an_unknown_gate_is_refused(data_root, capsys):
    code, output = bad.run_snapshot(bad.FIRST, "--accept", "voter_count", capsys=capsys)
    assert code == 2 and "unknown quality gate(s) ['voter_count']" in output


def test_codes_come_from_retcode_with_the_shipped_ones_as_fallback(monkeypatch):
    assert retcodes() == SHIPPED_RETCODES  # luigi.cfg sets the same
    monkeypatch.setitem(luigi.configuration.get_config()["retcode"], "missing_data", "21")
    assert retcodes()["missing_data"] == 21
