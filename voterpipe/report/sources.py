"""What the report reads, loaded into ReportSources: the cohort tables, the import's rejects, each
voter's geography and general-election votes, geocoded points, and the import, geocode and cohort
manifests of one snapshot (read through voterpipe.manifests; quality gates from the raw bodies)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import catalog, storage
from voterpipe.cohorts.geography import _tract_geoid as tract_geoid  # the GEOID rule of 06_cohorts
from voterpipe.manifests import CohortManifest, GeocodeManifest, ImportManifest
from voterpipe.memory import release_memory
from voterpipe.report.changes import ROLL_COLUMNS, previous_roll_table

COHORTS, CANONICAL, GEOCODED = catalog.stage("cohorts"), catalog.stage("canonical"), catalog.stage("geocoded")
ADDRESSES = catalog.stage("addresses")
PROVENANCE_COLUMNS = ["file", "role", "layout", "size", "rows_read", "rows_loaded", "rows_rejected", "sha256"]
GEOGRAPHY_COLUMNS = ["voter_id", "county_code", "county_name", "status", "party", "household_id",
                     "registered_on", "congressional_district", "state_senate_district",
                     "state_house_district", "tract"]
GATE_KEYS = ("quality", "gates")  # manifest keys that may hold quality-gate records


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
    # per voter: GEOGRAPHY_COLUMNS + precinct (None: geography tables and maps are left out)
    voter_geography: pd.DataFrame | None = None
    general_votes: pd.DataFrame | None = None  # voter_id, election_date of the last two generals
    points: pd.DataFrame | None = None  # address_key, lon, lat of matched geocodes
    gates: pd.DataFrame = field(default_factory=lambda: gate_rows({}))
    import_body: dict = field(default_factory=dict)  # the import manifest as written (keys the typed one lacks)
    voters_by_parse_status: dict[str, int] = field(default_factory=dict)  # from the addresses manifest
    previous_snapshot: date | None = None  # the snapshot the changes compare with (None: first one)
    previous_roll: pd.DataFrame | None = None  # its voters: changes.ROLL_COLUMNS
    # address_key -> tract GEOID of the current geocodes (placing previous voters on the tract map)
    tracts_by_address: pd.DataFrame | None = None

    @classmethod
    def from_directories(cls, *, state: str, snapshot: date, cohorts_dir: Path, canonical_dir: Path,
                         geocoded_dir: Path | None = None, addresses_dir: Path | None = None,
                         previous: date | None = None, previous_canonical_dir: Path | None = None,
                         previous_addresses_dir: Path | None = None) -> "ReportSources":
        """Load the published 06_cohorts, 02_canonical and (optionally) 04_geocoded and 03_addresses
        stages (of 03_addresses only its manifest: gates and voters by parse status), and the
        previous snapshot's 02_canonical and 03_addresses when there is one."""
        cohorts_dir, canonical_dir = Path(cohorts_dir), Path(canonical_dir)

        @released
        def table(name: str, filters: list | None = None) -> pd.DataFrame:
            path = cohorts_dir / COHORTS.dataset(name).file
            read = storage.read_parquet(path) if filters is None else read_rows(path, filters)
            return read.to_pandas(date_as_object=False)

        transitions_path = cohorts_dir / COHORTS.dataset("transitions").file
        import_manifest = ImportManifest.from_json(_manifest(canonical_dir))
        elections = table("elections")
        manifests = {"canonical": _manifest(canonical_dir), "addresses": _manifest(addresses_dir),
                     "geocoded": _manifest(geocoded_dir), "cohorts": _manifest(cohorts_dir)}
        return cls(
            state=state, snapshot=snapshot,
            # The report charts state-level turnout only; tract rows can run to hundreds of thousands.
            cohort_turnout=table("cohort_turnout", [("geography_level", "=", "state")]),
            elections=elections,
            household_sizes=table("household_sizes"), household_party_mix=table("household_party_mix"),
            geocode_coverage=table("geocode_coverage"), registrations=_registrations(cohorts_dir),
            transitions=table("transitions") if transitions_path.is_file() else None,
            rejects=_rejects(canonical_dir),
            provenance=file_provenance(import_manifest),
            cohort_manifest=CohortManifest.from_json(_manifest(cohorts_dir)),
            geocode_manifest=GeocodeManifest.from_json(_manifest(geocoded_dir)),
            import_manifest=import_manifest,
            voter_geography=_voter_geography(cohorts_dir, canonical_dir),
            general_votes=_general_votes(canonical_dir, last_generals(elections, snapshot)),
            points=_points(geocoded_dir),
            gates=gate_rows(manifests),
            import_body=manifests["canonical"],
            voters_by_parse_status=dict(manifests["addresses"].get("voters_by_parse_status") or {}),
            previous_snapshot=previous if previous_canonical_dir is not None else None,
            previous_roll=_previous_roll(previous_canonical_dir, previous_addresses_dir),
            tracts_by_address=_tracts_by_address(geocoded_dir) if previous_canonical_dir is not None else None,
        )


def released(function):
    """`function`, then its Arrow buffers handed back to the system: mimalloc keeps freed pages
    for reuse, which numpy and pandas cannot use, so they would add to the peak RSS. Both the
    default pool and Arrow's own (compute kernels use it when pyarrow's default is replaced)."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            release_memory()
    return call


def _manifest(directory: Path | None) -> dict:
    if directory is None or not storage.is_published(Path(directory)):
        return {}
    return storage.read_manifest(Path(directory))


def read_rows(path: Path, filters: list, columns: list[str] | None = None) -> pa.Table:
    """The rows of a Parquet file that pass `filters` (pyarrow's DNF list), read one row group at
    a time: peak memory holds one group, not the whole file (cohort_turnout has a row per tract)."""
    file = pq.ParquetFile(path)
    expression = pq.filters_to_expression(filters)
    wanted = columns or file.schema_arrow.names
    needed = [c for c in file.schema_arrow.names if c in set(wanted) | _filter_columns(filters)]
    parts = [file.read_row_group(group, columns=needed).filter(expression).select(wanted)
             for group in range(file.num_row_groups)]
    return pa.concat_tables(parts) if parts else file.schema_arrow.empty_table().select(wanted)


def _filter_columns(filters: list) -> set[str]:
    flat = filters if not filters or isinstance(filters[0], tuple) else [f for group in filters for f in group]
    return {name for name, _, _ in flat}


@released
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
    rows = [(f.name, f.role or None, f.layout or import_manifest.layout or None, f.size, f.rows_read,
             f.rows_loaded, f.rows_rejected, f.sha256 or None)
            for f in sorted(import_manifest.files, key=lambda f: f.name)]
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)


def last_generals(elections: pd.DataFrame, snapshot: date, count: int = 2) -> list[date]:
    """The latest `count` general elections before the snapshot, oldest first."""
    if elections is None or elections.empty:
        return []
    days = pd.to_datetime(elections.loc[elections["election_type"] == "general", "election_date"]).dt.date
    return sorted(d for d in set(days) if d <= snapshot)[-count:]


@released
def _voter_geography(cohorts_dir: Path, canonical_dir: Path) -> pd.DataFrame:
    """Each voter's county, districts, tract, status, party, household and precinct."""
    cohorts_path = cohorts_dir / COHORTS.dataset("voter_cohorts").file
    present = set(pq.read_schema(cohorts_path).names)
    columns = [c for c in GEOGRAPHY_COLUMNS if c in present]
    coded = [c for c in columns if c not in ("voter_id", "household_id", "registered_on")]
    table = storage.read_parquet(cohorts_path, columns=columns, read_dictionary=coded)
    frame = table.to_pandas(date_as_object=False)
    voters_path = canonical_dir / CANONICAL.dataset("voters").file
    if voters_path.is_file():
        frame["precinct"] = _precincts(table["voter_id"], voters_path).to_pandas()
    return frame  # coded columns stay categorical: the geography tables factorize them


def _precincts(voter_ids: pa.ChunkedArray, voters_path: Path) -> pa.ChunkedArray:
    """The canonical precinct of each voter id (its first row there; null if none): a left join
    that copies no other column. Both stages write voters in the same order, so mostly no lookup."""
    precincts = storage.read_parquet(voters_path, columns=["voter_id", "precinct"], read_dictionary=["precinct"])
    ids = precincts["voter_id"]
    if len(ids) == len(voter_ids) and ids.equals(voter_ids.cast(ids.type)):
        return precincts["precinct"]
    return precincts["precinct"].take(pc.index_in(voter_ids, value_set=ids.combine_chunks()))


@released
def _general_votes(canonical_dir: Path, generals: list[date]) -> pd.DataFrame:
    """Distinct (voter_id, election_date) history rows of the given general elections."""
    path = canonical_dir / CANONICAL.dataset("history").file
    if not generals or not path.is_file():
        return pd.DataFrame({"voter_id": pd.Series(dtype=object), "election_date": pd.Series(dtype=object)})
    filters = [("election_type", "=", "general"), ("election_date", "in", generals)]
    file = pq.ParquetFile(path)
    counted = "ballot_status" in file.schema_arrow.names
    wanted = {"voter_id", "election_date", "election_type"} | ({"ballot_status"} if counted else set())
    columns = [c for c in file.schema_arrow.names if c in wanted]
    expression = pq.filters_to_expression(filters)
    parts = [_counted_votes(file.read_row_group(group, columns=columns).filter(expression), counted)
             for group in range(file.num_row_groups)]  # a row group at a time: the history is the largest input
    votes = pa.concat_tables(parts) if parts else file.schema_arrow.empty_table().select(["voter_id", "election_date"])
    del parts
    # distinct pairs, in order of first appearance (one thread keeps that order); dates as datetime64
    distinct = votes.group_by(["voter_id", "election_date"], use_threads=False).aggregate([])
    del votes
    return distinct.select(["voter_id", "election_date"]).to_pandas(date_as_object=False)


def _counted_votes(votes: pa.Table, counted: bool) -> pa.Table:
    """voter_id and election_date of the rows whose ballot counted: a ballot the state did not
    count is no vote (as in cohorts/votes.py); an unknown status counts."""
    if counted:
        status = votes["ballot_status"].combine_chunks()
        status = status.dictionary_decode() if pa.types.is_dictionary(status.type) else status
        votes = votes.filter(pc.fill_null(pc.not_equal(status, "not_counted"), True))
    return votes.select(["voter_id", "election_date"])


@released
def _points(geocoded_dir: Path | None) -> pd.DataFrame | None:
    """Matched geocodes' coordinates (the only geometry a report stage input holds)."""
    if geocoded_dir is None:
        return None
    path = Path(geocoded_dir) / GEOCODED.dataset("geocodes").file
    if not path.is_file():
        return None
    points = storage.read_parquet(path, columns=["address_key", "lon", "lat"],
                                  filters=[("status", "=", "match")]).to_pandas()
    return points.dropna(subset=["lon", "lat"]).reset_index(drop=True)


@released
def _previous_roll(canonical_dir: Path | None, addresses_dir: Path | None) -> pd.DataFrame | None:
    """The previous snapshot's voters with their households (changes.previous_roll)."""
    if canonical_dir is None or addresses_dir is None:
        return None
    columns = [c for c in ROLL_COLUMNS if c != "household_id"]
    voters = storage.read_parquet(Path(canonical_dir) / CANONICAL.dataset("voters").file, columns=columns)
    links = storage.read_parquet(Path(addresses_dir) / ADDRESSES.dataset("voter_addresses").file,
                                 columns=["voter_id", "address_key", "parse_status"])
    return previous_roll_table(voters, links).to_pandas()  # Arrow-backed str columns: no copy


@released
def _tracts_by_address(geocoded_dir: Path | None) -> pd.DataFrame | None:
    """address_key and tract GEOID (as in 06_cohorts) of the geocodes that have one."""
    path = None if geocoded_dir is None else Path(geocoded_dir) / GEOCODED.dataset("geocodes").file
    if path is None or not path.is_file():
        return None
    table = storage.read_parquet(path, columns=["address_key", "state_fips", "county_fips", "tract"],
                                 filters=[("status", "=", "match")])  # as 06_cohorts: matched geocodes only
    geoid = tract_geoid(*(pc.fill_null(table[c].cast(pa.large_string()), "")
                          for c in ("state_fips", "county_fips", "tract")))
    frame = pd.DataFrame({"address_key": table["address_key"].to_pandas(), "tract": geoid.to_pandas()})
    return frame.dropna().drop_duplicates("address_key").reset_index(drop=True)


GATE_COLUMNS = ["stage", "gate", "value", "threshold", "limit", "passed", "accepted", "detail"]


def gate_rows(manifests: dict[str, dict]) -> pd.DataFrame:
    """Every quality-gate record of the stage manifests (voterpipe.quality.GateResult.to_json()
    under 'gates', or a {'gates': [...]} under 'quality') as rows of GATE_COLUMNS."""
    rows = []
    for stage_name, body in manifests.items():
        for key in GATE_KEYS:
            found = (body or {}).get(key)
            if isinstance(found, dict):
                found = found.get("gates")
            for record in found if isinstance(found, list) else []:
                record = record if isinstance(record, dict) else {"value": record}
                rows.append([stage_name, record.get("name", "")] + [record.get(c) for c in GATE_COLUMNS[2:7]]
                            + [record.get("detail", "")])
    return pd.DataFrame(rows, columns=GATE_COLUMNS)
