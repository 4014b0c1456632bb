"""Geography tables: for each level the state has (statewide, county, districts, precinct), the
registered and active voters, households, party mix and turnout in the last two generals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.cohorts import arrays
from voterpipe.cohorts.arrays import row_positions


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
HOUSEHOLD = "household_code"  # voter_counts' column of household numbers (not summed)


def levels_present(voters: pd.DataFrame) -> list[Level]:
    """The levels whose key columns exist and are filled for at least one voter."""
    return [level for level in LEVELS
            if all(k in voters and voters[k].notna().any() for k in level.keys)]


def voter_counts(voters: pd.DataFrame, votes: pd.DataFrame, generals: list[date],
                 parties: tuple[str, ...], unknown: str = "unknown",
                 household_codes: np.ndarray | None = None) -> pd.DataFrame:
    """Per voter, the 0/1 columns a geography table sums (as bool, one byte a voter each):
    registered, active, party_<p> (`parties`, then 'other' and `unknown`), and per general
    registered_<day> (the cohort_turnout rule: on or before the day, with no date, or having voted)
    and voted_<day>. Computed once for all levels (`household_codes`: a number per household id,
    when the caller has them)."""
    n = len(voters)
    counts = {"registered": np.ones(n, dtype=bool),
              "active": voters["status"].eq("active").fillna(False).to_numpy(dtype=bool)}
    party_codes, party_labels = pd.factorize(voters["party"])  # -1: no party
    buckets = (*parties, OTHER_PARTY, unknown)
    bucket = np.array([buckets.index(p if p in parties or p == unknown else OTHER_PARTY) for p in party_labels]
                      + [buckets.index(unknown)], dtype=np.int8)
    chosen = bucket[party_codes]  # code -1 takes the appended `unknown`
    for name in dict.fromkeys(buckets):  # a name given twice is one column
        counts[f"party_{name}"] = chosen == buckets.index(name)
    registered_on = pd.to_datetime(voters["registered_on"], errors="coerce").to_numpy()
    roll, vote_ids = _text(voters["voter_id"]), _text(votes["voter_id"])
    vote_days = pd.to_datetime(votes["election_date"]).to_numpy().astype("datetime64[D]")
    for day in generals:  # one hash of the day's voters at a time (fewer than the roll: peak memory)
        on_day = vote_ids.filter(pa.array(vote_days == np.datetime64(day, "D")))
        voted = row_positions(roll, on_day) >= 0  # value ranges hashed one at a time (bounded memory)
        if on_day.null_count and roll.null_count:  # a missing id matches a missing one
            voted |= np.asarray(pc.is_null(roll).to_numpy(zero_copy_only=False), dtype=bool)
        counts[f"registered_{day}"] = np.isnat(registered_on) | (registered_on <= np.datetime64(day)) | voted
        counts[f"voted_{day}"] = voted
    counts[HOUSEHOLD] = value_codes(voters["household_id"]) if household_codes is None else household_codes
    return pd.DataFrame(counts, copy=False)  # one block per column: no second copy of them all


def _text(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column as Arrow large strings (categoricals decoded); an Arrow-backed column as it is,
    chunks and all (no copy)."""
    array = pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(array.type):
        array = pc.dictionary_decode(array) if isinstance(array, pa.Array) else pa.chunked_array(
            [chunk.dictionary_decode() for chunk in array.chunks], array.type.value_type)
    return array.cast(pa.large_string())


def household_numbers(values: pd.Series) -> np.ndarray:
    """A number per distinct household id (-1 for a missing one): value_codes when one hash of the
    roll is small (faster), else the row of the household's first voter, the ids hashed a value
    range at a time (cohorts.arrays.row_positions: bounded memory)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(values.dtype) \
            or len(values) <= arrays.LOOKUP_SET_ROWS:
        return value_codes(values)
    ids = _text(values)
    return row_positions(ids, ids)


def value_codes(values: pd.Series) -> np.ndarray:
    """A number per distinct value, counting up in order of first appearance; -1 for a missing one."""
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(values.dtype):
        return pd.factorize(values)[0].astype(np.int64)
    encoded = pc.dictionary_encode(_text(values))  # chunks share one dictionary
    indices = encoded.indices if isinstance(encoded, pa.Array) else pa.chunked_array(
        [chunk.indices for chunk in encoded.chunks], encoded.type.index_type)
    return pc.fill_null(indices, -1).to_numpy().astype(np.int64)


def geography_table(voters: pd.DataFrame, votes: pd.DataFrame, generals: list[date], level: Level,
                    parties: tuple[str, ...], unknown: str = "unknown", state: str = "",
                    counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per area of `level`: registered (everyone on the roll), active, households (distinct
    household ids), voters by party with shares, and per general registered, voted and turnout
    (see voter_counts; pass `counts` to reuse them across levels)."""
    counts = voter_counts(voters, votes, generals, parties, unknown) if counts is None else counts
    area, keys = _area_codes(voters, level, unknown)
    areas = len(keys)
    table = keys.copy()
    summed = [c for c in counts.columns if c != HOUSEHOLD]
    for column in summed:
        values = counts[column].to_numpy()
        table[column] = (np.bincount(area[values], minlength=areas) if values.dtype == bool else
                         np.bincount(area, weights=values, minlength=areas)).astype(np.int64)
    household_code = counts[HOUSEHOLD].to_numpy()
    has = household_code >= 0
    width = int(household_code.max(initial=0)) + 1
    pairs = area[has]  # (area, household) as one number, worked in place: one array a voter at a time
    pairs *= width
    pairs += household_code[has]
    pairs.sort()
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if len(pairs) else pairs  # each (area, household) once
    pairs //= width
    table.insert(table.columns.get_loc("active") + 1, "households",
                 np.bincount(pairs, minlength=areas).astype(np.int64))
    for name in (c.removeprefix("party_") for c in summed if c.startswith("party_")):
        table[f"share_{name}"] = table[f"party_{name}"] / table["registered"].clip(lower=1)
    for day in generals:
        table[f"turnout_{day}"] = table[f"voted_{day}"] / table[f"registered_{day}"].where(
            table[f"registered_{day}"] > 0)
    if "county_code" in level.keys and "county_name" in voters:
        first = pd.Series(voters["county_name"].astype(object).to_numpy()).groupby(area).first()
        table.insert(table.columns.get_loc("county_code") + 1, "county_name", first.reindex(range(areas)).to_numpy())
    if level.name == "state":
        table.insert(0, "state", state.upper())
    if level.keys:  # district '4' before '10'; the unknown row last
        table = table.sort_values(list(level.keys), key=lambda column: column.map(_natural_key))
    return table.reset_index(drop=True)


def _area_codes(voters: pd.DataFrame, level: Level, unknown: str) -> tuple[np.ndarray, pd.DataFrame]:
    """(area number per voter, the areas' key values by number); blanks are `unknown`."""
    if not level.keys:
        return np.zeros(len(voters), dtype=np.int64), pd.DataFrame(index=range(1))
    codes, labels = [], []
    for key in level.keys:
        code, uniques = pd.factorize(voters[key])  # on the distinct values only from here
        uniques = np.asarray(uniques, dtype=object)
        blank = np.array([str(u).strip() == "" for u in uniques], dtype=bool)
        uniques = np.append(np.where(blank, unknown, uniques), unknown)
        code = np.where(code < 0, len(uniques) - 1, code).astype(np.int64, copy=False)  # null -> unknown
        _, merged = np.unique(uniques.astype(str), return_inverse=True)  # blank and null: one 'unknown'
        names = np.empty(merged.max(initial=-1) + 1, dtype=object)
        names[merged] = uniques
        codes.append(merged.ravel()[code])
        labels.append(names)
    combined = codes.pop(0)  # a fresh array: combined in place
    for code, uniques in zip(codes, labels[1:]):
        combined *= len(uniques)
        combined += code
    del codes
    present, inverse = _sorted_codes(combined)
    digits = []  # each area's code of each key, read back from the combined code
    for uniques in labels[::-1]:
        digits.insert(0, present % len(uniques))
        present = present // len(uniques)
    keys = pd.DataFrame({key: labels[i][digits[i]] for i, key in enumerate(level.keys)})
    return inverse, keys


def _sorted_codes(combined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(combined, return_inverse=True) of non-negative codes, by counting when their
    range is small (no sort of a value per voter)."""
    size = int(combined.max(initial=-1)) + 1
    if size > max(4 * len(combined), 1 << 20):
        uniques, inverse = np.unique(combined, return_inverse=True)
        return uniques, inverse.astype(np.int64).ravel()
    seen = np.bincount(combined, minlength=size) > 0
    rank = np.cumsum(seen) - 1
    return np.flatnonzero(seen), rank[combined].astype(np.int64)


def _natural_key(value) -> tuple:
    text = str(value)
    return (text == "unknown", 0, int(text), "") if text.isdigit() else (text == "unknown", 1, 0, text)
