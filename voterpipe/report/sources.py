"""What the report reads, loaded into ReportSources: the cohort tables, the import's rejects, and
the import, geocode and cohort manifests of one snapshot (read through voterpipe.manifests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from voterpipe import catalog, storage
from voterpipe.manifests import CohortManifest, GeocodeManifest, ImportManifest

COHORTS, CANONICAL = catalog.stage("cohorts"), catalog.stage("canonical")
PROVENANCE_COLUMNS = ["file", "role", "rows_read", "rows_loaded", "rows_rejected", "sha256"]


@dataclass
class ReportSources:
    """Everything the report reads, already loaded (tests build it by hand)."""

    state: str
    snapshot: date
    cohort_turnout: pd.DataFrame
    elections: pd.DataFrame
    household_sizes: pd.DataFrame
    household_party_mix: pd.DataFrame
    geocode_coverage: pd.DataFrame
    registrations: pd.DataFrame  # generation, party, status, voters
    transitions: pd.DataFrame | None = None
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["source_file", "reason", "rejected"]))
    provenance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROVENANCE_COLUMNS))
    cohort_manifest: CohortManifest = field(default_factory=CohortManifest)
    geocode_manifest: GeocodeManifest = field(default_factory=GeocodeManifest)
    import_manifest: ImportManifest = field(default_factory=ImportManifest)

    @classmethod
    def from_directories(cls, *, state: str, snapshot: date, cohorts_dir: Path, canonical_dir: Path,
                         geocoded_dir: Path | None = None) -> "ReportSources":
        """Load the published 06_cohorts, 02_canonical and (optionally) 04_geocoded stages."""
        cohorts_dir, canonical_dir = Path(cohorts_dir), Path(canonical_dir)

        def table(name: str, filters: list | None = None) -> pd.DataFrame:
            return storage.read_parquet(cohorts_dir / COHORTS.dataset(name).file, filters=filters) \
                .to_pandas(date_as_object=False)

        transitions_path = cohorts_dir / COHORTS.dataset("transitions").file
        import_manifest = ImportManifest.from_json(_manifest(canonical_dir))
        return cls(
            state=state, snapshot=snapshot,
            # The report charts state-level turnout only; tract rows can run to hundreds of thousands.
            cohort_turnout=table("cohort_turnout", [("geography_level", "=", "state")]),
            elections=table("elections"),
            household_sizes=table("household_sizes"), household_party_mix=table("household_party_mix"),
            geocode_coverage=table("geocode_coverage"), registrations=_registrations(cohorts_dir),
            transitions=table("transitions") if transitions_path.is_file() else None,
            rejects=_rejects(canonical_dir),
            provenance=file_provenance(import_manifest),
            cohort_manifest=CohortManifest.from_json(_manifest(cohorts_dir)),
            geocode_manifest=GeocodeManifest.from_json(_manifest(geocoded_dir)),
            import_manifest=import_manifest,
        )


def _manifest(directory: Path | None) -> dict:
    if directory is None or not storage.is_published(Path(directory)):
        return {}
    return storage.read_manifest(Path(directory))


def _registrations(cohorts_dir: Path) -> pd.DataFrame:
    """Voters by generation, party and status, counted from voter_cohorts."""
    columns = ["generation", "party", "status"]
    counted = storage.read_parquet(cohorts_dir / COHORTS.dataset("voter_cohorts").file, columns=columns,
                                   read_dictionary=columns).to_pandas()
    registrations = counted.groupby(columns, observed=True).size().rename("voters").reset_index()
    for column in columns:
        registrations[column] = registrations[column].astype(object)
    return registrations


def _rejects(canonical_dir: Path) -> pd.DataFrame:
    """Rejected lines by source_file and reason, from the canonical stage's rejects table."""
    path = canonical_dir / CANONICAL.dataset("rejects").file
    if not path.is_file():
        return pd.DataFrame(columns=["source_file", "reason", "rejected"])
    frame = storage.read_parquet(path, columns=["source_file", "reason"]).to_pandas()
    return (frame.fillna({"source_file": "(unknown file)", "reason": "(no reason given)"})
            .groupby(["source_file", "reason"]).size().rename("rejected").reset_index())


def file_provenance(import_manifest: ImportManifest) -> pd.DataFrame:
    """One row per source file the import read: name, role, rows read / loaded / rejected and
    sha256, all from the import manifest (the report reads nothing of the raw drop)."""
    rows = [(f.name, f.role or None, f.rows_read, f.rows_loaded, f.rows_rejected, f.sha256 or None)
            for f in sorted(import_manifest.files, key=lambda f: f.name)]
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
