"""Where each voter lives: household id, size and party mix, geocode status, the three districts
(geocoded where possible, else the state's own columns, both in the state's canonical code form from
its layouts' [canonical] table) and the 2020 census tract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.cohorts.arrays import as_arrow_strings, column_at, positions, string_column
from voterpipe.formats.layouts import Canonical, state_canonical
from voterpipe.formats.repair import CodeForm, canonical_code_array

DISTRICT_COLUMNS = ("congressional_district", "state_senate_district", "state_house_district")
NO_HOUSEHOLD = "no_household"
UNPADDED = CodeForm("unpadded")


def code_forms(state: str | None) -> dict[str, CodeForm]:
    """The state's canonical code forms (its layouts' [canonical]); none for a state without layouts."""
    return state_canonical(state).code_forms if state else Canonical().code_forms


def _clean_district(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():  # a spreadsheet's float
        text = text[:-2]
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return text or None


def normalise_district(values, form: CodeForm | None = None) -> pa.Array:
    """District codes in the state's form (`form`; default: leading zeros dropped, so '04' and '4'
    are one district), so geocoded and state-reported codes group together; blanks become null.
    Works on the distinct values only (an Arrow dictionary), so it is cheap on millions of rows."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else as_arrow_strings(pd.Series(values))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    encoded = array.dictionary_encode()
    cleaned = pa.array([_clean_district(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    if form is not None and form != UNPADDED:
        cleaned = canonical_code_array(cleaned, form)
    return cleaned.cast(pa.large_string()).take(encoded.indices)


def voter_households_and_geography(
    voters: pd.DataFrame, voter_households: pd.DataFrame, households: pd.DataFrame | pa.Table,
    geocodes: pd.DataFrame | pa.Table, forms: dict[str, CodeForm] | None = None,
    rows: tuple[pa.Array, pa.Array] | None = None,
) -> pd.DataFrame:
    """Per voter (aligned with `voters`): household id, size and party mix, geocode status, the
    three districts and the 2020 tract GEOID.

    Districts come from the voter's household geocode (household_id = address_key) when it
    matched and carries the district; otherwise from the state-reported columns of the voter file
    (district_source says which: 'geocode', 'state_file' or 'none'; 'geocode' when at least one
    district came from the geocode). Tracts exist only for geocoded voters; state files carry none.
    `rows`: each voter's row in households and in geocodes when already looked up (null: none).
    """
    household_id = _household_of_each_voter(voters, voter_households)
    out = _household_columns(household_id, households, None if rows is None else rows[0])
    geo_pos = positions(string_column(geocodes, "address_key"), household_id) if rows is None else rows[1]
    matched = pc.fill_null(pc.equal(column_at(geocodes, "status", geo_pos), "match"), False)

    def geocoded(name: str) -> pa.Array:
        return pc.if_else(matched, column_at(geocodes, name, geo_pos), pa.scalar(None, pa.large_string()))

    out["geocoded"] = matched
    out.update(_district_columns(voters, geocoded, forms or {}))
    out["tract"] = _tract_geoid(*(pc.fill_null(geocoded(c), "") for c in ("state_fips", "county_fips", "tract")))
    frame = pa.table(out).to_pandas()
    frame["household_size"] = frame["household_size"].astype("Int32")
    return frame


def _household_of_each_voter(voters: pd.DataFrame, voter_households: pd.DataFrame) -> pa.Array:
    ids = string_column(voters, "voter_id")
    linked_ids = string_column(voter_households, "voter_id")
    if len(linked_ids) == len(voters) and \
            pc.all(pc.fill_null(pc.equal(linked_ids, ids), False)).as_py() is not False:
        return string_column(voter_households, "household_id")  # same rows in the same order
    return string_column(voter_households, "household_id").take(positions(linked_ids, ids))


def _household_columns(household_id: pa.Array, households: pd.DataFrame,
                       hh_pos: pa.Array | None = None) -> dict[str, pa.Array]:
    """household_id, household_size and household_party_mix ('no_household' without one)."""
    n = len(household_id)
    if hh_pos is None:
        hh_pos = positions(string_column(households, "household_id"), household_id)
    if len(households):
        sizes = _household_sizes(households).take(hh_pos)
        mixes = column_at(households, "party_mix", hh_pos)
    else:
        sizes, mixes = pa.nulls(n, pa.int32()), pa.nulls(n, pa.large_string())
    mix = pc.if_else(pc.is_valid(household_id), pc.fill_null(mixes, "unknown"), NO_HOUSEHOLD)
    return {"household_id": household_id, "household_size": sizes, "household_party_mix": mix}


def _household_sizes(households: pd.DataFrame | pa.Table) -> pa.Array:
    if isinstance(households, pa.Table):
        return households.column("voter_count").combine_chunks().cast(pa.int32())
    return pa.array(pd.to_numeric(households["voter_count"], errors="coerce").reset_index(drop=True),
                    from_pandas=True).cast(pa.int32())


def _district_columns(voters: pd.DataFrame, geocoded, forms: dict[str, CodeForm]) -> dict[str, pa.Array]:
    """The three districts (geocode first, then the state file) and district_source."""
    out = {}
    source = pa.array(np.full(len(voters), "none", dtype=object), type=pa.large_string())
    for name in DISTRICT_COLUMNS:
        from_geocode = normalise_district(geocoded(name), forms.get(name))
        from_state = normalise_district(string_column(voters, name), forms.get(name))
        use_geocode = pc.is_valid(from_geocode)
        out[name] = pc.coalesce(from_geocode, from_state)
        state_only = pc.and_(pc.equal(source, "none"), pc.is_valid(from_state))
        source = pc.if_else(use_geocode, "geocode", pc.if_else(state_only, "state_file", source))
    out["district_source"] = source
    return out


def _tract_geoid(state_fips: pa.Array, county_fips: pa.Array, tract: pa.Array) -> pa.Array:
    """The 11-digit tract GEOID: given whole, or joined from 2 + 3 + 6 digit parts; else null."""
    long_form = pc.equal(pc.utf8_length(tract), 11)
    parts_ok = pc.and_(pc.and_(pc.equal(pc.utf8_length(tract), 6), pc.equal(pc.utf8_length(state_fips), 2)),
                       pc.equal(pc.utf8_length(county_fips), 3))
    joined = pc.binary_join_element_wise(state_fips, county_fips, tract, pa.scalar("", pa.large_string()))
    null = pa.scalar(None, pa.large_string())
    return pc.if_else(long_form, tract, pc.if_else(parts_ok, joined, null))
