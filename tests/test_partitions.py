"""[scale] partitions: K partition tasks per heavy stage, merged into the same files one task writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import luigi
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from voterpipe import catalog, partitioning, storage, synth
from voterpipe.addresses.normalise import normalise_addresses, voter_cache_keys
from voterpipe.config import DATA_ROOT_ENV
from voterpipe.geocode.tiger import import_tiger_dir
from voterpipe.tasks import BuildHouseholds, EnrichSnapshot, GeocodeAddresses, NormaliseAddresses
from voterpipe.tasks.geocode import CensusBatches, census_batches_in_flight
from voterpipe.tasks.maintenance import CompactCaches, rebuild_from
from voterpipe.tasks.partitions import MAX_PARTITIONS, TASKS_PER_SNAPSHOT_LIMIT, partitions_for

SNAPSHOT = date(2026, 11, 1)
DATASETS = ("addresses", "voter_addresses", "geocodes", "households", "voter_households")
PARTITIONED = ("addresses", "geocoded", "households")


@pytest.fixture
def scale(monkeypatch):
    """Set [scale] options for one test, restoring them afterwards."""
    parser = luigi.configuration.get_config()
    added = []

    def set_option(section: str, value: str) -> None:
        if not parser.has_section(section):
            parser.add_section(section)
        assert not parser.has_option(section, "partitions")
        parser.set(section, "partitions", value)
        added.append(section)
        luigi.task_register.Register.clear_instance_cache()

    yield set_option
    for section in added:
        parser.remove_option(section, "partitions")
    luigi.task_register.Register.clear_instance_cache()


def _build_households(root: Path, monkeypatch) -> dict:
    """Build one NC snapshot up to households in `root`; the published tables and manifests."""
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    synth.write_drop(state="nc", voters=2500, snapshot=SNAPSHOT, seed=23, dirty_rate=0.05)
    import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    luigi.task_register.Register.clear_instance_cache()
    result = luigi.build([BuildHouseholds(state="nc", snapshot=SNAPSHOT)], local_scheduler=True,
                         detailed_summary=True, log_level="WARNING")
    assert result.status.name == "SUCCESS", result.summary_text
    tables = {name: pq.read_table(catalog.dataset_path(name, "nc", SNAPSHOT)) for name in DATASETS}
    manifests = {name: storage.read_manifest(catalog.stage(name).directory("nc", SNAPSHOT)) for name in PARTITIONED}
    return {"tables": tables, "manifests": manifests}


def _counts(manifest: dict) -> dict:
    """A manifest without what may differ between a partitioned and a single run."""
    return {k: v for k, v in manifest.items() if k not in ("fingerprint", "partitions", "stage")}


def test_three_partitions_write_what_one_task_writes(tmp_path, monkeypatch, scale):
    one = _build_households(tmp_path / "one", monkeypatch)
    scale("scale", "3")
    three = _build_households(tmp_path / "three", monkeypatch)

    for name in DATASETS:
        single, merged = one["tables"][name], three["tables"][name]
        assert merged.schema.equals(single.schema), name
        assert merged.num_rows == single.num_rows > 0, name
        assert merged.equals(single), f"{name}: rows or their order differ"
    for name in PARTITIONED:
        assert _counts(three["manifests"][name]) == _counts(one["manifests"][name]), name
        assert three["manifests"][name]["partitions"] == 3
    # every partition did work, and the merge really had to join keys from several partitions
    root = tmp_path / "three"
    parts = {name: [pq.read_table(catalog.partition_directory(name, "nc", SNAPSHOT, i, 3, root) /
                                  catalog.stage(name).datasets[0].file) for i in range(3)] for name in PARTITIONED}
    assert all(t.num_rows > 0 for tables in parts.values() for t in tables)
    assert (root / "03_addresses" / "nc" / f"{SNAPSHOT}.partitions" / "compacted-003.json").is_file()
    # rebuild from a partitioned stage reruns its partitions too
    assert rebuild_from("nc", SNAPSHOT, "geocoded") == ["geocoded", "households", "cohorts", "voter_file",
                                                       "report", "publish"]
    published = {name: [storage.is_published(catalog.partition_directory(name, "nc", SNAPSHOT, i, 3))
                        for i in range(3)] for name in PARTITIONED}
    assert published == {"addresses": [True] * 3, "geocoded": [False] * 3, "households": [False] * 3}


def test_an_address_spelled_differently_in_two_partitions_merges_as_one_run_writes():
    spellings = ["{n} MAIN ST APT 4", "{n} MAIN STREET UNIT 4", "{n} Main St #4", "{n} MAIN ST  APT 4"]
    lines = [s.format(n=n) for n in range(100, 140) for s in spellings] + ["???", "", "!!", "???"]
    n = len(lines)
    voters = pa.table({"voter_id": [f"v{i}" for i in range(n)], "res_address_line": lines,
                       "res_city": ["RALEIGH", "Raleigh"] * (n // 2), "res_state": ["NC"] * n,
                       "res_zip5": ["27601"] * n})
    whole = normalise_addresses(voters, "nc")
    keys = voter_cache_keys(voters)
    addresses, links = [], []
    for partition in range(3):
        rows = partitioning.rows_of_partition(keys, partition, 3)
        part = normalise_addresses(voters.take(pa.array(rows)), "nc")
        links.append(partitioning.with_rows(part.voter_addresses, rows))
        addresses.append(partitioning.with_rows(part.addresses, partitioning.first_voter_rows(
            part.addresses, part.voter_addresses, keys.take(pa.array(rows)), rows), partitioning.FIRST_ROW))
    spread = pa.concat_tables(addresses)["address_key"].drop_null()
    assert len(spread) > len(pa.compute.unique(spread))  # some addresses came from two partitions
    assert partitioning.merge_addresses(addresses).equals(whole.addresses)
    assert partitioning.in_row_order(links, voters.num_rows).equals(whole.voter_addresses)


def test_one_partition_is_todays_graph(data_root):
    for cls in (NormaliseAddresses, GeocodeAddresses, BuildHouseholds):
        task = cls(state="nc", snapshot=SNAPSHOT)
        assert set(task.requires()) == set(task.stage.inputs)


def test_partitions_join_the_graph_and_the_fingerprint(data_root, scale):
    scale("scale.ca", "4")
    households = BuildHouseholds(state="ca", snapshot=SNAPSHOT)
    parts = [t for t in households.requires().values() if t.task_family == "BuildHouseholdsPart"]
    assert sorted(t.partition for t in parts) == [0, 1, 2, 3] and {t.partitions for t in parts} == {4}
    addresses = NormaliseAddresses(state="ca", snapshot=SNAPSHOT)
    needed = addresses.requires()
    assert isinstance(needed["compact_cache"], CompactCaches)
    assert len({t.fingerprint().value for t in needed.values() if t.task_family == "NormaliseAddressesPart"}) == 4
    assert set(BuildHouseholds(state="nc", snapshot=SNAPSHOT).requires()) == {"canonical", "addresses", "geocoded"}
    # each partitioned stage's K parts, one compaction per cache, raw, canonical and the 3 stages
    assert _graph_size(households) == 3 * 4 + 2 + 5


def _graph_size(task) -> int:
    seen, todo = set(), [task]
    while todo:
        task = todo.pop()
        if task.task_id not in seen:
            seen.add(task.task_id)
            todo.extend(luigi.task.flatten(task.requires()))
    return len(seen)


def test_the_largest_partition_count_keeps_a_snapshot_within_the_task_budget(data_root, scale):
    scale("scale.ca", str(MAX_PARTITIONS))
    enrich = EnrichSnapshot(state="ca", snapshot=date(2026, 11, 8), previous=SNAPSHOT)
    assert TASKS_PER_SNAPSHOT_LIMIT - 4 < _graph_size(enrich) <= TASKS_PER_SNAPSHOT_LIMIT


def test_partition_counts_outside_the_task_budget_are_refused(data_root, scale):
    scale("scale", str(MAX_PARTITIONS + 1))
    with pytest.raises(ValueError, match=f"{TASKS_PER_SNAPSHOT_LIMIT} tasks"):
        partitions_for("nc")
    scale("scale.nc", "0")
    with pytest.raises(ValueError, match=r"\[scale.nc\] partitions = 0"):
        partitions_for("nc")


def test_partition_of_a_key_is_the_same_in_every_process():
    keys = pa.array([f"L\x1f{i} MAIN ST\x1f2760{i % 10}" for i in range(2000)] + [None])
    here = partitioning.partition_numbers(keys, 7)
    assert set(here) == set(range(7)) and here[-1] == 0
    code = ("import sys, pyarrow as pa; from voterpipe import partitioning; "
            "keys = pa.array([f'L\\x1f{i} MAIN ST\\x1f2760{i % 10}' for i in range(2000)] + [None]); "
            "sys.stdout.write(','.join(map(str, partitioning.partition_numbers(keys, 7))))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED="12345"))
    assert other.stdout == ",".join(map(str, here))


def test_overlapping_or_missing_partitions_are_refused():
    piece = partitioning.with_rows(pa.table({"v": ["a", "b"]}), [0, 1])
    with pytest.raises(ValueError, match="two partitions"):
        partitioning.in_row_order([piece, piece])
    with pytest.raises(ValueError, match="the input has 3"):
        partitioning.in_row_order([piece], expected_rows=3)


# shared limits: [resources] -------------------------------------------------------------------------
def _set(section: str, option: str, value: str, restore: list) -> None:
    parser = luigi.configuration.get_config()
    restore.append((section, option, parser.get(section, option) if parser.has_option(section, option) else None))
    if not parser.has_section(section):
        parser.add_section(section)
    parser.set(section, option, value)
    luigi.task_register.Register.clear_instance_cache()


@pytest.fixture
def cfg():
    restore: list = []
    yield lambda section, option, value: _set(section, option, value, restore)
    parser = luigi.configuration.get_config()
    for section, option, value in reversed(restore):
        if value is None:
            parser.remove_option(section, option)
        else:
            parser.set(section, option, value)
    luigi.task_register.Register.clear_instance_cache()


def test_geocoding_holds_one_unit_per_census_batch_in_flight(data_root, cfg, scale):
    assert GeocodeAddresses(state="nc", snapshot=SNAPSHOT).resources == {}  # tiger: nothing shared
    cfg("geocoder", "backend", "census")
    cfg("geocoder", "batches_in_flight", "4")
    cfg("resources", "census_batches", "6")
    assert GeocodeAddresses(state="nc", snapshot=SNAPSHOT).resources == {"census_batches": 4}
    cfg("resources", "census_batches", "3")  # never more than the scheduler could ever grant
    assert GeocodeAddresses(state="nc", snapshot=SNAPSHOT).resources == {"census_batches": 3}
    assert census_batches_in_flight() == 3
    scale("scale.nc", "2")
    geocoded = GeocodeAddresses(state="nc", snapshot=SNAPSHOT)
    assert geocoded.resources == {}  # the merge sends nothing; each partition holds its batches
    parts = [t for t in geocoded.requires().values() if t.task_family == "GeocodeAddressesPart"]
    assert [t.resources for t in parts] == [{"census_batches": 3}] * 2


def test_publishes_hold_each_table_they_replace(data_root, cfg):
    from voterpipe.tasks import PublishSnapshot
    from voterpipe.warehouse.tables import TABLE_NAMES

    duck = PublishSnapshot(state="nc", snapshot=SNAPSHOT).resources
    assert duck["warehouse_duckdb"] == 1
    assert {f"publish_duckdb_voterpipe_{t}" for t in TABLE_NAMES} <= set(duck)
    cfg("warehouse", "backend", "postgres")
    cfg("warehouse", "schema", "coalition")
    pg = PublishSnapshot(state="fl", snapshot=SNAPSHOT).resources
    assert pg == {f"publish_postgres_coalition_{t}": 1 for t in TABLE_NAMES}
    other_state = PublishSnapshot(state="ca", snapshot=date(2026, 12, 1)).resources
    assert other_state == pg  # two snapshots of any state queue for the same tables


class _CensusCall(CensusBatches, luigi.Task):
    """Stands in for a geocoding task: records when it held its census_batches units."""

    name = luigi.Parameter()
    directory = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(f"{self.directory}/{self.name}.txt")

    def run(self):
        started = time.time()
        time.sleep(0.6)
        with self.output().open("w") as handle:
            handle.write(f"{started} {time.time()}")


def _overlaps(directory: Path, names: list[str]) -> int:
    spans = sorted(tuple(map(float, (directory / f"{n}.txt").read_text().split())) for n in names)
    return sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])


@pytest.mark.parametrize("capacity,in_flight,overlapping", [("2", "2", False), ("4", "2", True)])
def test_the_scheduler_caps_census_batches_across_worker_processes(tmp_path, cfg, capacity, in_flight, overlapping):
    cfg("geocoder", "backend", "census")
    cfg("geocoder", "batches_in_flight", in_flight)
    cfg("resources", "census_batches", capacity)
    names = ["a", "b", "c"]
    tasks = [_CensusCall(name=n, directory=str(tmp_path)) for n in names]
    assert luigi.build(tasks, workers=3, local_scheduler=True, log_level="WARNING")
    assert (_overlaps(tmp_path, names) > 0) == overlapping
