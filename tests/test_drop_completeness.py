"""A drop is imported only when complete: real `voterpipe run`s on a drop missing its history
file, on files still growing and on a truncated voter file; each asserts the exit code, the
message and that the warehouse's current snapshot did not move."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import bad_snapshots as bad  # noqa: E402

from voterpipe import storage  # noqa: E402
from voterpipe.formats.drops import DropRule, check_drop, write_marker  # noqa: E402
from voterpipe.formats.layouts import load_layouts, layouts_for_state  # noqa: E402

MISSING_DATA = 20  # luigi.cfg [retcode] missing_data
QUALITY_GATE = 50  # luigi.cfg [quality] exit_code




def test_history_file_missing_then_arriving_with_the_marker(root, capsys):
    drop = bad.next_drop(root, files=(bad.VOTER_FILE,), marker=False, age_seconds=3600)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == MISSING_DATA, output
    assert f"raw drop {drop} is incomplete" in output
    assert "missing history file (ncvhis_Statewide.txt" in output
    assert not storage.stage_dir("canonical", "nc", bad.SECOND).exists()  # never imported
    assert bad.current_snapshots(root) == {bad.FIRST}

    shutil.copyfile(storage.raw_dir("nc", bad.FIRST, root) / bad.HISTORY_FILE, drop / bad.HISTORY_FILE)
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == 0, output
    assert bad.current_snapshots(root) == {bad.SECOND}


def test_a_file_still_growing_when_the_run_starts(root, capsys):
    drop = bad.next_drop(root, marker=False)  # just copied, no marker: still within settle_seconds
    with open(drop / bad.VOTER_FILE, "a", encoding="latin-1") as handle:
        handle.write("")  # the copy goes on
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == MISSING_DATA, output
    # seconds since the copy: 0 on a quiet machine, a little more on a loaded one
    assert re.search(rf"still changing ({bad.HISTORY_FILE}|{bad.VOTER_FILE}) \(modified \d+s ago", output)
    assert "without a _READY marker a drop must be unchanged for 600s" in output
    assert bad.current_snapshots(root) == {bad.FIRST}

    # the marker was written, then the sender's copy touched the voter file again
    bad.age(drop, 3600)
    bad.write_marker(drop)
    bad.age(drop, 3600)
    (drop / bad.VOTER_FILE).touch()
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == MISSING_DATA, output
    assert re.search(rf"still changing {bad.VOTER_FILE} \(modified 3600s after the _READY marker and \d+s ago\)",
                     output)
    assert bad.current_snapshots(root) == {bad.FIRST}


def test_a_truncated_voter_file(root, capsys):
    drop = bad.next_drop(root, marker=False)
    voters = drop / bad.VOTER_FILE
    size = voters.stat().st_size
    with open(voters, "r+b") as handle:
        handle.truncate(size // 2)  # cut mid-copy, most likely mid-line
    # still being copied (no marker, just written): not imported
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == MISSING_DATA, output
    assert "still changing" in output and bad.VOTER_FILE in output
    # the copy tool gave up but wrote its marker anyway: the quality gates stop it
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == QUALITY_GATE, output
    assert "quality gate voter_count_change failed for nc 2026-11-08 (stage cohorts)" in output
    assert "voters against" in output and "in 2026-11-01" in output
    assert "--accept voter_count_change" in output
    assert bad.current_snapshots(root) == {bad.FIRST}


# ---- the rule itself, on the shipped layouts ---------------------------------------------------

def _files(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("x\n")
    bad.age(directory, 3600)
    return directory


def test_florida_needs_every_county_unless_the_drop_is_partial(tmp_path):
    layouts = layouts_for_state("fl")
    drop = _files(tmp_path / "fl", "ALA_20261101.txt", "ALA_H_20261101.txt", "LEO_20261101.txt")
    status = check_drop(drop, layouts, DropRule(settle_seconds=600))
    assert not status.complete
    assert "voters files of 65 counties: BAK, BAY" in status.reason()  # 67 counties less ALA and LEO
    assert "history files of 66 counties" in status.reason()
    status = check_drop(drop, layouts, DropRule(partial_counties=True))
    assert status.missing == ["history files of 1 county: LEO"]

    (drop / "LEO_H_20261101.txt").write_text("x\n")
    bad.age(drop, 3600)
    assert not check_drop(drop, layouts, DropRule()).complete
    assert check_drop(drop, layouts, DropRule(partial_counties=True)).complete
    write_marker(drop, load_layouts()["fl_extract"])  # a partial drop says so in its marker
    assert (drop / "_READY").read_text() == "partial_counties = true\n"
    assert check_drop(drop, layouts, DropRule()).complete


def test_marker_required_when_settle_seconds_is_zero(tmp_path):
    layouts = layouts_for_state("mi")
    drop = _files(tmp_path / "mi", "entire_state_v.lst", "entire_state_h.lst")
    status = check_drop(drop, layouts, DropRule(settle_seconds=0))
    assert "missing elections file (electionscd.lst)" in status.reason()
    assert "no _READY marker" in status.reason()
    _files(drop, "electionscd.lst", "_READY")
    assert check_drop(drop, layouts, DropRule(settle_seconds=0)).complete
    assert check_drop(tmp_path / "nowhere", layouts, DropRule()).problem == "the directory does not exist"
