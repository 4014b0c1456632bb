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
import pyarrow.compute as pc

from voterpipe.ages import ages_as_of
from voterpipe.formats.repair import canonical_code_array

RULES_VERSION = "3"  # bump when a rule here changes what the stage writes (stage identity)

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
        frame, status = links.reset_index(drop=True), voters["status"]
    else:
        try:
            frame = voters[["voter_id", "status"]].merge(links, on="voter_id", how="left",
                                                         validate="one_to_one")
        except pd.errors.MergeError as err:
            raise ValueError(f"voter_id is not unique in voters or voter_addresses: {err}") from err
        status = frame["status"]
    # on Arrow: the str columns are Arrow already, and the results stay str columns (no objects)
    household, building = household_keys(text_array(status), text_array(frame["address_key"]),
                                         text_array(frame["building_key"]), text_array(frame["parse_status"]))
    return pd.DataFrame({"voter_id": frame["voter_id"], "household_id": household.to_pandas(),
                         "building_key": building.to_pandas()})


def household_keys(status: pa.Array, address_key: pa.Array, building_key: pa.Array,
                   parse_status: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(household_id, building_key) of each voter: its address's keys when it belongs to a
    household (a usable address and not removed), else null."""
    eligible = pc.and_(pc.fill_null(pc.is_in(parse_status, value_set=pa.array(HOUSEHOLD_STATUSES)), False),
                       pc.is_valid(address_key))
    eligible = pc.and_(eligible, pc.not_equal(pc.fill_null(status, ""), "removed"))
    return (pc.if_else(eligible, address_key, pa.scalar(None, address_key.type)),
            pc.if_else(eligible, building_key, pa.scalar(None, building_key.type)))


def text_array(values: pd.Series) -> pa.Array:
    """A text column as an Arrow string array (nulls where pandas has NaN/None)."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array if array.type == pa.string() else array.cast(pa.string())


def lookup_rows(keys: pd.Series, probe: pd.Series) -> np.ndarray:
    """Row of each probe value in `keys` (its first occurrence), or -1."""
    rows = pc.index_in(text_array(probe), value_set=text_array(keys), skip_nulls=True)
    return pc.fill_null(rows, -1).to_numpy().astype(np.int64)


def party_mix(known_parties: pd.Series) -> pd.Series:
    """From the number of distinct known parties per household: 0 unknown, 1 single, else mixed."""
    labels = np.array(["unknown", "single_party", "mixed"], dtype=object)
    return pd.Series(labels[np.minimum(known_parties.to_numpy(), 2)], index=known_parties.index, dtype=object)


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
    members = voters.assign(household_id=voter_households["household_id"].array,
                            building_key=voter_households["building_key"].array)
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
        values = pc.greater(pc.utf8_length(pc.fill_null(text_array(addresses[column]), "")), 0)
        values = values.to_numpy(zero_copy_only=False)
        has_unit |= np.where(rows >= 0, values[np.maximum(rows, 0)], False)
    # per building: its households and those with a unit (no building_key: NaN, as a groupby gave)
    building_codes, _ = pd.factorize(households["building_key"])
    in_building = building_codes >= 0
    size = int(building_codes.max()) + 1 if in_building.any() else 0
    households_in = np.bincount(building_codes[in_building], minlength=size).astype(np.float64)
    units_seen = np.bincount(building_codes[in_building], weights=has_unit[in_building], minlength=size)
    at = np.maximum(building_codes, 0)
    # no building_key: no building to count (null; NaN cast to int32 used to give -2147483648)
    seen = np.where(in_building, units_seen[at] if size else np.nan, np.nan)
    households["building_units_seen"] = pd.array(np.where(in_building, seen, 0).astype(np.int32), dtype="Int32")
    households.loc[~in_building, "building_units_seen"] = pd.NA
    households["building_multi_unit"] = np.where(in_building, households_in[at] if size else np.nan, np.nan) >= 2
    households["likely_group_quarters"] = (
        (seen == 0)
        & (households["voter_count"] >= rule.min_voters)
        & (households["distinct_surnames"] >= rule.min_surnames))

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
    rows = pc.index_in(text_array(households["household_id"]), value_set=text_array(geocodes["address_key"]),
                       skip_nulls=True)
    found = pc.fill_null(rows, -1).to_numpy()
    out = households.copy()
    for target, source in (("geocode_status", "status"), *((c, c) for c in GEOGRAPHY_COLUMNS)):
        if source not in geocodes.columns:
            out[target] = None
            continue
        values = geocodes[source]
        if values.dtype.kind == "f":  # coordinates: NaN where there is no geocode
            taken = pa.array(values.to_numpy(dtype=np.float64)).take(rows)
            out[target] = pc.fill_null(taken, np.nan).to_numpy()
        elif values.dtype.kind == "i":
            taken = values.to_numpy()[np.maximum(found, 0)] if len(values) else np.full(len(found), None, dtype=object)
            out[target] = np.where(found >= 0, taken, None)
        else:
            out[target] = text_array(values).take(rows).to_pandas().array
    return out
