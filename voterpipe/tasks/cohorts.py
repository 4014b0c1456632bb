"""AnalyseCohorts (06_cohorts) and ReportSnapshot (07_reporting/.../report): thin tasks over
voterpipe.cohorts and voterpipe.report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from voterpipe import cohorts, storage
from voterpipe.tasks.base import SnapshotTask, previous_snapshot
from voterpipe.tasks.geocode import GeocodeAddresses
from voterpipe.tasks.households import BuildHouseholds
from voterpipe.tasks.imports import ImportSnapshot

VOTER_COLUMNS = [
    "voter_id", "county_code", "county_name", "birth_date", "birth_year", "party", "status",
    "registered_on", "congressional_district", "state_senate_district", "state_house_district",
]
HISTORY_COLUMNS = ["voter_id", "election_date", "election_type"]
GEOCODE_COLUMNS = [
    "address_key", "status", "state_fips", "county_fips", "tract", "congressional_district",
    "state_senate_district", "state_house_district",
]
PREVIOUS_COLUMNS = [
    "voter_id", "status", "party", "household_id",
    *(d for d in cohorts.TRANSITION_DIMENSIONS if d not in ("all", "party")),
]


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return storage.read_parquet(path, columns=columns).to_pandas(date_as_object=False)


def _previous_cohorts(
    state: str, snapshot: date, config: cohorts.CohortConfig,
) -> tuple[pd.DataFrame | None, date | None]:
    """The previous snapshot's voter cohorts: its 06_cohorts table when published, else rebuilt
    from its canonical roll (address keys from its 03_addresses stage when that exists)."""
    earlier = previous_snapshot("cohorts", state, snapshot)
    if earlier is not None:
        return _read(storage.stage_dir("cohorts", state, earlier) / "voter_cohorts.parquet", PREVIOUS_COLUMNS), earlier
    earlier = previous_snapshot("canonical", state, snapshot)
    if earlier is None:
        return None, None
    canonical = storage.stage_dir("canonical", state, earlier)
    voters = _read(canonical / "voters.parquet", VOTER_COLUMNS)
    history = _read(canonical / "history.parquet", HISTORY_COLUMNS)
    frame, _, _ = cohorts.cohorts_for_roll(voters, history, earlier, config)
    links = storage.stage_dir("addresses", state, earlier) / "voter_addresses.parquet"
    if storage.is_published(links.parent):
        keys = _read(links, ["voter_id", "address_key"]).drop_duplicates("voter_id").set_index("voter_id")
        frame["household_id"] = keys["address_key"].reindex(frame["voter_id"]).to_numpy()
    return frame, earlier


class AnalyseCohorts(SnapshotTask):
    """06_cohorts/<state>/<snapshot>/: voter_cohorts, cohort_turnout, elections, household_sizes,
    household_party_mix, geocode_coverage and (with an earlier snapshot) transitions."""

    layer = "cohorts"

    def requires(self):
        return {
            "canonical": ImportSnapshot(state=self.state, snapshot=self.snapshot),
            "geocoded": GeocodeAddresses(state=self.state, snapshot=self.snapshot),
            "households": BuildHouseholds(state=self.state, snapshot=self.snapshot),
        }

    def build(self, staging: Path) -> dict:
        config = cohorts.load_cohort_config()
        inputs = self.input()
        self.progress(0.0, "reading the roll, history, households and geocodes")
        voters = _read(inputs["canonical"].file("voters.parquet"), VOTER_COLUMNS)
        history = _read(inputs["canonical"].file("history.parquet"), HISTORY_COLUMNS)
        voter_households = _read(inputs["households"].file("voter_households.parquet"), ["voter_id", "household_id"])
        households = _read(inputs["households"].file("households.parquet"),
                           ["household_id", "voter_count", "party_mix"])
        geocodes = _read(inputs["geocoded"].file("geocodes.parquet"), GEOCODE_COLUMNS)
        previous, earlier = _previous_cohorts(self.state, self.snapshot, config)
        self.progress(0.2, f"{len(voters)} voters, {len(history)} history rows; computing cohorts")
        tables = cohorts.analyse_cohorts(
            voters, history, voter_households, households, geocodes, state=self.state,
            snapshot=self.snapshot, config=config, previous=previous)
        self.progress(0.8, "writing cohort tables")
        written = cohorts.write_cohort_tables(tables, staging, self.state, self.snapshot, earlier)
        return {
            "files": written,
            "config": str(Path(config.source).name),
            "previous_snapshot": earlier.isoformat() if earlier else None,
            **tables.summary,
        }


class ReportSnapshot(SnapshotTask):
    """07_reporting/<state>/<snapshot>/report/report.html with every chart's numbers as CSV beside it."""

    layer = "reporting/report"

    def requires(self):
        return {
            "cohorts": AnalyseCohorts(state=self.state, snapshot=self.snapshot),
            "canonical": ImportSnapshot(state=self.state, snapshot=self.snapshot),
            "geocoded": GeocodeAddresses(state=self.state, snapshot=self.snapshot),
        }

    def build(self, staging: Path) -> dict:
        from voterpipe import report  # matplotlib loads only when a report is drawn

        inputs = self.input()
        self.progress(0.0, "drawing the snapshot report")
        sources = report.ReportSources.from_directories(
            state=self.state, snapshot=self.snapshot,
            cohorts_dir=inputs["cohorts"].path, canonical_dir=inputs["canonical"].path,
            geocoded_dir=inputs["geocoded"].path,
            raw_dir=storage.raw_dir(self.state, self.snapshot),
        )
        written = report.write_report(sources, staging)
        self.progress(1.0, f"report with {len(written['charts'])} charts")
        return written
