"""AnalyseCohorts (06_cohorts) and ReportSnapshot (07_reporting/.../report): thin tasks over
voterpipe.cohorts and voterpipe.report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import cohorts, config, quality, storage
from voterpipe.formats.layouts import state_canonical
from voterpipe.households import assign_households
from voterpipe.manifests import ImportManifest
from voterpipe.tasks.base import PreviousSnapshot, SnapshotTask, StageTarget, log

VOTER_COLUMNS = [
    "voter_id", "county_code", "county_name", "birth_date", "birth_year", "party", "status",
    "registered_on", "congressional_district", "state_senate_district", "state_house_district", "precinct",
]
HISTORY_COLUMNS = ["voter_id", "election_date", "election_type", "ballot_status"]
# what snapshot_transitions reads of the previous voter_cohorts
PREVIOUS_COHORT_COLUMNS = ["voter_id", "status", "household_id", "party", "county_code",
                           *(d for d in cohorts.TRANSITION_DIMENSIONS if d not in ("all", "party", "county_code"))]
# labels (status, codes) are read as dictionaries: a few bytes a row
GEOCODE_COLUMNS = [
    "address_key", "status", "state_fips", "county_fips", "tract", "congressional_district",
    "state_senate_district", "state_house_district",
]


class AnalyseCohorts(PreviousSnapshot, SnapshotTask):
    """06_cohorts/<state>/<snapshot>/: voter_cohorts, cohort_turnout, elections, household_sizes,
    household_party_mix, geocode_coverage and (with --previous) transitions."""

    stage_name = "cohorts"

    def _frame(self, dataset: str, columns: list[str] | None = None, previous: bool = False) -> pd.DataFrame:
        return self.read(dataset, columns, previous).to_pandas(date_as_object=False)

    def _previous_cohorts(self, settings: cohorts.CohortConfig) -> pa.Table | None:
        """The previous snapshot's voter cohorts (the columns transitions compare), from its
        canonical roll and its addresses (households by the same rule as BuildHouseholds),
        whatever else of it has been built; read from its own cohort stage instead when that is
        up to date (the same rows)."""
        if self.previous is None:
            return None
        stored = self._stored_previous_cohorts()
        if stored is not None:
            return stored
        voters = self._frame("voters", VOTER_COLUMNS, previous=True)
        history = self._frame("history", HISTORY_COLUMNS, previous=True)
        frame, _, _ = cohorts.cohorts_for_roll(voters, history, self.previous, settings)
        del history
        links = self._frame("voter_addresses", previous=True)
        households = assign_households(voters[["voter_id", "status"]], links).set_index("voter_id")
        frame["household_id"] = households["household_id"].reindex(frame["voter_id"]).to_numpy()
        return pa.Table.from_pandas(frame[PREVIOUS_COHORT_COLUMNS], preserve_index=False)

    def _stored_previous_cohorts(self) -> pa.Table | None:
        """The previous snapshot's published voter_cohorts (the columns transitions compare) when
        its AnalyseCohorts is complete: its recorded fingerprint is what its inputs, the cohort
        definitions and the rules give now, so recomputing them would give the same rows. Label
        columns are read as dictionaries (a few bytes a voter)."""
        target = StageTarget(self.stage.directory(self.state, self.previous))
        if not target.exists():
            return None
        compared = target.manifest().get("previous_snapshot")
        earlier = AnalyseCohorts(state=self.state, snapshot=self.previous,
                                 previous=date.fromisoformat(compared) if compared else None)
        if not earlier.complete():
            return None
        path = target.file(self.stage.dataset("voter_cohorts").file)
        present = set(pq.read_schema(path).names)
        columns = [c for c in PREVIOUS_COHORT_COLUMNS if c in present]
        table = storage.read_parquet(path, columns, read_dictionary=[c for c in columns if c != "voter_id"])
        log.info("AnalyseCohorts %s %s: previous cohorts read from %s (%d voters)", self.state,
                 self.snapshot, self.previous, table.num_rows)
        return table

    def build(self, staging: Path) -> dict:
        settings = cohorts.load_cohort_config(config.cohorts_path())
        previous = self._previous_cohorts(settings)
        compared_with = self.previous if previous is not None else None
        self.progress(0.0, "reading households and geocodes; the roll and its history in parts")
        files = cohorts.CohortFiles(
            voters=self.input_path("voters"), history=self.input_path("history"),
            voter_households=self.input_path("voter_households"),
            households=self.input_path("households"), geocodes=self.input_path("geocodes"),
            voter_columns=VOTER_COLUMNS, geocode_columns=GEOCODE_COLUMNS)
        entry = self.stage.dataset("voter_cohorts")
        rows = 0
        with storage.parquet_writer(Path(staging) / entry.file, entry.schema) as writer:
            def write_part(frame: pd.DataFrame) -> None:  # one part of the roll at a time (peak memory)
                nonlocal rows
                part = cohorts.voter_cohorts_arrow(frame)
                writer.write_table(part)
                rows += part.num_rows
                self.progress(0.1 + 0.7 * rows / max(files_voters, 1), f"{rows} of {files_voters} voters")

            files_voters = pq.read_metadata(files.voters).num_rows
            tables = cohorts.analyse_cohorts_in_parts(
                files, write_part, state=self.state, snapshot=self.snapshot, config=settings,
                code_forms=state_canonical(self.state, config.formats_dirs()).code_forms, previous=previous)
        del previous, files
        self.progress(0.8, "writing cohort tables")
        written = {"voter_cohorts": rows, "cohort_turnout": self._write_turnout(staging, tables)}
        for name in cohorts.cohort_dataset_names(tables)[2:]:
            written[name] = self.write(staging, name, cohorts.cohort_arrow_table(
                tables, name, self.state, self.snapshot, compared_with))
        body = cohorts.cohort_manifest(tables, written, settings, compared_with).to_json()
        body["gates"] = self.enforce_gates(self._gates(body))
        return body

    def _write_turnout(self, staging: Path, tables: cohorts.CohortTables) -> int:
        """cohort_turnout an election at a time (a state's table has millions of rows)."""
        entry, rows = self.stage.dataset("cohort_turnout"), 0
        with storage.parquet_writer(Path(staging) / entry.file, entry.schema) as writer:
            for part in cohorts.cohort_turnout_arrow_parts(tables, self.state, self.snapshot):
                writer.write_table(part)
                rows += part.num_rows
        return rows

    def _gates(self, body: dict) -> list:
        """Voters against the previous snapshot's; history rows of voters not in the voter file."""
        limits, accept = self.thresholds(), self.accepted()
        voters = ImportManifest.from_json(self.input()["canonical"].manifest()).totals.voters_loaded
        previous_voters = None
        if self.previous is not None:
            previous_voters = ImportManifest.from_json(
                self.input()["previous_canonical"].manifest()).totals.voters_loaded
        return [
            quality.voter_count_gate(voters, previous_voters, self.previous and self.previous.isoformat(),
                                     limits["voter_count_change"], accept),
            quality.history_not_on_roll_gate(body.get("history_rows", 0), body.get("history_rows_not_on_roll", 0),
                                             limits["history_not_on_roll"], accept),
        ]


class ReportSnapshot(PreviousSnapshot, SnapshotTask):
    """07_reporting/<state>/<snapshot>/report/report.html with every chart's numbers as CSV beside it."""

    stage_name = "report"

    def build(self, staging: Path) -> dict:
        from voterpipe import report  # matplotlib loads only when a report is drawn

        inputs = self.input()
        self.progress(0.0, "drawing the snapshot report")
        sources = report.ReportSources.from_directories(
            state=self.state, snapshot=self.snapshot, cohorts_dir=inputs["cohorts"].path,
            canonical_dir=inputs["canonical"].path, geocoded_dir=inputs["geocoded"].path,
            addresses_dir=inputs["addresses"].path, previous=self.previous,
            previous_canonical_dir=inputs["previous_canonical"].path if self.previous else None,
            previous_addresses_dir=inputs["previous_addresses"].path if self.previous else None)
        sources = [sources]  # write_report holds the only reference: it lets each input go once used
        written = report.write_report(sources.pop(), staging)
        self.progress(1.0, f"report with {len(written['charts'])} charts")
        return written
