"""The cohort definitions: config/cohorts.toml read and validated into a CohortConfig (its comments
state the rules: age schemes, generations, tenure bands, turnout cohorts, party order)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from voterpipe import SHIPPED_CONFIG_DIR
from voterpipe.ages import MAX_PLAUSIBLE_AGE, MIN_PLAUSIBLE_AGE
from voterpipe.cohorts.bands import Band, check_bands

DEFAULT_CONFIG_PATH = SHIPPED_CONFIG_DIR / "cohorts.toml"

TURNOUT_CODES = (
    "super_voter", "consistent", "sporadic", "lapsed", "never_voted", "new_registrant", "unknown",
)


@dataclass(frozen=True)
class CohortConfig:
    unknown: str
    age_schemes: dict[str, tuple[Band, ...]]
    age_scheme_titles: dict[str, str]
    generations: tuple[Band, ...]
    tenure_bands: tuple[Band, ...]
    tenure_placeholder_before: date
    generals_considered: int
    even_years_only: bool
    min_election_share: float
    turnout_order: tuple[str, ...]
    turnout_labels: dict[str, str]
    party_order: tuple[str, ...]
    party_names: dict[str, str]
    household_top_size: int
    source: str = field(default="")

    def age_columns(self) -> list[str]:
        return [f"age_band_{name}" for name in self.age_schemes]

    def dimensions(self) -> list[str]:
        """The cohort dimensions of cohort_turnout, in report order ('all' = every voter)."""
        return ["all", *self.age_columns(), "generation", "tenure_band", "party", "turnout_cohort"]


def _read_bands(raw: list[dict], low_key: str, high_key: str) -> tuple[Band, ...]:
    return tuple(Band(str(b["label"]), b.get(low_key), b.get(high_key)) for b in raw)


def load_cohort_config(path: Path | str | None = None) -> CohortConfig:
    """Read and validate config/cohorts.toml (or `path`)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    where = str(path)
    schemes = {name: _read_bands(body["bands"], "min", "max") for name, body in raw["age_schemes"].items()}
    for name, bands in schemes.items():
        check_bands(bands, f"{where} [age_schemes.{name}]", MIN_PLAUSIBLE_AGE, MAX_PLAUSIBLE_AGE)
    generations = _read_bands(raw["generations"], "first", "last")
    check_bands(generations, f"{where} [[generations]]", None, None)
    tenure = _read_bands(raw["tenure"]["bands"], "min", "max")
    check_bands(tenure, f"{where} [tenure]", 0, None)
    turnout = raw["turnout"]
    order = tuple(turnout["order"])
    if sorted(order) != sorted(TURNOUT_CODES):
        raise ValueError(f"{where} [turnout] order must list exactly {TURNOUT_CODES}")
    return CohortConfig(
        unknown=raw["unknown"]["label"],
        age_schemes=schemes,
        age_scheme_titles={name: body.get("title", name) for name, body in raw["age_schemes"].items()},
        generations=generations,
        tenure_bands=tenure,
        tenure_placeholder_before=date.fromisoformat(raw["tenure"]["placeholder_before"]),
        generals_considered=int(turnout["generals_considered"]),
        even_years_only=bool(turnout["even_years_only"]),
        min_election_share=float(turnout["min_election_share"]),
        turnout_order=order,
        turnout_labels=dict(turnout.get("labels", {})),
        party_order=tuple(raw["party"]["order"]),
        party_names=dict(raw["party"].get("names", {})),
        household_top_size=int(raw["households"]["top_size"]),
        source=where,
    )
