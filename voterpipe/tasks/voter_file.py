"""BuildVoterFile: 07_reporting/<state>/<snapshot>/voter_file/voters_enriched.parquet, the enriched
voter file (one row per voter), which both warehouses load as it is."""

from __future__ import annotations

from pathlib import Path

from voterpipe.tasks.addresses import NormaliseAddresses
from voterpipe.tasks.base import SnapshotTask
from voterpipe.tasks.cohorts import AnalyseCohorts
from voterpipe.tasks.geocode import GeocodeAddresses
from voterpipe.tasks.households import BuildHouseholds
from voterpipe.tasks.imports import ImportSnapshot
from voterpipe.warehouse.enriched import write_voters_enriched
from voterpipe.warehouse.tables import ENRICHED_INPUTS, SOURCES, SourceFiles

VOTER_FILE = "voters_enriched.parquet"


def stage_requirements(task: SnapshotTask, names) -> dict:
    """The tasks producing the named SOURCES files for the task's (state, snapshot), by stage."""
    producers = {"canonical": ImportSnapshot, "addresses": NormaliseAddresses,
                 "geocoded": GeocodeAddresses, "households": BuildHouseholds,
                 "cohorts": AnalyseCohorts, BuildVoterFile.layer: BuildVoterFile}
    stages = dict.fromkeys(SOURCES[name][0] for name in names)
    return {stage: producers[stage](state=task.state, snapshot=task.snapshot) for stage in stages}


def input_files(task: SnapshotTask, names) -> SourceFiles:
    """The named SOURCES files inside the task's (complete) inputs."""
    inputs = task.input()
    return SourceFiles(task.state, task.snapshot,
                       {name: inputs[SOURCES[name][0]].file(SOURCES[name][1]) for name in names})


class BuildVoterFile(SnapshotTask):
    """Voters joined to their address, geocode, household and cohort labels, sorted by voter_id."""

    layer = "reporting/voter_file"

    def requires(self):
        return stage_requirements(self, ENRICHED_INPUTS)

    def build(self, staging: Path) -> dict:
        self.progress(0.0, "joining voters to addresses, geocodes, households and cohorts")
        written = write_voters_enriched(input_files(self, ENRICHED_INPUTS), staging / VOTER_FILE)
        self.progress(1.0, f"{written['rows']} voters, {written['columns']} columns")
        return {"files": [VOTER_FILE], **written}
