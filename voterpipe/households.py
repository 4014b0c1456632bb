"""Households: the registered voters who share a standardised residential address (address_key),
with size, ages, party mix, building context and housing geography.

Rules:
- household_id = address_key. Voters whose address is missing, unparseable or a PO box, and
  voters with status 'removed', belong to no household (household_id null).
- party_mix: 'unknown' when no member has a known party (states without party registration);
  'single_party' when the members with a known party all share it; 'mixed' otherwise.
- A building (building_key = the address without its unit) is multi-unit when it holds two or
  more households; building_units_seen counts its households that carry a unit.
- likely_group_quarters: a household at a building with no units seen, with at least
  `min_voters` voters and `min_surnames` distinct surnames (a dorm, care home, or an apartment
  block whose units the voter file does not record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe.addresses.keyhash import StringIndex
from voterpipe.ages import ages_as_of
from voterpipe.formats.repair import canonical_code_array

RULES_VERSION = "2"  # bump when a rule here changes what the stage writes (stage identity)

HOUSEHOLD_STATUSES = ("ok", "rural_route", "ambiguous")
NAMED_PARTIES = {"DEM": "dem_count", "REP": "rep_count", "UNA": "una_count"}
GEOGRAPHY_COLUMNS = ("lon", "lat", "state_fips", "county_fips", "tract", "block_group", "block",
                     "congressional_district", "state_senate_district", "state_house_district")


@dataclass(frozen=True)
class GroupQuartersRule:
    min_voters: int = 8
    min_surnames: int = 4


def assign_households(voters: pd.DataFrame, voter_addresses: pd.DataFrame) -> pd.DataFrame:
    """VOTER_HOUSEHOLDS rows (voter_id, household_id, building_key), one per voter."""
    links = voter_addresses[["voter_id", "address_key", "building_key", "parse_status"]]
    if len(links) == len(voters) and links["voter_id"].reset_index(drop=True).equals(
            voters["voter_id"].reset_index(drop=True)):
        # NormaliseAddresses writes its rows in voters.parquet order: no join needed.
        frame = links.reset_index(drop=True).assign(status=voters["status"].to_numpy())
    else:
        try:
            frame = voters[["voter_id", "status"]].merge(links, on="voter_id", how="left",
                                                         validate="one_to_one")
        except pd.errors.MergeError as err:
            raise ValueError(f"voter_id is not unique in voters or voter_addresses: {err}") from err
    eligible = frame["parse_status"].isin(HOUSEHOLD_STATUSES) & frame["address_key"].notna()
    eligible &= frame["status"].fillna("") != "removed"
    return pd.DataFrame({
        "voter_id": frame["voter_id"].to_numpy(),
        "household_id": frame["address_key"].where(eligible).to_numpy(dtype=object),
        "building_key": frame["building_key"].where(eligible).to_numpy(dtype=object),
    })


def lookup_rows(keys: pd.Series, probe: pd.Series) -> np.ndarray:
    """Row of each probe value in `keys` (its first occurrence), or -1."""
    index = StringIndex(pa.array(keys, pa.string(), from_pandas=True))
    return index.positions(pa.array(probe, pa.string(), from_pandas=True))


def party_mix(known_parties: pd.Series) -> pd.Series:
    """From the number of distinct known parties per household: 0 unknown, 1 single, else mixed."""
    values = known_parties.to_numpy()
    return pd.Series(np.where(values == 0, "unknown", np.where(values == 1, "single_party", "mixed")),
                     index=known_parties.index, dtype=object)


def build_households(voters: pd.DataFrame, voter_addresses: pd.DataFrame, addresses: pd.DataFrame,
                     geocodes: pd.DataFrame | None, snapshot: date,
                     rule: GroupQuartersRule = GroupQuartersRule(),
                     code_forms: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(households, voter_households) as schema.HOUSEHOLDS / schema.VOTER_HOUSEHOLDS columns.
    code_forms: the state's district code forms (formats.layouts.state_canonical), applied to the
    geocoded districts so households use the voters' form.

    voters: voter_id, status, last_name, party, birth_date, birth_year, registered_on.
    voter_addresses: schema.VOTER_ADDRESSES. addresses: address_key, unit_type, unit_number.
    geocodes: schema.GEOCODES (or None when no geocodes exist).
    """
    voter_households = assign_households(voters, voter_addresses)
    members = voters.assign(household_id=voter_households["household_id"].to_numpy(),
                            building_key=voter_households["building_key"].to_numpy())
    members = members[members["household_id"].notna()]
    age, _ = ages_as_of(members["birth_date"], members["birth_year"], snapshot)
    codes, uniques = pd.factorize(members["household_id"], sort=True)
    n = len(uniques)
    party = members["party"].astype("string").str.strip().str.upper().fillna("")
    frame = pd.DataFrame({
        "hh": codes,
        "age": age.astype("float64").to_numpy(),
        "registered_on": pd.to_datetime(members["registered_on"], errors="coerce").to_numpy(),
        "party": party.to_numpy(dtype=object),
        "surname": members["last_name"].astype("string").str.upper().str.strip().fillna("").to_numpy(
            dtype=object),
    })
    grouped = frame.groupby("hh", sort=True)
    stats = grouped.agg(voter_count=("hh", "size"), min_age=("age", "min"), max_age=("age", "max"),
                        median_age=("age", "median"), earliest_registered_on=("registered_on", "min"))
    stats = stats.reindex(np.arange(n))

    households = pd.DataFrame({"household_id": uniques})
    building = members.groupby(codes, sort=True)["building_key"].first().reindex(np.arange(n))
    households["building_key"] = building.to_numpy()
    households["voter_count"] = stats["voter_count"].to_numpy().astype(np.int32)
    for column in ("min_age", "max_age"):
        households[column] = pd.array(stats[column].round().to_numpy(), dtype="Int16")
    households["median_age"] = stats["median_age"].to_numpy().astype(np.float32)

    counts = {c: np.zeros(n, dtype=np.int32) for c in (*NAMED_PARTIES.values(), "other_party_count")}
    party_values = frame["party"].to_numpy(dtype=object)
    known = party_values != ""
    for name, column in NAMED_PARTIES.items():
        hits = known & (party_values == name)
        counts[column] = np.bincount(codes[hits], minlength=n).astype(np.int32)
    other = known & ~np.isin(party_values, list(NAMED_PARTIES), assume_unique=False)
    counts["other_party_count"] = np.bincount(codes[other], minlength=n).astype(np.int32)
    distinct_parties = frame[known].drop_duplicates(["hh", "party"]).groupby("hh").size().reindex(
        np.arange(n), fill_value=0)
    households["party_mix"] = party_mix(distinct_parties).to_numpy()
    for column, values in counts.items():
        households[column] = values
    households["earliest_registered_on"] = stats["earliest_registered_on"].dt.date.to_numpy()
    households.loc[stats["earliest_registered_on"].isna().to_numpy(), "earliest_registered_on"] = None
    surnames = frame[frame["surname"] != ""]
    households["distinct_surnames"] = surnames.drop_duplicates(["hh", "surname"]).groupby("hh").size().reindex(
        np.arange(n), fill_value=0).to_numpy().astype(np.int32)
    # the per-member tables are done with: freed before the building and geography steps allocate
    del frame, surnames, members, grouped, stats, party, party_values, known, other, age, codes

    # Building context: which households carry a unit, and how many share each building.
    rows = lookup_rows(addresses["address_key"], households["household_id"])
    has_unit = np.zeros(n, dtype=bool)
    for column in ("unit_type", "unit_number"):
        values = addresses[column].fillna("").astype(str).str.len().to_numpy() > 0
        has_unit |= np.where(rows >= 0, values[np.maximum(rows, 0)], False)
    households["has_unit"] = has_unit
    per_building = households.groupby("building_key", sort=False).agg(
        households_in_building=("household_id", "size"), units_seen=("has_unit", "sum"))
    joined = per_building.reindex(households["building_key"])
    households["building_units_seen"] = joined["units_seen"].to_numpy().astype(np.int32)
    households["building_multi_unit"] = joined["households_in_building"].to_numpy() >= 2
    households["likely_group_quarters"] = (
        (households["building_units_seen"] == 0)
        & (households["voter_count"] >= rule.min_voters)
        & (households["distinct_surnames"] >= rule.min_surnames))
    households = households.drop(columns=["has_unit"])

    households = attach_geography(households, geocodes)
    for column, form in (code_forms or {}).items():
        if column in households and column.endswith("_district"):
            households[column] = canonical_code_array(pa.array(households[column], pa.string(), from_pandas=True),
                                                      form).to_numpy(zero_copy_only=False)
    return households, voter_households


def attach_geography(households: pd.DataFrame, geocodes: pd.DataFrame | None) -> pd.DataFrame:
    """Housing geography from each household's geocode (columns null when there is none)."""
    if geocodes is None or geocodes.empty:
        out = households.copy()
        out["geocode_status"] = None
        for column in GEOGRAPHY_COLUMNS:
            out[column] = None
        return out
    rows = lookup_rows(geocodes["address_key"], households["household_id"])
    found = rows >= 0
    safe = np.maximum(rows, 0)
    out = households.copy()
    for target, source in (("geocode_status", "status"), *((c, c) for c in GEOGRAPHY_COLUMNS)):
        if source not in geocodes.columns:
            out[target] = None
            continue
        values = geocodes[source].to_numpy(dtype=object if geocodes[source].dtype.kind not in "fi" else None)
        taken = values[safe] if len(values) else np.full(len(rows), None, dtype=object)
        out[target] = np.where(found, taken, np.nan if taken.dtype.kind == "f" else None)
    return out
