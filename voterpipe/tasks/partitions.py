"""Partitioned stages ([scale] partitions = K): a stage task that, with K > 1, requires K partition
tasks (each one SnapshotTask over a hash range of its key) and merges their outputs into the same
catalogue files one task writes. K = 1 changes nothing: no partition task exists."""

from __future__ import annotations

from pathlib import Path

import luigi
import numpy as np
import pyarrow as pa

from voterpipe import catalog, config, storage
from voterpipe.fingerprint import Fingerprint
from voterpipe.partitioning import rows_of_partition
from voterpipe.tasks.base import SnapshotTask, StageTarget, task_class

# EnrichSnapshot's graph besides the partitions: the wrapper, raw and the eight stages, the
# previous snapshot's raw, canonical and addresses, three cache compactions (counted: 16).
STAGES_PER_SNAPSHOT = 16
PARTITIONED_STAGES = 3  # addresses, geocoded, households
TASKS_PER_SNAPSHOT_LIMIT = 1_000  # Luigi's scheduler slows quadratically with pending tasks
# K partitions of each partitioned stage and of the previous snapshot's addresses (rebuilt too
# when out of date): (PARTITIONED_STAGES + 1) * K + STAGES_PER_SNAPSHOT tasks at most.
MAX_PARTITIONS = (TASKS_PER_SNAPSHOT_LIMIT - STAGES_PER_SNAPSHOT) // (PARTITIONED_STAGES + 1)


def partitions_for(state: str) -> int:
    """[scale.<state>] partitions, else [scale] partitions; refused outside 1 .. MAX_PARTITIONS."""
    parser = luigi.configuration.get_config()
    section = f"scale.{state.lower()}"
    if parser.has_option(section, "partitions"):
        where, text = f"[{section}]", parser.get(section, "partitions")
    else:
        where, text = "[scale]", str(config.scale().partitions)
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"{where} partitions must be a whole number, got {text!r}") from None
    if not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(
            f"{where} partitions = {count}: it must be between 1 and {MAX_PARTITIONS}. Each snapshot "
            f"then needs about {(PARTITIONED_STAGES + 1) * count + STAGES_PER_SNAPSHOT} Luigi tasks, and "
            f"Luigi's scheduler slows quadratically with pending tasks: keep a snapshot under "
            f"{TASKS_PER_SNAPSHOT_LIMIT} tasks")
    return count


def part_name(partition: int) -> str:
    """The requires() key of one partition task."""
    return f"part_{partition:03d}"


class PartitionTask(SnapshotTask):
    """One partition of a stage: `partition` of `partitions`, written to
    <layer>/<state>/<snapshot>.partitions/<partition>-of-<partitions>/ with a manifest."""

    partition = luigi.IntParameter(description="this partition, 0 .. partitions - 1")
    partitions = luigi.IntParameter(description="how many partitions the stage is split into")

    def stage_target(self) -> StageTarget:
        return StageTarget(catalog.partition_directory(self.stage_name, self.state, self.snapshot,
                                                       self.partition, self.partitions))

    def fingerprint(self, memo: dict | None = None) -> Fingerprint:
        memo = {} if memo is None else memo
        if self.task_id not in memo:
            whole = super().fingerprint(memo)
            memo[self.task_id] = Fingerprint.of(
                {**whole.parts, "partition": {"index": self.partition, "count": self.partitions}}, whole.observed)
        return memo[self.task_id]

    def partition_rows(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The rows (ascending) whose key falls in this partition."""
        return rows_of_partition(keys, self.partition, self.partitions)


class PartitionedStage(SnapshotTask):
    """A stage that splits itself over [scale] partitions. Subclasses set `part_family` (the
    PartitionTask's family), `merge_inputs` (catalogue stages the merge reads itself) and implement
    build_whole() (K = 1) and merge() (K > 1)."""

    part_family: str = ""
    merge_inputs: tuple[str, ...] = ()

    def partition_count(self) -> int:
        return partitions_for(self.state)

    def partition_tasks(self) -> list[PartitionTask]:
        count = self.partition_count()
        cls = luigi.task_register.Register.get_task_cls(self.part_family)
        return [cls(state=self.state, snapshot=self.snapshot, partition=i, partitions=count) for i in range(count)]

    def requires(self) -> dict:
        if self.partition_count() == 1:
            return super().requires()
        needed = {name: self.clone(task_class(name)) for name in self.merge_inputs}
        needed.update({part_name(task.partition): task for task in self.partition_tasks()})
        needed.update(self.after_partitions())
        return needed

    def after_partitions(self) -> dict:
        """Tasks (not stages) to run between the partitions and the merge: cache compaction."""
        return {}

    def build(self, staging: Path) -> dict:
        if self.partition_count() == 1:
            return self.build_whole(staging)
        parts = [self.input()[part_name(i)] for i in range(self.partition_count())]
        return self.merge(staging, parts)

    def build_whole(self, staging: Path) -> dict:
        raise NotImplementedError

    def merge(self, staging: Path, parts: list[StageTarget]) -> dict:
        raise NotImplementedError

    @staticmethod
    def read_parts(parts: list[StageTarget], dataset: str) -> list[pa.Table]:
        """One partition dataset ('addresses_part', ...) of every partition."""
        entry = next(d for s in catalog.PARTITION_STAGES.values() for d in s.datasets if d.name == dataset)
        return [storage.read_parquet(part.file(entry.file)) for part in parts]
