"""Compressed deliveries: NC ships .zip. A .zip member or a .gz file is read as a stream (nothing
is extracted to disk); each member is reported, checksummed and reconciled like a plain file, and
a zip holding several members maps each one to its role. Real runs of `voterpipe run`."""

from __future__ import annotations

import gzip
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import bad_snapshots as bad  # noqa: E402

from voterpipe import storage  # noqa: E402
from voterpipe.formats.importer import plan_drop  # noqa: E402
from voterpipe.formats.readers import TextBlocks  # noqa: E402

MISSING_DATA = 20




def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zip(target: Path, *members: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            archive.write(member, member.name)


def test_a_zip_nc_drop_imports_like_the_plain_files(root, capsys):
    first = storage.raw_dir("nc", bad.FIRST, root)
    drop = storage.raw_dir("nc", bad.SECOND, root)
    drop.mkdir(parents=True)
    _zip(drop / "ncvoter_Statewide.zip", first / bad.VOTER_FILE)
    _zip(drop / "ncvhis_Statewide.zip", first / bad.HISTORY_FILE)
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == 0, output
    assert bad.current_snapshots(root) == {bad.SECOND}
    assert sorted(p.name for p in drop.iterdir()) == ["_READY", "ncvhis_Statewide.zip", "ncvoter_Statewide.zip"]

    plain = {f["name"]: f for f in storage.read_manifest(storage.stage_dir("canonical", "nc", bad.FIRST, root))["files"]}
    zipped = {f["name"]: f for f in storage.read_manifest(storage.stage_dir("canonical", "nc", bad.SECOND, root))["files"]}
    assert set(zipped) == {"ncvoter_Statewide.zip/ncvoter_Statewide.txt", "ncvhis_Statewide.zip/ncvhis_Statewide.txt"}
    for name, record in zipped.items():
        original = plain[name.split("/")[1]]
        assert record["sha256"] == original["sha256"] == _sha256(first / name.split("/")[1])
        assert record["size"] == original["size"]
        for key in ("rows_read", "rows_loaded", "rows_rejected", "rejected_by_reason", "values_nulled"):
            assert record[key] == original[key], (name, key)
        assert record["rows_read"] == record["rows_loaded"] + record["rows_rejected"] + record.get("rows_skipped", 0)


def test_a_zip_still_being_written_is_not_imported(root, capsys):
    first = storage.raw_dir("nc", bad.FIRST, root)
    drop = storage.raw_dir("nc", bad.SECOND, root)
    drop.mkdir(parents=True)
    _zip(drop / "ncvoter_Statewide.zip", first / bad.VOTER_FILE, first / bad.HISTORY_FILE)
    with open(drop / "ncvoter_Statewide.zip", "r+b") as handle:
        handle.truncate((drop / "ncvoter_Statewide.zip").stat().st_size // 2)
    bad.write_marker(drop)
    code, output = bad.run_snapshot(bad.SECOND, capsys=capsys)
    assert code == MISSING_DATA, output
    assert "still changing ncvoter_Statewide.zip (not a readable zip archive yet)" in output
    assert bad.current_snapshots(root) == {bad.FIRST}


def test_one_zip_with_several_members_maps_each_to_its_role(tmp_path, good_root):
    first = storage.raw_dir("nc", bad.FIRST, good_root)
    drop = tmp_path / "drop"
    drop.mkdir()
    with zipfile.ZipFile(drop / "NC_Statewide.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(first / bad.VOTER_FILE, f"data/{bad.VOTER_FILE}")
        archive.write(first / bad.HISTORY_FILE, f"data/{bad.HISTORY_FILE}")
        archive.writestr("data/README.txt", "layout notes\n")
    plan = plan_drop(drop, "nc")
    assert [(d.role, d.path.relative_to(drop).as_posix()) for d in plan.files] == [
        ("voters", f"NC_Statewide.zip/data/{bad.VOTER_FILE}"), ("history", f"NC_Statewide.zip/data/{bad.HISTORY_FILE}")]
    assert plan.ignored == ["NC_Statewide.zip/data/README.txt"]

    member = TextBlocks(drop / "NC_Statewide.zip" / "data" / bad.VOTER_FILE, "latin-1", 1000)
    plain = TextBlocks(first / bad.VOTER_FILE, "latin-1", 1000)
    assert b"".join(member) == b"".join(plain)
    assert member.sha256 == plain.sha256 and member.total_bytes == plain.total_bytes


def test_a_gz_file_is_read_as_a_stream_and_checksummed_as_stored(tmp_path, good_root):
    source = storage.raw_dir("nc", bad.FIRST, good_root) / bad.VOTER_FILE
    packed = tmp_path / f"{bad.VOTER_FILE}.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    blocks = TextBlocks(packed, "latin-1", 1000)
    assert b"".join(blocks) == b"".join(TextBlocks(source, "latin-1", 1000))
    assert blocks.sha256 == _sha256(packed)
