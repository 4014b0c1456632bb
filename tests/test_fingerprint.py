"""Completeness that notices change: a stage reruns exactly when something it reads changed, and
processing snapshots out of order gives the same outputs as in order."""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import date
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from voterpipe import SHIPPED_CONFIG_DIR, catalog, storage, synth
from voterpipe.fingerprint import Fingerprint, file_checksum, layout_files_for_state
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.tasks import EnrichSnapshot

pytestmark = pytest.mark.slow

FIRST, SECOND = date(2026, 11, 1), date(2026, 11, 8)
STAGES = ("canonical", "addresses", "geocoded", "households", "cohorts", "voter_file", "report", "publish")


def _build(*tasks) -> None:
    luigi.task_register.Register.clear_instance_cache()
    result = luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status.name == "SUCCESS", result.summary_text


def _built_at(snapshot: date) -> dict[str, int]:
    """Each stage's manifest mtime: it changes only when the stage is rebuilt."""
    return {name: (catalog.stage(name).directory("nc", snapshot) / storage.MANIFEST).stat().st_mtime_ns
            for name in STAGES}


def _rebuilt(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.fixture
def nc_drop(data_root):
    synth.write_drop(state="nc", voters=1500, snapshot=FIRST, seed=3)
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    return data_root


@pytest.fixture
def luigi_setting():
    """Set luigi.cfg options for one test, restoring them afterwards."""
    parser = luigi.configuration.get_config()
    saved = []

    def set_option(section: str, option: str, value: str) -> None:
        had = parser.has_option(section, option)
        saved.append((section, option, parser.get(section, option) if had else None))
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, option, value)

    yield set_option
    for section, option, value in reversed(saved):
        if value is None:
            parser.remove_option(section, option)
        else:
            parser.set(section, option, value)


def test_unchanged_rerun_rebuilds_nothing(nc_drop):
    before = _built_at(FIRST)
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == set()


def test_editing_cohorts_toml_rebuilds_cohorts_and_downstream_only(nc_drop, luigi_setting, tmp_path, caplog):
    own = tmp_path / "cohorts.toml"
    shutil.copy(SHIPPED_CONFIG_DIR / "cohorts.toml", own)
    luigi_setting("voterpipe", "cohorts_file", str(own))
    before = _built_at(FIRST)
    # the same bytes at another path: nothing is out of date
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == set()

    own.write_text(own.read_text().replace('label = "unknown"', 'label = "not known"', 1))
    with caplog.at_level(logging.INFO, logger="voterpipe"):
        _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == {"cohorts", "voter_file", "report", "publish"}
    assert any("AnalyseCohorts" in r.message and "config_files.cohorts.toml changed" in r.message
               for r in caplog.records)
    labels = pq.read_table(catalog.dataset_path("voter_cohorts", "nc", FIRST), columns=["age_band_default"])
    assert "not known" in set(labels.column(0).to_pylist()) or "unknown" not in set(labels.column(0).to_pylist())


def test_a_households_threshold_rebuilds_households_not_geocodes(nc_drop, luigi_setting):
    before = _built_at(FIRST)
    luigi_setting("households", "group_quarters_min_voters", "2")
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == {"households", "cohorts", "voter_file", "report", "publish"}
    manifest = storage.read_manifest(catalog.stage("households").directory("nc", FIRST))
    assert manifest["group_quarters_rule"]["min_voters"] == 2


def test_replacing_a_raw_file_rebuilds_everything(nc_drop):
    before = _built_at(FIRST)
    raw = catalog.stage("raw").directory("nc", FIRST)
    voter_file = next(p for p in raw.iterdir() if p.name.startswith("ncvoter"))
    lines = voter_file.read_bytes().splitlines(keepends=True)
    voter_file.write_bytes(b"".join(lines[:-5]))  # the last five voters withdrawn
    (raw / "_READY").touch()  # the re-delivery is marked complete again (formats/drops.py)
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == set(STAGES)
    imported = storage.read_manifest(catalog.stage("canonical").directory("nc", FIRST))
    recorded = Fingerprint.from_json(imported["fingerprint"])
    assert recorded.parts["raw"][voter_file.name] == file_checksum(voter_file)[0]


def test_touching_a_raw_file_rehashes_it_but_rebuilds_nothing(nc_drop):
    before = _built_at(FIRST)
    raw = catalog.stage("raw").directory("nc", FIRST)
    voter_file = next(p for p in raw.iterdir() if p.name.startswith("ncvoter"))
    voter_file.touch()  # new mtime, same bytes
    (raw / "_READY").touch()
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == set()


def test_layout_files_of_a_state_include_what_they_extend(tmp_path):
    (tmp_path / "base.toml").write_text('name = "base"\nstate = "zz"\n')
    (tmp_path / "child.toml").write_text('name = "child"\nextends = "base"\n')
    (tmp_path / "other.toml").write_text('name = "other"\nstate = "yy"\n')
    names = [p.name for p in layout_files_for_state([tmp_path], "zz")]
    assert names == ["base.toml", "child.toml"]
    shipped = [p.name for p in layout_files_for_state([SHIPPED_CONFIG_DIR / "formats"], "nc")]
    assert shipped and all(name.startswith("nc_") for name in shipped)


def _content_digests(root: Path) -> dict[str, str]:
    """Every stage file's content (Parquet as its rows, the report's CSVs as bytes), by path."""
    digests = {}
    for name in STAGES[:-1]:
        for snapshot in (FIRST, SECOND):
            directory = catalog.stage(name).directory("nc", snapshot, root)
            for path in sorted(directory.glob("*")):
                if path.suffix == ".parquet":
                    table = pq.read_table(path)
                    body = table.to_pandas().to_csv(index=False).encode()
                elif path.suffix == ".csv":
                    body = path.read_bytes()
                else:
                    continue
                digests[str(path.relative_to(root))] = hashlib.sha256(body).hexdigest()
    return digests


def _two_snapshots(root: Path, monkeypatch, order: tuple[date, ...]) -> dict[str, str]:
    monkeypatch.setenv("VOTERPIPE_DATA_ROOT", str(root))
    root.mkdir()
    synth.write_drop(state="nc", voters=1200, snapshot=FIRST, seed=5)
    synth.write_drop(state="nc", voters=1200, snapshot=SECOND, seed=5, from_snapshot=FIRST)
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    for snapshot in order:
        _build(EnrichSnapshot(state="nc", snapshot=snapshot))
    return _content_digests(root)


def test_out_of_order_processing_gives_the_same_outputs(tmp_path, monkeypatch):
    in_order = _two_snapshots(tmp_path / "in_order", monkeypatch, (FIRST, SECOND))
    reversed_order = _two_snapshots(tmp_path / "reversed", monkeypatch, (SECOND, FIRST))
    assert in_order.keys() == reversed_order.keys()
    assert any("transitions" in path for path in in_order)  # the second snapshot compared with the first
    differing = [path for path in in_order if in_order[path] != reversed_order[path]]
    assert differing == []


def test_an_own_formats_dir_overrides_a_shipped_layout(nc_drop, luigi_setting, tmp_path):
    own = tmp_path / "formats"
    own.mkdir()
    shutil.copy(SHIPPED_CONFIG_DIR / "formats" / "nc_current.toml", own / "nc_current.toml")
    luigi_setting("voterpipe", "formats_dir", str(own))
    before = _built_at(FIRST)
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))  # the same layout bytes: nothing to do
    assert _rebuilt(before, _built_at(FIRST)) == set()

    text = (own / "nc_current.toml").read_text()
    (own / "nc_current.toml").write_text(text + "\n# our own copy\n")
    _build(EnrichSnapshot(state="nc", snapshot=FIRST))
    assert _rebuilt(before, _built_at(FIRST)) == set(STAGES)
    recorded = storage.read_manifest(catalog.stage("canonical").directory("nc", FIRST))["fingerprint"]
    assert recorded["parts"]["config_files"]["nc_current.toml"] == file_checksum(own / "nc_current.toml")[0]
