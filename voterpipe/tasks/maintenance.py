"""retract and rebuild: take a published snapshot out of the warehouse, and mark stage outputs so
that the next run rebuilds them (their manifests are renamed aside, the data stays for inspection);
CompactCaches: merge the shared caches' parts once a partitioned stage's partitions are done."""

from __future__ import annotations

from datetime import date

import luigi

from voterpipe import catalog, storage
from voterpipe.tasks.base import StateParameter, log
from voterpipe.tasks.publish import configured_warehouse

BUILT_STAGES = tuple(name for name in catalog.STAGES if name != "raw")


class NoSuchSnapshot(LookupError):
    """rebuild: neither a raw drop nor any stage output of the snapshot exists."""


def snapshot_exists(state: str, snapshot: date) -> bool:
    return any(catalog.stage(name).directory(state, snapshot).exists() for name in catalog.STAGES)


def mark_for_rebuild(state: str, snapshot: date, stages: tuple[str, ...]) -> list[str]:
    """Unpublish the named stages of (state, snapshot), and their partitions ([scale] partitions
    > 1) so those rerun too; return the stages that were published."""
    for name in stages:
        if name in catalog.PARTITION_OF:
            directory = catalog.partitions_directory(name, state, snapshot)
            for part in sorted(directory.iterdir()) if directory.is_dir() else []:
                if part.is_dir():
                    storage.unpublish(part)
    return [name for name in stages if storage.unpublish(catalog.stage(name).directory(state, snapshot))]


def retract_snapshot(state: str, snapshot: date) -> dict:
    """Remove the snapshot from the warehouse (the current_* views move back to the previous
    snapshot in the same transaction), then mark its stage outputs for rebuilding. Raises
    warehouse.SnapshotNotPublished when the warehouse does not hold it."""
    report = configured_warehouse().retract(state, snapshot)
    report["stages_marked"] = mark_for_rebuild(state, snapshot, BUILT_STAGES)
    return report


def rebuild_from(state: str, snapshot: date, stage: str) -> list[str]:
    """Mark `stage` and every stage downstream of it for rebuilding; return them (catalogue order)."""
    if not snapshot_exists(state, snapshot):
        raise NoSuchSnapshot(f"no snapshot {state} {snapshot.isoformat()}: neither a raw drop nor a stage "
                             f"output under {storage.data_root()}")
    if stage == "raw":
        raise ValueError("the raw drop is not built; rebuild from 'canonical' to import it again")
    stages = catalog.downstream(stage)
    mark_for_rebuild(state, snapshot, stages)
    return list(stages)


COMPACTION_WAIT_SECONDS = 600.0  # another worker compacting the same cache: wait for it, then go on


class CompactCaches(luigi.Task):
    """After the partitions of a snapshot's partitioned stage ('addresses' or 'geocoded'), which
    append parts to the shared cache without compacting, merge that cache's parts into one. Runs
    once per (state, snapshot, stage) on whichever worker luigid picks; the caches' lock keeps it
    apart from compactions elsewhere, and appends racing it are never lost. Complete when its
    record names the fingerprints of the partitions it ran after."""

    state = StateParameter()
    snapshot = luigi.DateParameter()
    stage = luigi.ChoiceParameter(choices=["addresses", "geocoded"])

    def requires(self) -> list:
        from voterpipe.tasks.partitions import partitions_for

        count = partitions_for(self.state)
        cls = luigi.task_register.Register.get_task_cls(catalog.stage(catalog.PARTITION_OF[self.stage]).task)
        return [cls(state=self.state, snapshot=self.snapshot, partition=i, partitions=count) for i in range(count)]

    def record_path(self):
        directory = catalog.partitions_directory(self.stage, self.state, self.snapshot)
        return directory / f"compacted-{len(self.requires()):03d}.json"

    def partition_fingerprints(self) -> list[str | None]:
        found = []
        for target in self.input():
            recorded = target.fingerprint() if target.exists() else None
            found.append(recorded.value if recorded else None)
        return found

    def complete(self) -> bool:
        path = self.record_path()
        if not path.is_file():
            return False
        try:
            recorded = storage.read_json(path).get("partitions")
        except (OSError, ValueError):
            return False
        return recorded == self.partition_fingerprints()

    def run(self) -> None:
        with storage.private_files(), storage.synced_caches():  # s3:// root: merged part up, replaced ones deleted
            replaced = sum(cache.compact(wait_seconds=COMPACTION_WAIT_SECONDS) for cache in self.caches())
        log.info("CompactCaches %s %s %s: %d cache parts merged", self.stage, self.state, self.snapshot, replaced)
        self.record_path().parent.mkdir(parents=True, exist_ok=True)
        storage.write_json({"stage": self.stage, "state": self.state, "snapshot": self.snapshot.isoformat(),
                            "parts_merged": replaced, "partitions": self.partition_fingerprints()},
                           self.record_path())

    def caches(self) -> list:
        if self.stage == "addresses":
            from voterpipe.addresses.cache import AddressCache
            from voterpipe.addresses.parse import RULES_VERSION

            return [AddressCache(storage.cache_dir("addresses"), RULES_VERSION, compact_after=None)]
        from voterpipe.geocode.cache import GeocodeCache

        labels = {(m.get("backend"), m.get("benchmark"), m.get("vintage"))
                  for m in (target.manifest() for target in self.input())}
        return [GeocodeCache(storage.cache_dir("geocodes"), *label) for label in sorted(labels) if None not in label]
