"""Geography tables: for each level the state has (statewide, county, districts, precinct), the
registered and active voters, households, party mix and turnout in the last two generals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Level:
    name: str  # geography_level, as in cohort_turnout where the level exists there
    title: str
    keys: tuple[str, ...]  # voter columns naming one area of the level


LEVELS = (
    Level("state", "Statewide", ()),
    Level("county", "By county", ("county_code",)),
    Level("congressional_district", "By congressional district", ("congressional_district",)),
    Level("state_senate_district", "By state senate district", ("state_senate_district",)),
    Level("state_house_district", "By state house district", ("state_house_district",)),
    Level("precinct", "By precinct", ("county_code", "precinct")),  # precinct codes repeat across counties
)
OTHER_PARTY = "other"


def levels_present(voters: pd.DataFrame) -> list[Level]:
    """The levels whose key columns exist and are filled for at least one voter."""
    return [level for level in LEVELS
            if all(k in voters and voters[k].notna().any() for k in level.keys)]


def geography_table(voters: pd.DataFrame, votes: pd.DataFrame, generals: list[date], level: Level,
                    parties: tuple[str, ...], unknown: str = "unknown", state: str = "") -> pd.DataFrame:
    """One row per area of `level`: registered (everyone on the roll), active, households (distinct
    household ids), voters by party (`parties`, then 'other' and `unknown`) with shares, and for
    each general: registered by election day, voted, turnout (the cohort_turnout rule: a voter
    counts as registered when registered on or before the day, with no date, or having voted)."""
    frame = _area_keys(voters, level, unknown)
    keys = list(frame.columns)
    party = voters["party"].astype(object).where(voters["party"].notna(), unknown)
    party = party.where(party.isin([*parties, unknown]), OTHER_PARTY)
    frame["registered"] = 1
    frame["active"] = (voters["status"].astype(object) == "active").astype(np.int64)
    party_columns = [*parties, OTHER_PARTY, unknown]
    for name in party_columns:
        frame[f"party_{name}"] = (party == name).astype(np.int64).to_numpy()
    registered_on = pd.to_datetime(voters["registered_on"], errors="coerce")
    for day in generals:
        voted = voters["voter_id"].isin(votes.loc[_same_day(votes["election_date"], day), "voter_id"])
        on_roll = registered_on.isna() | (registered_on <= pd.Timestamp(day)) | voted
        frame[f"registered_{day}"] = on_roll.astype(np.int64).to_numpy()
        frame[f"voted_{day}"] = voted.astype(np.int64).to_numpy()
    grouped = frame.groupby(keys, sort=True, dropna=False) if keys else frame.assign(_all=0).groupby("_all")
    table = grouped.sum(numeric_only=True).reset_index()
    table = table.drop(columns=["_all"], errors="ignore")
    if keys:  # district '4' before '10'; the unknown row last
        table = table.sort_values(keys, key=lambda column: column.map(_natural_key)).reset_index(drop=True)
    households = voters["household_id"].astype(object)
    has_household = households.notna().to_numpy()
    if keys:
        counted = frame.loc[has_household, keys].assign(household_id=households[has_household].to_numpy())
        distinct = counted.drop_duplicates().groupby(keys, dropna=False).size().rename("households")
        table = table.merge(distinct.reset_index(), on=keys, how="left")
    else:
        table["households"] = households[has_household].nunique()
    table["households"] = table["households"].fillna(0).astype(np.int64)
    for name in party_columns:
        table[f"share_{name}"] = table[f"party_{name}"] / table["registered"].clip(lower=1)
    for day in generals:
        table[f"turnout_{day}"] = table[f"voted_{day}"] / table[f"registered_{day}"].where(
            table[f"registered_{day}"] > 0)
    if "county_code" in level.keys and "county_name" in voters:
        names = voters.assign(county_code=frame["county_code"]).dropna(subset=["county_name"]) \
            .drop_duplicates("county_code").set_index("county_code")["county_name"]
        table.insert(1, "county_name", table["county_code"].map(names))
    if level.name == "state":
        table.insert(0, "state", state.upper())
    ordered = [c for c in table.columns if c not in ("households",)]
    position = ordered.index("active") + 1
    return table[ordered[:position] + ["households"] + ordered[position:]]


def _area_keys(voters: pd.DataFrame, level: Level, unknown: str) -> pd.DataFrame:
    """The level's key columns per voter, blanks as `unknown` so they group into one row."""
    frame = pd.DataFrame(index=voters.index)
    for key in level.keys:
        values = voters[key].astype(object)
        frame[key] = values.where(values.notna() & (values.astype(str).str.strip() != ""), unknown)
    return frame


def _same_day(values: pd.Series, day: date) -> pd.Series:
    return pd.to_datetime(values).dt.date == day


def _natural_key(value) -> tuple:
    text = str(value)
    return (text == "unknown", 0, int(text), "") if text.isdigit() else (text == "unknown", 1, 0, text)
