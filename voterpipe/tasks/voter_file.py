"""BuildVoterFile: 07_reporting/<state>/<snapshot>/voter_file/voters_enriched.parquet, the enriched
voter file (one row per voter), which both warehouses load as it is."""

from __future__ import annotations

from pathlib import Path

from voterpipe import config, storage
from voterpipe.tasks.base import PreviousSnapshot, SnapshotTask
from voterpipe.warehouse.enriched import write_voters_enriched
from voterpipe.warehouse.tables import ENRICHED_INPUTS, SourceFiles


def input_files(task: SnapshotTask, names) -> SourceFiles:
    """The named catalogue datasets inside the task's (complete) inputs."""
    return SourceFiles(task.state, task.snapshot, {name: task.input_path(name) for name in names})


class BuildVoterFile(PreviousSnapshot, SnapshotTask):
    """Voters joined to their address, geocode, household and cohort labels, sorted by voter_id."""

    stage_name = "voter_file"

    def build(self, staging: Path) -> dict:
        self.progress(0.0, "joining voters to addresses, geocodes, households and cohorts")
        entry = self.stage.dataset("voters_enriched")
        written = write_voters_enriched(input_files(self, ENRICHED_INPUTS), staging / entry.file,
                                        memory_limit=config.warehouse().duckdb_memory_limit,
                                        spill_dir=storage.cache_dir("duckdb_spill"))
        self.progress(1.0, f"{written['rows']} voters, {written['columns']} columns")
        return {"files": [entry.file], **written}
