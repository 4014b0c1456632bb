"""What each stage records in its manifest, as dataclasses: to_json() gives the manifest body,
from_json() reads one back (ignoring keys it does not know, such as the stage/state/snapshot and
fingerprint the task layer adds), so readers use attributes instead of guessing key names.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

M = TypeVar("M", bound="Manifest")


class Manifest:
    """Base of the manifest dataclasses: JSON in and out."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[M], body: dict | None) -> M:
        """The manifest in `body` (None or {} gives the defaults); unknown keys are ignored."""
        body = body or {}
        if not isinstance(body, dict):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(body).__name__}")
        hints = typing.get_type_hints(cls)
        values = {f.name: _typed(hints[f.name], body[f.name])
                  for f in dataclasses.fields(cls) if f.name in body}  # type: ignore[arg-type]
        return cls(**values)


def _typed(hint: Any, value: Any) -> Any:
    """`value` (parsed JSON) with nested manifest records rebuilt as their dataclasses."""
    if value is None:
        return None
    if isinstance(hint, type) and issubclass(hint, Manifest):
        return hint.from_json(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args:
        return [_typed(args[0], item) for item in value]
    if origin is dict and len(args) == 2:
        return {key: _typed(args[1], item) for key, item in value.items()}
    return value


# ---- 02_canonical (voterpipe.formats.importer) ----------------------------------------------------

@dataclass
class FileRecord(Manifest):
    """One raw file the importer read."""

    name: str = ""  # file name inside the raw drop
    role: str = ""  # 'voters', 'history' or an auxiliary table of the layout
    layout: str = ""
    size: int = 0  # bytes on disk
    sha256: str = ""
    encoding: str = ""
    bom: bool = False
    delimiter: str | None = None  # None for fixed-width files
    fixed_width: bool = False
    header: bool = False
    columns: int = 0
    rows_read: int = 0  # = rows_loaded + rows_rejected + rows_skipped
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0  # lines that are no record by the state's own codes (FL "did not vote")
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # reason code -> rows
    skipped_by_reason: dict[str, int] = field(default_factory=dict)  # e.g. "did_not_vote: History Code=N"
    values_nulled: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> reason -> values
    values_repaired: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> kind -> values
    nul_bytes_stripped: int = 0
    undecodable_bytes_replaced: int = 0
    stray_cr_replaced: int = 0
    boms_stripped: int = 0  # byte-order marks starting a line inside the file
    history_rows_from_wide_columns: int | None = None  # voter files with wide history columns only
    wide_history_columns: int | None = None


@dataclass
class ImportTotals(Manifest):
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    voters_loaded: int = 0
    history_loaded: int = 0  # history rows, from history files and wide voter-file columns


@dataclass
class ImportManifest(Manifest):
    layout: str = ""
    layout_file: str = ""
    files: list[FileRecord] = field(default_factory=list)  # in import order
    ignored_files: list[str] = field(default_factory=list)  # files of the drop no layout matched
    totals: ImportTotals = field(default_factory=ImportTotals)
    outputs: dict[str, str] = field(default_factory=dict)  # dataset name -> file name


# ---- 04_geocoded ------------------------------------------------------------------------------

@dataclass
class MatchRate(Manifest):
    """Geocode results of one group of addresses (a county, a parse status)."""

    addresses: int = 0
    match: int = 0
    no_match: int = 0
    tie: int = 0
    not_sent: int = 0
    match_rate: float | None = None  # matches over addresses sent; None when none was sent


@dataclass
class GeocodeManifest(Manifest):
    backend: str = ""
    benchmark: str = ""
    vintage: str = ""
    rows: int = 0
    addresses: int = 0
    sendable: int = 0
    not_sent: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    match_rate_by_parse_status: dict[str, MatchRate] = field(default_factory=dict)
    match_rate_by_county: dict[str, MatchRate] = field(default_factory=dict)


# ---- 05_households ----------------------------------------------------------------------------

@dataclass
class HouseholdManifest(Manifest):
    households: int = 0
    voters: int = 0
    voters_in_households: int = 0
    mean_household_size: float = 0.0
    party_mix: dict[str, int] = field(default_factory=dict)
    likely_group_quarters: int = 0
    multi_unit_households: int = 0
    geocoded_households: int = 0
    group_quarters_rule: dict[str, int] = field(default_factory=dict)  # min_voters, min_surnames


# ---- 06_cohorts -------------------------------------------------------------------------------

@dataclass
class CohortManifest(Manifest):
    files: dict[str, int] = field(default_factory=dict)  # file name -> rows written
    config: str = ""  # the cohort definitions file's name
    previous_snapshot: str | None = None  # ISO date the transitions compare with
    voters: int = 0
    history_rows: int = 0
    history_rows_not_on_roll: int = 0
    history_rows_on_or_after_snapshot: int = 0
    history_rows_not_counted: int = 0  # ballots the state did not count (FL B, P): no vote in turnout
    elections: int = 0
    generals_considered: list[str] = field(default_factory=list)  # ISO dates, oldest first
    age_methods: dict[str, int] = field(default_factory=dict)
    turnout_cohorts: dict[str, int] = field(default_factory=dict)
    district_sources: dict[str, int] = field(default_factory=dict)
    voters_geocoded: int | None = None
    voters_with_household: int | None = None
    denominator: str = ""


# ---- 07_reporting/.../report ------------------------------------------------------------------

@dataclass
class ReportManifest(Manifest):
    files: dict[str, int] = field(default_factory=dict)  # CSV: rows; PNG and HTML: bytes
    charts: list[str] = field(default_factory=list)
    charts_drawn: list[str] = field(default_factory=list)  # charts that had data to draw
    cohort_config: str = ""
