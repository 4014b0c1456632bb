"""Atomic publication: a stage directory appears whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from voterpipe import storage


def test_publish_dir_renames_into_place(tmp_path):
    final = tmp_path / "02_canonical" / "nc" / "2026-11-01"
    with storage.publish_dir(final) as staging:
        storage.write_parquet(pa.table({"a": [1, 2]}), staging / "voters.parquet")
        storage.write_manifest(staging, {"rows": 2})
        assert not final.exists()
    assert storage.is_published(final)
    assert storage.read_parquet(final / "voters.parquet").num_rows == 2
    assert [p.name for p in final.parent.iterdir()] == ["2026-11-01"]


def test_failure_leaves_nothing(tmp_path):
    final = tmp_path / "layer" / "nc" / "2026-11-01"
    with pytest.raises(RuntimeError):
        with storage.publish_dir(final) as staging:
            (staging / "half.parquet").write_bytes(b"partial")
            raise RuntimeError("boom")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []


def test_republish_replaces_previous_output(tmp_path):
    final = tmp_path / "layer" / "nc" / "2026-11-01"
    for rows in (1, 3):
        with storage.publish_dir(final) as staging:
            storage.write_parquet(pa.table({"a": list(range(rows))}), staging / "t.parquet")
            storage.write_manifest(staging, {"rows": rows})
    assert storage.read_manifest(final) == {"rows": 3}
    assert [p.name for p in final.parent.iterdir()] == ["2026-11-01"]


def test_killed_writer_leaves_only_a_staging_dir_that_is_swept(tmp_path):
    final = tmp_path / "layer" / "nc" / "2026-11-01"
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from voterpipe import storage
        with storage.publish_dir(Path({str(final)!r})) as staging:
            (staging / "voters.parquet").write_bytes(b"x" * 1000)
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not storage.is_published(final)
    leftovers = list(final.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".2026-11-01.staging-")
    with storage.publish_dir(final) as staging:
        storage.write_manifest(staging, {})
    assert [p.name for p in final.parent.iterdir()] == ["2026-11-01"]


def test_atomic_file_keeps_old_content_on_error(tmp_path):
    target = tmp_path / "cache.json"
    storage.write_json({"v": 1}, target)
    with pytest.raises(ValueError):
        with storage.atomic_file(target, "w") as handle:
            handle.write("{broken")
            raise ValueError("stop")
    assert storage.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["cache.json"]


def test_unknown_layer_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown data layer"):
        storage.stage_dir("08_nowhere", "nc", "2026-11-01", root=tmp_path)


def test_an_s3_root_is_worked_on_in_a_local_scratch_copy(monkeypatch, tmp_path):
    from voterpipe import config

    monkeypatch.delenv(config.SCRATCH_ENV, raising=False)
    monkeypatch.setenv(config.DATA_ROOT_ENV, "s3://votes/weekly/")
    assert config.remote_root() == "s3://votes/weekly"
    assert storage.data_root() == (Path.home() / ".cache" / "voterpipe" / "votes" / "weekly").resolve()
    monkeypatch.setenv(config.SCRATCH_ENV, str(tmp_path / "scratch"))
    assert storage.data_root() == tmp_path / "scratch"
    assert storage.remote().key(storage.stage_dir("canonical", "nc", "2026-11-01")) == \
        "votes/weekly/02_canonical/nc/2026-11-01"
    monkeypatch.setenv(config.DATA_ROOT_ENV, "s3:///weekly")
    with pytest.raises(ValueError, match="names no bucket"):
        config.remote_root()


def test_a_local_root_answers_the_object_store_questions_locally(monkeypatch, tmp_path):
    from voterpipe import config

    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path))
    assert config.remote_root() is None and storage.remote() is None
    final = storage.stage_dir("canonical", "nc", "2026-11-01")
    assert storage.published_manifest(final) is None
    with storage.publish_dir(final) as staging:
        storage.write_manifest(staging, {"rows": 2})
    (final.parent / "2026-11-08").mkdir()  # a snapshot directory with no manifest
    assert storage.published_manifest(final) == {"rows": 2}
    assert storage.child_names(final.parent) == ["2026-11-01", "2026-11-08"]
    assert storage.published_children(final.parent) == {"2026-11-01": {"rows": 2}}
    storage.pull(final)  # nothing to fetch on a local root
    assert storage.published_manifest(final) == {"rows": 2}
