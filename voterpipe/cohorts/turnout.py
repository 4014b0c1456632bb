"""Turnout by election x geography level x cohort dimension x cohort, with as-of-election
denominators.

Denominators: the voters of the CURRENT roll who were registered on or before the election's date
(or voted in it, or have no usable registration date). Voters removed from the roll since the
election are missing from both numerator and denominator, so historical turnout reads somewhat
high; no earlier roll is consulted. Age band and tenure are recomputed as of each election's date;
party, generation and turnout cohort are as of the snapshot. Precincts are numbered within
counties: the precinct level's geography is "<county_code>:<precinct>" (precinct_geography).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe.cohorts.arrays import day_number, first_names, label_codes
from voterpipe.cohorts.bands import band_codes, band_codes_of_schemes
from voterpipe.cohorts.config import CohortConfig
from voterpipe.cohorts.geography import DISTRICT_COLUMNS
from voterpipe.cohorts.roll import Roll
from voterpipe.cohorts.votes import VoteIndex

GEOGRAPHY_LEVELS = ("state", "county", *DISTRICT_COLUMNS, "precinct", "tract")
_COUNTED = ("election", "level", "geography", "geography_name", "dimension", "cohort", "registered", "voted")

# (level name, code per voter, labels, display names or None)
Level = tuple[str, np.ndarray, np.ndarray, "np.ndarray | None"]
Codes = tuple[np.ndarray, np.ndarray]  # (code per voter, labels)


def cohort_turnout(
    cohorts: pd.DataFrame, votes: VoteIndex, roll: Roll, state: str, config: CohortConfig,
) -> pd.DataFrame:
    """Registered, voted and turnout by election x geography level x cohort dimension x cohort.

    registered = voters on the current roll registered on or before the election's date (or with
    no usable registration date, or who voted in it); voted = those with a history row for it.
    Age bands and tenure are as of the election's date. Only cells with registered > 0 appear.
    """
    levels = _geography_levels(cohorts, state, config.unknown)
    fixed = _fixed_dimensions(cohorts)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _COUNTED}
    dimensions = config.dimensions()
    elections = votes.elections.sort_values(["election_date", "election_type"]).reset_index(drop=True)
    n = len(cohorts)
    place, place_levels = _places(levels, n)
    for position, row in enumerate(elections.itertuples(index=False)):
        day = row.election_date.date()
        cast = votes.voted(row.election_id, n)
        registered = cast | np.isnan(roll.registered_days) | (roll.registered_days <= day_number(day))
        # 0 = not registered, 1 = registered only, 2 = voted (voted implies registered)
        state_ = registered.astype(np.int64) + cast
        dims = {**fixed, **_as_of_dimensions(roll, day, config)}
        _count_cells(columns, position, place, place_levels, state_, dims, dimensions, levels)
    if not columns["election"]:
        return _empty_turnout()
    return _turnout_table(columns, elections, [level[0] for level in levels], dimensions)


def _turnout_table(columns: dict[str, list[np.ndarray]], elections: pd.DataFrame, level_names: list[str],
                   dimensions: list[str]) -> pd.DataFrame:
    """The counted cells as one table. Each column's pieces are dropped as soon as they are
    joined, so that no more than one extra copy of a column is held (a state has ~10^6 cells)."""
    def joined(name: str) -> np.ndarray:
        return np.concatenate(columns.pop(name))

    election = joined("election")
    data = {"election_date": elections["election_date"].to_numpy()[election],
            "election_type": _strings(elections["election_type"].to_numpy(dtype=object), election)}
    del election
    data["geography_level"] = _strings(np.array(level_names, dtype=object), joined("level"))
    data["geography"] = _strings(joined("geography"))
    data["geography_name"] = _strings(joined("geography_name"))
    data["dimension"] = _strings(np.array(dimensions, dtype=object), joined("dimension"))
    data["cohort"] = _strings(joined("cohort"))
    data["registered"] = joined("registered")
    data["voted"] = joined("voted")
    table = pd.DataFrame(data)
    data.clear()
    table["turnout"] = table["voted"] / table["registered"]
    return table


def _strings(values: np.ndarray, codes: np.ndarray | None = None) -> pd.Series:
    """Python strings (or labels taken by `codes`) as a pandas str column, converted by Arrow:
    pandas' own conversion of a million-row object array is several times slower."""
    array = pa.array(values, type=pa.large_string())
    if codes is not None:
        array = array.take(pa.array(codes))
    return pa.chunked_array([array]).to_pandas()


def _geography_levels(cohorts: pd.DataFrame, state: str, unknown: str) -> list[Level]:
    n = len(cohorts)
    levels: list[Level] = [("state", np.zeros(n, dtype=np.int64), np.array([state.upper()], dtype=object), None)]
    county_codes, county_labels = label_codes(cohorts["county_code"], unknown)
    county_names = None
    if "county_name" in cohorts and cohorts["county_name"].notna().any():
        county_names = np.full(len(county_labels), None, dtype=object)
        named, names = first_names(county_codes, cohorts["county_name"].to_numpy(dtype=object))
        county_names[named] = names
    levels.append(("county", county_codes, county_labels, county_names))
    for level in DISTRICT_COLUMNS:
        codes, labels = label_codes(cohorts[level], unknown)
        levels.append((level, codes, labels, None))
    codes, labels = label_codes(precinct_geography(cohorts), unknown)
    levels.append(("precinct", codes, labels, None))
    codes, labels = label_codes(cohorts["tract"], unknown)
    levels.append(("tract", codes, labels, None))
    return levels


def precinct_geography(voters: pd.DataFrame) -> pd.Series:
    """'<county_code>:<precinct>' per voter (precinct codes repeat across counties); null without a precinct."""
    if "precinct" not in voters:
        return pd.Series([None] * len(voters), dtype=object)
    precinct = voters["precinct"].reset_index(drop=True)
    county = voters["county_code"].reset_index(drop=True).fillna("")
    return (county.astype(str) + ":" + precinct.astype(str)).where(precinct.notna(), None)


def _fixed_dimensions(cohorts: pd.DataFrame) -> dict[str, Codes]:
    """The dimensions that do not depend on the election: as of the snapshot."""
    fixed = {"all": (np.zeros(len(cohorts), dtype=np.int64), np.array(["all"], dtype=object))}
    for column in ("generation", "party", "turnout_cohort"):
        cat = cohorts[column].astype("category")
        fixed[column] = (cat.cat.codes.to_numpy().astype(np.int64), np.array(cat.cat.categories, dtype=object))
    return fixed


def _as_of_dimensions(roll: Roll, day: date, config: CohortConfig) -> dict[str, Codes]:
    """Age bands (every scheme) and tenure band as of an election's date."""
    unknown = config.unknown
    dims = {}
    age, _ = roll.ages(day)
    schemes = config.age_schemes
    for (name, bands), codes in zip(schemes.items(), band_codes_of_schemes(age, list(schemes.values()))):
        labels = np.array([b.label for b in bands] + [unknown], dtype=object)
        dims[f"age_band_{name}"] = (codes, labels)
    tenure_labels = np.array([b.label for b in config.tenure_bands] + [unknown], dtype=object)
    dims["tenure_band"] = (band_codes(roll.tenure_years(day), config.tenure_bands), tenure_labels)
    return dims


def _places(levels: list[Level], n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A code per voter for each distinct combination of the levels' geographies (a few thousand
    in a state), and each level's geography code per combination: counting once per combination
    and summing up to each level is cheaper than counting over every voter per level."""
    place = np.zeros(n, dtype=np.int64)
    size = 1
    for _, codes, labels, _ in levels:
        width = len(labels)
        if size * width >= 2 ** 62 // 3:  # keep the combined key in int64
            uniques, place = np.unique(place, return_inverse=True)
            size = len(uniques)
        place = place * width + codes
        size *= width
    _, first, place = np.unique(place, return_index=True, return_inverse=True)
    return place.reshape(-1).astype(np.int64), [codes[first] for _, codes, _, _ in levels]


def _count_cells(columns: dict[str, list[np.ndarray]], election: int, place: np.ndarray,
                 place_levels: list[np.ndarray], state: np.ndarray, dims: dict[str, Codes],
                 dimensions: list[str], levels: list[Level]) -> None:
    """Append one election's registered and voted counts per (level, geography, dimension, cohort)
    to `columns`; `state` per voter is 0 (not registered), 1 (registered) or 2 (voted)."""
    by_place = place_counts(place, len(place_levels[0]), state, dims, dimensions)
    append_cells(columns, election, place_levels, by_place, dims, dimensions, levels)


def place_counts(place: np.ndarray, places: int, state: np.ndarray, dims: dict[str, Codes],
                 dimensions: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per dimension: (registered, voted) per (place, cohort) as flat arrays (place-major)."""
    by_place = {}
    for dimension in dimensions:
        dim_codes, dim_labels = dims[dimension]
        width = len(dim_labels)
        counts = np.bincount((place * width + dim_codes) * 3 + state,
                             minlength=3 * places * width).reshape(places * width, 3)
        by_place[dimension] = (counts[:, 1] + counts[:, 2], counts[:, 2])
    return by_place


def append_cells(columns: dict[str, list[np.ndarray]], election: int, place_levels: list[np.ndarray],
                 by_place: dict[str, tuple[np.ndarray, np.ndarray]], dims: dict[str, Codes],
                 dimensions: list[str], levels: list[Level], first_level: int = 0) -> None:
    """Sum place_counts() up to each level's geographies; append the cells with registered > 0
    (`levels` numbered from `first_level`)."""
    for local, (_, _, geo_labels, geo_names) in enumerate(levels):
        level_index, geo_of_place = first_level + local, place_levels[local]
        for dimension_index, dimension in enumerate(dimensions):
            dim_labels = dims[dimension][1]
            width = len(dim_labels)
            size = len(geo_labels) * width
            cell = (geo_of_place[:, None] * width + np.arange(width)).reshape(-1)
            place_registered, place_voted = by_place[dimension]
            reg_count = np.bincount(cell, weights=place_registered, minlength=size).astype(np.int64)
            voted_count = np.bincount(cell, weights=place_voted, minlength=size).astype(np.int64)
            present = np.flatnonzero(reg_count > 0)
            geo_index = present // width
            k = len(present)
            columns["election"].append(np.full(k, election))
            columns["level"].append(np.full(k, level_index))
            columns["geography"].append(geo_labels[geo_index])
            columns["geography_name"].append(
                np.full(k, None, dtype=object) if geo_names is None else geo_names[geo_index])
            columns["dimension"].append(np.full(k, dimension_index))
            columns["cohort"].append(dim_labels[present % width])
            columns["registered"].append(reg_count[present])
            columns["voted"].append(voted_count[present])


def _empty_turnout() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (
        "election_date", "election_type", "geography_level", "geography", "geography_name",
        "dimension", "cohort")} | {"registered": pd.Series(dtype=np.int64),
                                   "voted": pd.Series(dtype=np.int64),
                                   "turnout": pd.Series(dtype=float)})
