"""Personal data stays private on disk: after a real run every stage output, the address and
geocode caches and the DuckDB file are readable by their owner only ([voterpipe] file_mode)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import luigi
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import bad_snapshots as bad  # noqa: E402

from voterpipe import storage  # noqa: E402

PRIVATE = ("02_canonical", "03_addresses", "04_geocoded", "05_households", "06_cohorts", "07_reporting",
           "cache/addresses", "cache/geocodes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_caches_and_warehouse_are_owner_only_after_a_run(data_root):
    bad.build_good_root(data_root, voters=600)
    checked = 0
    for name in PRIVATE:
        top = data_root / name
        assert top.is_dir(), name
        for path in [top, *top.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600
            assert _mode(path) == expected, f"{path.relative_to(data_root)}: {oct(_mode(path))}"
            checked += 1
    assert _mode(data_root / "warehouse.duckdb") == 0o600
    assert checked > 40


def test_configured_mode_applies_to_staged_files_and_created_ones(data_root, monkeypatch):
    monkeypatch.setitem(luigi.configuration.get_config()["voterpipe"], "file_mode", "0640")
    luigi.task_register.Register.clear_instance_cache()
    final = data_root / "02_canonical" / "nc" / "2026-11-01"
    with storage.private_files():
        with storage.publish_dir(final) as staging:
            (staging / "voters.parquet").write_bytes(b"x")
            (staging / "sub").mkdir(mode=0o777)
            (staging / "sub" / "a.txt").write_text("x")
        created = data_root / "cache" / "geocodes" / "part.bin"
        storage.cache_dir("geocodes")
        created.write_bytes(b"x")
    assert _mode(final) == 0o750 and _mode(final / "sub") == 0o750
    assert _mode(final / "voters.parquet") == 0o640 and _mode(final / "sub" / "a.txt") == 0o640
    assert _mode(created) == 0o640 and _mode(created.parent) == 0o750

    monkeypatch.setitem(luigi.configuration.get_config()["voterpipe"], "file_mode", "0444")
    luigi.task_register.Register.clear_instance_cache()
    with pytest.raises(ValueError, match="must let the owner read and write"):
        storage.private_files().__enter__()
