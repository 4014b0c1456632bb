"""The one list of stages: for each, its directory, its files with their Arrow schemas, the task
that produces it and everything it reads (upstream stages, settings, config files, rule versions).

Tasks derive output(), requires() and their fingerprint from here; the warehouse and the report
find their input files here. No stage file name is written anywhere else. Like Kedro's data
catalogue, a dataset is named once and referred to by that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from voterpipe import schema, storage

MANIFEST = storage.MANIFEST
REPORT_PAGE = "report.html"


@dataclass(frozen=True)
class Dataset:
    """One file of a stage."""

    name: str  # catalogue name, unique across stages: 'voters', 'geocodes', ...
    file: str  # file name inside the stage directory
    schema: pa.Schema | None  # the Arrow schema the file is written with (None: not a table)
    optional: bool = False  # written only by some runs (transitions need a previous snapshot)


@dataclass(frozen=True)
class Setting:
    """Options of one luigi.cfg section that change a stage's output (not its speed); a state's
    [section.<state>] overrides them (config.state_values)."""

    section: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One stage of one (state, snapshot)."""

    name: str  # catalogue name: 'canonical', 'addresses', ..., 'voter_file'
    layer: str  # storage layer key ('canonical' -> 02_canonical)
    subdir: str  # '' when the stage is its layer's only stage per snapshot
    task: str  # the Luigi task family that produces it
    datasets: tuple[Dataset, ...] = ()
    inputs: tuple[str, ...] = ()  # upstream stages of the same snapshot
    previous_inputs: tuple[str, ...] = ()  # stages of the previous snapshot (with --previous)
    settings: tuple[Setting, ...] = ()
    config_files: tuple[str, ...] = ()  # 'formats' (config/formats/*.toml), 'cohorts'
    rules: tuple[str, ...] = ()  # 'module:CONSTANT' rule versions, resolved lazily
    hashes_raw_files: bool = False  # its fingerprint holds the raw drop's checksums
    description: str = ""

    @property
    def storage_key(self) -> str:
        return f"{self.layer}/{self.subdir}" if self.subdir else self.layer

    def directory(self, state: str, snapshot: date | str, root: Path | None = None) -> Path:
        return storage.stage_dir(self.storage_key, state, snapshot, root)

    def dataset(self, name: str) -> Dataset:
        for candidate in self.datasets:
            if candidate.name == name:
                return candidate
        raise KeyError(f"stage {self.name!r} has no dataset {name!r}; it has "
                       f"{[d.name for d in self.datasets]}")

    def path(self, name: str, state: str, snapshot: date | str, root: Path | None = None) -> Path:
        return self.directory(state, snapshot, root) / self.dataset(name).file

    def files_in(self, directory: Path) -> dict[str, Path]:
        """Each dataset's path inside `directory` (a staging directory, say), by name."""
        return {d.name: Path(directory) / d.file for d in self.datasets}


_ADDRESS_RULES = "voterpipe.addresses.parse:RULES_VERSION"
_IMPORT_RULES = "voterpipe.formats:RULES_VERSION"

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("raw", "raw", "", "RawDrop", description="the state's files as delivered"),
    Stage("canonical", "canonical", "", "ImportSnapshot", (
        Dataset("voters", "voters.parquet", schema.VOTERS),
        Dataset("history", "history.parquet", schema.HISTORY),
        Dataset("rejects", "rejects.parquet", schema.REJECTS),
    ), inputs=("raw",), settings=(Setting("quality", ("rejected_lines", "column_nulled")),),
        config_files=("formats",), rules=(_IMPORT_RULES,), hashes_raw_files=True,
        description="every file of the drop in the canonical schema"),
    Stage("addresses", "addresses", "", "NormaliseAddresses", (
        Dataset("addresses", "addresses.parquet", schema.ADDRESSES),
        Dataset("voter_addresses", "voter_addresses.parquet", schema.VOTER_ADDRESSES),
    ), inputs=("canonical",), settings=(Setting("quality", ("address_parse_rate",)),), rules=(_ADDRESS_RULES,),
        description="USPS Pub 28 addresses, address_key and building_key"),
    Stage("geocoded", "geocoded", "", "GeocodeAddresses", (
        Dataset("geocodes", "geocodes.parquet", schema.GEOCODES),
    ), inputs=("addresses", "canonical"),
        settings=(Setting("geocoder", ("backend", "census_url", "benchmark", "vintage",
                                       "census_districts")),
                  Setting("quality", ("geocode_match_rate",))),
        rules=("voterpipe.geocode.tiger:ENGINE_VERSION", "tiger_data"),
        description="one geocode per address_key"),
    Stage("households", "households", "", "BuildHouseholds", (
        Dataset("households", "households.parquet", schema.HOUSEHOLDS),
        Dataset("voter_households", "voter_households.parquet", schema.VOTER_HOUSEHOLDS),
    ), inputs=("canonical", "addresses", "geocoded"),
        settings=(Setting("households", ("group_quarters_min_surnames",
                                         "group_quarters_min_voters")),),
        config_files=("formats",),  # the layouts' [canonical] code forms
        rules=("voterpipe.households:RULES_VERSION",),
        description="voters sharing an address_key"),
    Stage("cohorts", "cohorts", "", "AnalyseCohorts", (
        Dataset("voter_cohorts", "voter_cohorts.parquet", schema.VOTER_COHORTS),
        Dataset("cohort_turnout", "cohort_turnout.parquet", schema.COHORT_TURNOUT),
        Dataset("elections", "elections.parquet", schema.COHORT_ELECTIONS),
        Dataset("household_sizes", "household_sizes.parquet", schema.HOUSEHOLD_SIZES),
        Dataset("household_party_mix", "household_party_mix.parquet", schema.HOUSEHOLD_PARTY_MIX),
        Dataset("geocode_coverage", "geocode_coverage.parquet", schema.GEOCODE_COVERAGE),
        Dataset("transitions", "transitions.parquet", schema.COHORT_TRANSITIONS, optional=True),
    ), inputs=("canonical", "geocoded", "households"), previous_inputs=("canonical", "addresses"),
        settings=(Setting("quality", ("voter_count_change", "history_not_on_roll")),),
        config_files=("cohorts", "formats"),  # formats: the layouts' [canonical] code forms
        rules=("voterpipe.cohorts:RULES_VERSION",),
        description="cohorts, turnout by cohort and geography, transitions"),
    Stage("voter_file", "reporting", "voter_file", "BuildVoterFile", (
        Dataset("voters_enriched", "voters_enriched.parquet", schema.VOTERS_ENRICHED),
    ), inputs=("canonical", "addresses", "geocoded", "households", "cohorts"),
        rules=("voterpipe.warehouse.enriched:RULES_VERSION",),
        description="the enriched voter file, one row per voter, sorted by voter_id"),
    Stage("report", "reporting", "report", "ReportSnapshot", (
        Dataset("report", REPORT_PAGE, None),
    ), inputs=("canonical", "addresses", "geocoded", "cohorts"), previous_inputs=("canonical", "addresses"),
        rules=("voterpipe.report:RULES_VERSION",),
        description="report.html with a CSV beside each chart and table, and the voter ids of each change"),
    Stage("publish", "reporting", "published", "PublishSnapshot",
           inputs=("voter_file", "canonical", "addresses", "geocoded", "households", "cohorts"),
           settings=(Setting("warehouse", ("backend", "duckdb_path", "schema")),),
           description="the snapshot's slice of the warehouse tables"),
)}

DATASETS: dict[str, tuple[Stage, Dataset]] = {
    d.name: (s, d) for s in STAGES.values() for d in s.datasets}


def _with_row(table_schema: pa.Schema, column: str) -> pa.Schema:
    return table_schema.append(pa.field(column, pa.int64()))


# One part of a partitioned stage ([scale] partitions = K > 1): the stage task then merges K of
# these. Partition files carry the voter's row in voters.parquet (voter_row) or an address's
# first voter's row (first_row), so the merge restores exactly the order one run writes.
PARTITION_STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("addresses_part", "addresses", "", "NormaliseAddressesPart", (
        Dataset("addresses_part", "addresses.parquet", _with_row(schema.ADDRESSES, "first_row")),
        Dataset("voter_addresses_part", "voter_addresses.parquet", _with_row(schema.VOTER_ADDRESSES, "voter_row")),
    ), inputs=("canonical",), rules=(_ADDRESS_RULES,),
        description="the addresses of the voters whose raw address string hashes to this partition"),
    Stage("geocoded_part", "geocoded", "", "GeocodeAddressesPart", (
        Dataset("geocodes_part", "geocodes.parquet", schema.GEOCODES),
    ), inputs=("addresses",),
        settings=(Setting("geocoder", ("backend", "census_url", "benchmark", "vintage", "census_districts")),),
        rules=("voterpipe.geocode.tiger:ENGINE_VERSION", "tiger_data"),
        description="geocodes of the address_keys that hash to this partition"),
    Stage("households_part", "households", "", "BuildHouseholdsPart", (
        Dataset("households_part", "households.parquet", schema.HOUSEHOLDS),
        Dataset("voter_households_part", "voter_households.parquet", _with_row(schema.VOTER_HOUSEHOLDS, "voter_row")),
    ), inputs=("canonical", "addresses", "geocoded"),
        settings=(Setting("households", ("group_quarters_min_surnames", "group_quarters_min_voters")),),
        config_files=("formats",), rules=("voterpipe.households:RULES_VERSION",),
        description="households of the buildings (building_key) that hash to this partition"),
)}
PARTITION_OF = {"addresses": "addresses_part", "geocoded": "geocoded_part", "households": "households_part"}
PARTITIONS_SUFFIX = ".partitions"  # 03_addresses/<state>/<snapshot>.partitions/003-of-008/


def partitions_directory(stage_name: str, state: str, snapshot: date | str, root: Path | None = None) -> Path:
    """Where a stage's partitions of one snapshot live: beside (not inside) the stage directory,
    which the merged stage replaces in one rename."""
    text = snapshot.isoformat() if isinstance(snapshot, date) else str(snapshot)
    return storage.stage_dir(stage(stage_name).layer, state, text + PARTITIONS_SUFFIX, root)


def partition_directory(stage_name: str, state: str, snapshot: date | str, partition: int, partitions: int,
                        root: Path | None = None) -> Path:
    return partitions_directory(stage_name, state, snapshot, root) / f"{partition:03d}-of-{partitions:03d}"


def stage(name: str) -> Stage:
    try:
        return STAGES[name] if name in STAGES else PARTITION_STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; the catalogue has {sorted(STAGES)}") from None


def stage_of_task(task_family: str) -> Stage:
    for candidate in STAGES.values():
        if candidate.task == task_family:
            return candidate
    raise KeyError(f"no stage is produced by task {task_family!r}")


def dataset(name: str) -> tuple[Stage, Dataset]:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; the catalogue has {sorted(DATASETS)}") from None


def dataset_path(name: str, state: str, snapshot: date | str, root: Path | None = None) -> Path:
    """Where the named dataset of (state, snapshot) lives under the data root."""
    owner, entry = dataset(name)
    return owner.directory(state, snapshot, root) / entry.file


def stages_for(datasets) -> tuple[str, ...]:
    """The stages holding the named datasets, in catalogue order."""
    wanted = {dataset(name)[0].name for name in datasets}
    return tuple(name for name in STAGES if name in wanted)


def downstream(name: str) -> tuple[str, ...]:
    """The stage and every stage that reads it, directly or not, in catalogue order."""
    found = {stage(name).name}
    for candidate in STAGES.values():  # catalogue order is a topological order
        if found & set(candidate.inputs):
            found.add(candidate.name)
    return tuple(n for n in STAGES if n in found)


def chart_csv(slug: str) -> str:
    """The CSV file beside a report chart."""
    return f"{slug}.csv"


def change_voters_csv(change: str) -> str:
    """The CSV of the voter ids of one snapshot change ('new_registrant', 'moved', ...) beside the report."""
    return f"12_changes_{change}_voters.csv"


def chart_image(slug: str) -> str:
    """The PNG file of a report chart (when charts are also written as files)."""
    return f"{slug}.png"
