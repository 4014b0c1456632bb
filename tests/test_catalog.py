"""The stage catalogue: the one place stage files are named, and what tasks derive from it."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from voterpipe import catalog, storage, synth
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.tasks import EnrichSnapshot
from voterpipe.tasks.base import SnapshotTask, task_class

PACKAGE = Path(catalog.__file__).resolve().parent
SNAPSHOT = date(2026, 11, 1)


def test_every_stage_has_a_task_whose_inputs_are_the_catalogue_inputs():
    for stage in catalog.STAGES.values():
        cls = task_class(stage.name)
        if stage.name == "raw":
            continue
        assert issubclass(cls, SnapshotTask) and cls.stage_name == stage.name
        task = cls(state="nc", snapshot=SNAPSHOT)
        assert set(task.requires()) == set(stage.inputs), stage.name
        for name in stage.inputs:  # catalogue order is a topological order
            assert list(catalog.STAGES).index(name) < list(catalog.STAGES).index(stage.name)


def test_the_previous_snapshot_is_an_explicit_input():
    cohorts = task_class("cohorts")(state="nc", snapshot=SNAPSHOT, previous=date(2026, 10, 1))
    needed = cohorts.requires()
    assert needed["previous_canonical"].snapshot == date(2026, 10, 1)
    assert needed["previous_addresses"].snapshot == date(2026, 10, 1)
    assert "previous_canonical" not in task_class("cohorts")(state="nc", snapshot=SNAPSHOT).requires()


def test_downstream_follows_the_inputs():
    assert catalog.downstream("cohorts") == ("cohorts", "voter_file", "report", "publish")
    assert catalog.downstream("canonical")[0] == "canonical" and "addresses" in catalog.downstream("canonical")


def test_no_stage_file_name_is_written_outside_the_catalogue():
    names = {d.file for _, d in catalog.DATASETS.values()}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "catalog.py":
            continue
        text = path.read_text()
        for name in names:
            if re.search(rf"[\"']{re.escape(name)}[\"']", text):
                offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert offenders == []


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(KeyError, match="voters_enriched"):
        catalog.dataset("voter_enriched")
    with pytest.raises(KeyError, match="canonical"):
        catalog.stage("canon")


@pytest.mark.slow
def test_every_written_file_has_its_declared_schema(data_root):
    synth.write_drop(state="nc", voters=800, snapshot=SNAPSHOT, seed=11)
    synth.write_drop(state="nc", voters=800, snapshot=date(2026, 11, 8), seed=11, from_snapshot=SNAPSHOT)
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    luigi.task_register.Register.clear_instance_cache()
    assert luigi.build([EnrichSnapshot(state="nc", snapshot=date(2026, 11, 8))], local_scheduler=True,
                       log_level="WARNING")
    checked = 0
    for owner, entry in catalog.DATASETS.values():
        if entry.schema is None:
            continue
        path = owner.directory("nc", date(2026, 11, 8)) / entry.file
        assert path.is_file(), path  # transitions too: the earlier raw drop is the previous snapshot
        written = pq.read_schema(path)
        # names and types; DuckDB marks a column it wrote without nulls as required
        assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in entry.schema], entry.name
        checked += 1
    assert checked == len([d for _, d in catalog.DATASETS.values() if d.schema is not None])
