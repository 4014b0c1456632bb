"""Cohort analysis: age bands, generations, tenure, turnout cohorts per voter; turnout by cohort and
geography with as-of-election denominators; household aggregates; snapshot-over-snapshot changes.

The definitions live in config/cohorts.toml; its comments and the docstrings here state the exact
rules. Everything is vectorised (numpy bincount over integer codes) so a 1M-voter state with
several elections of history takes seconds.

Turnout cohort rules (G = the last 4 general elections strictly before the snapshot, see
index_votes(); a voter is eligible for an election when registered on or before its date, when the
registration date is unknown, or when the voter has a history row for it), first match wins:

    new_registrant  G not empty, registered after the latest election in G, voted in none of G
    unknown         eligible for none of G (there are no general elections in the history)
    super_voter     voted in every election of G (4 of 4 when the history holds 4 generals)
    consistent      voted in more than half of the elections of G the voter was eligible for
    sporadic        voted in at least one election of G
    lapsed          voted in none of G, but has some history row before the snapshot
    never_voted     no history row at all before the snapshot

Turnout denominators (cohort_turnout): the voters of the CURRENT roll who were registered on or
before the election's date (or voted in it, or have no usable registration date). Voters removed
from the roll since the election are missing from both numerator and denominator, so historical
turnout reads somewhat high; no earlier roll is consulted. Age band and tenure are recomputed as of
each election's date; party, generation and turnout cohort are as of the snapshot.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import schema, storage
from voterpipe.ages import AGE_METHODS, MAX_PLAUSIBLE_AGE, MIN_PLAUSIBLE_AGE, ages_as_of

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "cohorts.toml"

GEOGRAPHY_LEVELS = (
    "state", "county", "congressional_district", "state_senate_district", "state_house_district",
    "tract",
)
DISTRICT_COLUMNS = ("congressional_district", "state_senate_district", "state_house_district")
TURNOUT_CODES = (
    "super_voter", "consistent", "sporadic", "lapsed", "never_voted", "new_registrant", "unknown",
)
TRANSITION_CHANGES = ("new_registrant", "removed", "moved", "party_switch")
TRANSITION_DIMENSIONS = ["all", "age_band_default", "generation", "party", "turnout_cohort", "county_code"]
NO_HOUSEHOLD = "no_household"
_EPOCH = np.datetime64("1970-01-01", "D")


# --- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Band:
    """A closed interval [low, high] of whole numbers; None means open on that side."""

    label: str
    low: int | None
    high: int | None


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


def check_bands(bands: tuple[Band, ...], what: str, cover_low: int | None, cover_high: int | None) -> None:
    """Raise ValueError unless `bands` are ordered, contiguous, non-overlapping, and cover
    [cover_low, cover_high] (None = unbounded on that side)."""
    if not bands:
        raise ValueError(f"{what}: no bands")
    labels = [b.label for b in bands]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{what}: duplicate band labels {labels}")
    for band in bands:
        if band.low is not None and band.high is not None and band.high < band.low:
            raise ValueError(f"{what}: band {band.label!r} has max < min")
    for before, after in zip(bands, bands[1:]):
        if before.high is None or after.low is None or after.low != before.high + 1:
            raise ValueError(
                f"{what}: bands {before.label!r} and {after.label!r} are not contiguous "
                f"(a value must land in exactly one band)")
    first, last = bands[0], bands[-1]
    if first.low is not None and (cover_low is None or first.low > cover_low):
        raise ValueError(f"{what}: first band {first.label!r} starts at {first.low}, after {cover_low}")
    if last.high is not None and (cover_high is None or last.high < cover_high):
        raise ValueError(f"{what}: last band {last.label!r} ends at {last.high}, before {cover_high}")


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


# --- banding -----------------------------------------------------------------------------------

def band_codes(values: np.ndarray, bands: tuple[Band, ...]) -> np.ndarray:
    """Index of the band each value falls in; len(bands) (= unknown) for NaN or uncovered values."""
    values = np.asarray(values, dtype=float)
    finite = values[~np.isnan(values)]
    if len(values) > 10_000 and len(finite) and (finite == np.floor(finite)).all() \
            and finite.max() - finite.min() < 10_000:
        # Whole numbers over a short range (ages, years): band each distinct value once.
        low = int(finite.min())
        table = np.append(band_codes(np.arange(low, int(finite.max()) + 1, dtype=float), bands), len(bands))
        offsets = np.where(np.isnan(values), len(table) - 1, values - low).astype(np.int64)
        return table[offsets]
    lows = np.array([-np.inf if b.low is None else b.low for b in bands], dtype=float)
    highs = np.array([np.inf if b.high is None else b.high for b in bands], dtype=float)
    index = np.searchsorted(lows, values, side="right") - 1
    clipped = np.clip(index, 0, len(bands) - 1)
    inside = ~np.isnan(values) & (index >= 0) & (values <= highs[clipped])
    return np.where(inside, clipped, len(bands)).astype(np.int64)


def band_labels(values: np.ndarray, bands: tuple[Band, ...], unknown: str = "unknown") -> pd.Categorical:
    """The band label of each value (NaN, placeholder or uncovered -> `unknown`)."""
    categories = [b.label for b in bands] + [unknown]
    return pd.Categorical.from_codes(band_codes(values, bands), categories=categories)


# --- the roll: birth data, registration dates --------------------------------------------------

def _day_numbers(values: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as float (NaN for missing), from dates or datetimes."""
    stamps = pd.to_datetime(pd.Series(values), errors="coerce")
    days = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    out = (days - _EPOCH).astype(np.int64).astype(float)
    out[np.isnat(days)] = np.nan
    return out


def _day_number(day: date) -> int:
    return int((np.datetime64(day, "D") - _EPOCH).astype(np.int64))


class Roll:
    """Per-voter arrays reused for every as-of date (birth data is de-duplicated first)."""

    def __init__(self, voters: pd.DataFrame, config: CohortConfig):
        self.n = len(voters)
        birth_date = pd.to_datetime(voters["birth_date"].reset_index(drop=True), errors="coerce")
        birth_year = pd.to_numeric(voters["birth_year"].reset_index(drop=True), errors="coerce")
        bd_days = _day_numbers(birth_date)
        # One number per (birth date, birth year) pair; years outside 0..9998 are implausible anyway.
        year_key = np.clip(np.nan_to_num(birth_year.to_numpy(float), nan=-1), -1, 9999)
        key = np.where(np.isnan(bd_days), -10**7, bd_days) * 10_000 + year_key
        _, first, self._inverse = np.unique(key, return_index=True, return_inverse=True)
        self._birth_date = birth_date.iloc[first].reset_index(drop=True)
        self._birth_year = birth_year.iloc[first].reset_index(drop=True)
        reg = _day_numbers(voters["registered_on"].reset_index(drop=True))
        reg[reg < _day_number(config.tenure_placeholder_before)] = np.nan
        self.registered_days = reg  # NaN: missing or placeholder
        stamps = pd.DatetimeIndex(np.where(np.isnan(reg), 0, reg).astype("int64").astype("datetime64[D]"))
        self._reg_year = stamps.year.to_numpy()
        self._reg_month_day = (stamps.month * 100 + stamps.day).to_numpy()
        year_from_date = birth_date.dt.year.to_numpy(dtype=float, na_value=np.nan)
        self.birth_year_used = np.where(np.isnan(year_from_date), birth_year.to_numpy(float), year_from_date)

    def ages(self, as_of: date) -> tuple[np.ndarray, np.ndarray]:
        """(age as float with NaN for unknown, method) as of `as_of`, via ages_as_of()."""
        age, method = ages_as_of(self._birth_date, self._birth_year, as_of)
        return age.to_numpy(dtype=float, na_value=np.nan)[self._inverse], method.to_numpy()[self._inverse]

    def tenure_years(self, as_of: date) -> np.ndarray:
        """Whole years registered as of `as_of`; NaN when unknown or registered after `as_of`."""
        reg = self.registered_days
        before_anniversary = self._reg_month_day > as_of.month * 100 + as_of.day
        years = (as_of.year - self._reg_year - before_anniversary).astype(float)
        years[np.isnan(reg) | (reg > _day_number(as_of))] = np.nan
        return years


# --- vote history ------------------------------------------------------------------------------

@dataclass
class VoteIndex:
    """De-duplicated (voter, election) pairs for the elections before the snapshot.

    elections: election_id, election_date, election_type, voters (distinct), is_general_considered.
    """

    elections: pd.DataFrame
    voter_index: np.ndarray  # row of the voter in the roll, one per (voter, election)
    election_id: np.ndarray
    has_history: np.ndarray  # per voter: any matched history row before the snapshot
    generals: list[int]  # election ids of G, newest first
    history_rows: int = 0
    orphan_rows: int = 0  # history rows whose voter_id is not on the current roll
    rows_after_snapshot: int = 0
    rows_in_minor_elections: int = 0

    def voted(self, election_id: int, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        start, stop = np.searchsorted(self.election_id, [election_id, election_id + 1])
        mask[self.voter_index[start:stop]] = True
        return mask


def _as_arrow_strings(values: pd.Series) -> pa.Array:
    """A pandas column as an Arrow large_string array (None/NaN -> null)."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(pd.Series(values).astype(object).where(pd.Series(values).notna(), None).map(
            lambda v: v if v is None else str(v)), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


def _voter_positions(voter_ids: pd.Series, lookup_ids: pd.Series) -> np.ndarray:
    """Row of each lookup id in voter_ids (first occurrence; -1 when absent or null): an Arrow
    hash join, much faster than pandas indexing on millions of string ids."""
    options = pc.SetLookupOptions(_as_arrow_strings(voter_ids), skip_nulls=True)
    found = pc.index_in(_as_arrow_strings(lookup_ids), options=options)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def index_votes(voter_ids: pd.Series, history: pd.DataFrame, snapshot: date, config: CohortConfig) -> VoteIndex:
    """Match history to the roll, keep elections strictly before the snapshot, drop elections with
    fewer than min_election_share of the roll voting, and pick G (the generals considered)."""
    n = len(voter_ids)
    rows = len(history)
    position = _voter_positions(voter_ids.reset_index(drop=True), history["voter_id"].reset_index(drop=True))
    days = _day_numbers(history["election_date"].reset_index(drop=True))
    type_codes, type_uniques = pd.factorize(history["election_type"].reset_index(drop=True))
    type_names = [str(t) for t in type_uniques]
    if "other" not in type_names:
        type_names.append("other")
    type_codes = np.where(type_codes < 0, type_names.index("other"), type_codes).astype(np.int64)
    on_roll = position >= 0
    before = ~np.isnan(days) & (days < _day_number(snapshot))
    keep = on_roll & before
    has_history = np.zeros(n, dtype=bool)
    has_history[position[keep]] = True

    # One integer per (date, type): sorting it sorts elections by date, then type.
    composite = days[keep].astype(np.int64) * len(type_names) + type_codes[keep]
    election_code, composite_uniques = pd.factorize(composite, sort=True)
    n_found = len(composite_uniques)
    # (election, voter) pairs as one integer, sorted and de-duplicated: election-major order,
    # so each election's voters are one contiguous slice.
    key = election_code.astype(np.int64) * max(n, 1) + position[keep]
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    election_of = key // max(n, 1)
    voter_of = key % max(n, 1)
    voters_per = np.bincount(election_of, minlength=n_found)

    threshold = max(1, math.ceil(config.min_election_share * n))
    major = voters_per >= threshold
    new_id = np.full(n_found, -1, dtype=np.int64)
    new_id[major] = np.arange(int(major.sum()))
    found_days = np.asarray(composite_uniques, dtype=np.int64) // len(type_names)
    found_types = np.array(type_names, dtype=object)[np.asarray(composite_uniques, dtype=np.int64) % len(type_names)]
    elections = pd.DataFrame({
        "election_id": np.arange(int(major.sum()), dtype=np.int64),
        "election_date": (found_days[major].astype("datetime64[D]")).astype("datetime64[s]"),
        "election_type": pd.Series(found_types[major], dtype=object),
        "voters": voters_per[major].astype(np.int64),
    })
    mapped = new_id[election_of]
    in_major = mapped >= 0
    election_sorted = mapped[in_major]
    voter_sorted = voter_of[in_major]

    general = (elections["election_type"] == "general").to_numpy()
    if config.even_years_only:
        general = general & (elections["election_date"].dt.year % 2 == 0).to_numpy()
    candidates = elections[general].sort_values("election_date", ascending=False)
    generals = candidates["election_id"].head(config.generals_considered).tolist()
    elections["is_general_considered"] = elections["election_id"].isin(generals)
    return VoteIndex(
        elections=elections, voter_index=voter_sorted, election_id=election_sorted,
        has_history=has_history, generals=generals, history_rows=rows,
        orphan_rows=int((~on_roll).sum()), rows_after_snapshot=int((on_roll & ~before).sum()),
        rows_in_minor_elections=int(voters_per[~major].sum()),
    )


def turnout_cohort_codes(
    registered_days: np.ndarray, votes: VoteIndex, n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(generals_eligible, generals_voted, turnout cohort code index into TURNOUT_CODES)."""
    eligible = np.zeros(n, dtype=np.int8)
    voted = np.zeros(n, dtype=np.int8)
    elections = votes.elections.set_index("election_id")
    reg_unknown = np.isnan(registered_days)
    dates = []
    for election_id in votes.generals:
        day = _day_number(elections.at[election_id, "election_date"].date())
        dates.append(day)
        cast = votes.voted(election_id, n)
        voted += cast
        eligible += cast | reg_unknown | (registered_days <= day)
    considered = len(votes.generals)
    latest = max(dates) if dates else None
    new_registrant = (
        np.zeros(n, dtype=bool) if latest is None
        else (~reg_unknown & (registered_days > latest) & (voted == 0))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(eligible > 0, voted / np.maximum(eligible, 1), 0.0)
    code = np.select(
        [
            new_registrant,
            eligible == 0,
            (voted == considered) & (considered > 0),
            share > 0.5,
            voted >= 1,
            votes.has_history,
        ],
        [TURNOUT_CODES.index(c) for c in
         ("new_registrant", "unknown", "super_voter", "consistent", "sporadic", "lapsed")],
        default=TURNOUT_CODES.index("never_voted"),
    )
    return eligible, voted, code.astype(np.int64)


# --- per-voter cohorts -------------------------------------------------------------------------

def _nullable_int16(values: np.ndarray) -> pd.arrays.IntegerArray:
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int16), missing)


def _party_categories(party: pd.Series, config: CohortConfig) -> list[str]:
    seen = [p for p in pd.unique(party.dropna()) if p not in config.party_order and p != config.unknown]
    return [*config.party_order, *sorted(map(str, seen)), config.unknown]


def _categorical(values: pd.Series, categories: list[str], unknown: str) -> pd.Categorical:
    """`values` as a Categorical over `categories`; nulls become `unknown` (the last category)."""
    codes = pd.Categorical(values, categories=categories).codes
    return pd.Categorical.from_codes(np.where(codes < 0, categories.index(unknown), codes), categories=categories)


def _clean_district(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip().upper()
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return text or None


def normalise_district(values) -> pa.Array:
    """Upper-case, trimmed district codes with leading zeros dropped ('04' and '4' are one
    district), so geocoded and state-reported codes group together; blanks become null.
    Works on the distinct values only (an Arrow dictionary), so it is cheap on millions of rows."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else _as_arrow_strings(pd.Series(values))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    encoded = array.dictionary_encode()
    cleaned = pa.array([_clean_district(v) for v in encoded.dictionary.to_pylist()], type=pa.large_string())
    return cleaned.take(encoded.indices)


def _column(frame: pd.DataFrame, name: str) -> pa.Array:
    if name not in frame:
        return pa.nulls(len(frame), pa.large_string())
    return _as_arrow_strings(frame[name].reset_index(drop=True))


def _positions(value_set: pa.Array, lookups: pa.Array) -> pa.Array:
    """index_in with nulls for absent or null lookups (Arrow take() propagates them)."""
    return pc.index_in(lookups, options=pc.SetLookupOptions(value_set, skip_nulls=True))


def voter_households_and_geography(
    voters: pd.DataFrame, voter_households: pd.DataFrame, households: pd.DataFrame,
    geocodes: pd.DataFrame,
) -> pd.DataFrame:
    """Per voter (aligned with `voters`): household id, size and party mix, geocode status, the
    three districts and the 2020 tract GEOID.

    Districts come from the voter's household geocode (household_id = address_key) when it
    matched and carries the district; otherwise from the state-reported columns of the voter file
    (district_source says which: 'geocode', 'state_file' or 'none'; 'geocode' when at least one
    district came from the geocode). Tracts exist only for geocoded voters; state files carry none.
    """
    n = len(voters)
    ids = _column(voters, "voter_id")
    linked_ids = _column(voter_households, "voter_id")
    if len(linked_ids) == n and pc.all(pc.fill_null(pc.equal(linked_ids, ids), False)).as_py() is not False:
        household_id = _column(voter_households, "household_id")  # same rows in the same order
    else:
        household_id = _column(voter_households, "household_id").take(_positions(linked_ids, ids))
    hh_pos = _positions(_column(households, "household_id"), household_id)
    if len(households):
        sizes = pa.array(pd.to_numeric(households["voter_count"], errors="coerce").reset_index(drop=True),
                         from_pandas=True).cast(pa.int32()).take(hh_pos)
        mixes = _column(households, "party_mix").take(hh_pos)
    else:
        sizes, mixes = pa.nulls(n, pa.int32()), pa.nulls(n, pa.large_string())
    has_household = pc.is_valid(household_id)
    mix = pc.if_else(has_household, pc.fill_null(mixes, "unknown"), NO_HOUSEHOLD)
    geo_pos = _positions(_column(geocodes, "address_key"), household_id)
    matched = pc.fill_null(pc.equal(_column(geocodes, "status").take(geo_pos), "match"), False)

    def geocoded(name: str) -> pa.Array:
        return pc.if_else(matched, _column(geocodes, name).take(geo_pos), pa.scalar(None, pa.large_string()))

    out = {
        "household_id": household_id,
        "household_size": sizes,
        "household_party_mix": mix,
        "geocoded": matched,
    }
    source = pa.array(np.full(n, "none", dtype=object), type=pa.large_string())
    for name in DISTRICT_COLUMNS:
        from_geocode = normalise_district(geocoded(name))
        from_state = normalise_district(_column(voters, name))
        use_geocode = pc.is_valid(from_geocode)
        out[name] = pc.coalesce(from_geocode, from_state)
        state_only = pc.and_(pc.equal(source, "none"), pc.is_valid(from_state))
        source = pc.if_else(use_geocode, "geocode", pc.if_else(state_only, "state_file", source))
    out["district_source"] = source
    state_fips, county_fips, tract = (pc.fill_null(geocoded(c), "") for c in ("state_fips", "county_fips", "tract"))
    long_form = pc.equal(pc.utf8_length(tract), 11)
    parts_ok = pc.and_(pc.and_(pc.equal(pc.utf8_length(tract), 6), pc.equal(pc.utf8_length(state_fips), 2)),
                       pc.equal(pc.utf8_length(county_fips), 3))
    joined = pc.binary_join_element_wise(state_fips, county_fips, tract, pa.scalar("", pa.large_string()))
    null = pa.scalar(None, pa.large_string())
    out["tract"] = pc.if_else(long_form, tract, pc.if_else(parts_ok, joined, null))
    table = pa.table(out)
    frame = table.to_pandas()
    frame["household_size"] = frame["household_size"].astype("Int32")
    return frame


def assign_cohorts(
    voters: pd.DataFrame, votes: VoteIndex, snapshot: date, config: CohortConfig,
    roll: Roll | None = None,
) -> pd.DataFrame:
    """Every cohort label per voter as of the snapshot (columns of schema.VOTER_COHORTS without
    household and geography ones). Missing or placeholder data gives the 'unknown' label."""
    roll = roll or Roll(voters, config)
    unknown = config.unknown
    age, method = roll.ages(snapshot)
    out = pd.DataFrame({
        "voter_id": voters["voter_id"].reset_index(drop=True),
        "county_code": voters["county_code"].reset_index(drop=True),
        "county_name": voters["county_name"].reset_index(drop=True) if "county_name" in voters else None,
        "status": voters["status"].reset_index(drop=True),
        "age": _nullable_int16(age),
        "age_method": pd.Categorical(method, categories=list(AGE_METHODS)),
    })
    for name, bands in config.age_schemes.items():
        out[f"age_band_{name}"] = band_labels(age, bands, unknown)
    birth_year = np.where(method == "unknown", np.nan, roll.birth_year_used)
    out["generation"] = band_labels(birth_year, config.generations, unknown)
    out["registered_on"] = pd.to_datetime(voters["registered_on"].reset_index(drop=True), errors="coerce")
    tenure = roll.tenure_years(snapshot)
    out["tenure_years"] = _nullable_int16(tenure)
    out["tenure_band"] = band_labels(tenure, config.tenure_bands, unknown)
    party = voters["party"].reset_index(drop=True)
    out["party"] = _categorical(party, _party_categories(party, config), unknown)
    eligible, voted, code = turnout_cohort_codes(roll.registered_days, votes, roll.n)
    out["generals_eligible"] = eligible
    out["generals_voted"] = voted
    out["turnout_cohort"] = pd.Categorical.from_codes(code, categories=list(TURNOUT_CODES))
    return out


# --- turnout by cohort x election x geography ---------------------------------------------------

def _codes(values: pd.Series, unknown: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (null -> the last code, `unknown`) and sorted labels, via an Arrow dictionary."""
    encoded = _as_arrow_strings(pd.Series(values).reset_index(drop=True)).dictionary_encode()
    labels = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels.astype(str), kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    nulls = np.isnan(indices) if indices.dtype.kind == "f" else np.zeros(len(indices), dtype=bool)
    codes = np.where(nulls, len(labels), rank[np.nan_to_num(indices, nan=0).astype(np.int64)] if len(labels) else 0)
    return codes.astype(np.int64), np.array([*labels[order], unknown], dtype=object)


def cohort_turnout(
    cohorts: pd.DataFrame, votes: VoteIndex, roll: Roll, state: str, config: CohortConfig,
) -> pd.DataFrame:
    """Registered, voted and turnout by election x geography level x cohort dimension x cohort.

    registered = voters on the current roll registered on or before the election's date (or with
    no usable registration date, or who voted in it); voted = those with a history row for it.
    Age bands and tenure are as of the election's date. Only cells with registered > 0 appear.
    """
    unknown = config.unknown
    n = len(cohorts)
    levels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = []
    levels.append(("state", np.zeros(n, dtype=np.int64), np.array([state.upper()], dtype=object), None))
    county_codes, county_labels = _codes(cohorts["county_code"], unknown)
    county_names = None
    if "county_name" in cohorts and cohorts["county_name"].notna().any():
        names = cohorts["county_name"].to_numpy(dtype=object)
        _, first = np.unique(county_codes, return_index=True)
        county_names = np.full(len(county_labels), None, dtype=object)
        county_names[county_codes[first]] = names[first]
    levels.append(("county", county_codes, county_labels, county_names))
    for level in (*DISTRICT_COLUMNS, "tract"):
        codes, labels = _codes(cohorts[level], unknown)
        levels.append((level, codes, labels, None))

    fixed: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "all": (np.zeros(n, dtype=np.int64), np.array(["all"], dtype=object)),
    }
    for column in ("generation", "party", "turnout_cohort"):
        cat = cohorts[column].astype("category")
        fixed[column] = (cat.cat.codes.to_numpy().astype(np.int64), np.array(cat.cat.categories, dtype=object))

    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "election", "level", "geography", "geography_name", "dimension", "cohort", "registered", "voted")}
    dimensions = config.dimensions()
    elections = votes.elections.sort_values(["election_date", "election_type"]).reset_index(drop=True)
    for position, row in enumerate(elections.itertuples(index=False)):
        day = row.election_date.date()
        cast = votes.voted(row.election_id, n)
        registered = cast | np.isnan(roll.registered_days) | (roll.registered_days <= _day_number(day))
        dims = dict(fixed)
        age, _ = roll.ages(day)
        for name, bands in config.age_schemes.items():
            labels = np.array([b.label for b in bands] + [unknown], dtype=object)
            dims[f"age_band_{name}"] = (band_codes(age, bands), labels)
        tenure_labels = np.array([b.label for b in config.tenure_bands] + [unknown], dtype=object)
        dims["tenure_band"] = (band_codes(roll.tenure_years(day), config.tenure_bands), tenure_labels)
        # Voted implies registered, so one bincount over (cell, voted) pairs of the registered
        # voters gives both counts.
        chosen = np.flatnonzero(registered)
        voted_flag = cast[chosen].astype(np.int64)
        dim_chosen = {name: (codes[chosen], labels) for name, (codes, labels) in dims.items()}
        for level_index, (_, geo_codes, geo_labels, geo_names) in enumerate(levels):
            geo_chosen = geo_codes[chosen]
            for dimension_index, dimension in enumerate(dimensions):
                dim_codes, dim_labels = dim_chosen[dimension]
                width = len(dim_labels)
                size = len(geo_labels) * width
                counts = np.bincount((geo_chosen * width + dim_codes) * 2 + voted_flag,
                                     minlength=2 * size).reshape(size, 2)
                reg_count = counts.sum(axis=1)
                cast_count = counts[:, 1]
                present = np.flatnonzero(reg_count > 0)
                geo_index = present // width
                k = len(present)
                columns["election"].append(np.full(k, position))
                columns["level"].append(np.full(k, level_index))
                columns["geography"].append(geo_labels[geo_index])
                columns["geography_name"].append(
                    np.full(k, None, dtype=object) if geo_names is None else geo_names[geo_index])
                columns["dimension"].append(np.full(k, dimension_index))
                columns["cohort"].append(dim_labels[present % width])
                columns["registered"].append(reg_count[present].astype(np.int64))
                columns["voted"].append(cast_count[present].astype(np.int64))
    if not columns["election"]:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (
            "election_date", "election_type", "geography_level", "geography", "geography_name",
            "dimension", "cohort")} | {"registered": pd.Series(dtype=np.int64),
                                       "voted": pd.Series(dtype=np.int64),
                                       "turnout": pd.Series(dtype=float)})
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    level_names = np.array([level[0] for level in levels], dtype=object)
    table = pd.DataFrame({
        "election_date": elections["election_date"].to_numpy()[joined["election"]],
        "election_type": elections["election_type"].to_numpy(dtype=object)[joined["election"]],
        "geography_level": level_names[joined["level"]],
        "geography": joined["geography"],
        "geography_name": joined["geography_name"],
        "dimension": np.array(dimensions, dtype=object)[joined["dimension"]],
        "cohort": joined["cohort"],
        "registered": joined["registered"],
        "voted": joined["voted"],
    })
    table["turnout"] = table["voted"] / table["registered"]
    return table


# --- households ---------------------------------------------------------------------------------

def household_size_distribution(households: pd.DataFrame, top_size: int) -> pd.DataFrame:
    """Households and voters by household size (voters at one address), sizes >= top_size pooled."""
    sizes = pd.to_numeric(households["voter_count"], errors="coerce").dropna().astype(np.int64).to_numpy()
    clipped = np.minimum(sizes, top_size)
    households_by = np.bincount(clipped, minlength=top_size + 1)[1:]
    voters_by = np.bincount(clipped, weights=sizes, minlength=top_size + 1)[1:]
    labels = [str(s) for s in range(1, top_size)] + [f"{top_size}+"]
    return pd.DataFrame({
        "household_size": labels,
        "size_order": np.arange(1, top_size + 1, dtype=np.int32),
        "households": households_by.astype(np.int64),
        "voters": voters_by.astype(np.int64),
    })


def _dimension_codes(frame: pd.DataFrame, dimension: str, unknown: str = "unknown") -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and labels of one cohort column ('all' = one cohort of everyone)."""
    if dimension == "all":
        return np.zeros(len(frame), dtype=np.int64), np.array(["all"], dtype=object)
    column = frame[dimension]
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = np.array([str(c) for c in column.cat.categories], dtype=object)
        codes = column.cat.codes.to_numpy().astype(np.int64)
        if (codes < 0).any():
            if unknown in labels:
                codes = np.where(codes < 0, int(np.flatnonzero(labels == unknown)[0]), codes)
            else:
                labels = np.append(labels, unknown)
                codes = np.where(codes < 0, len(labels) - 1, codes)
        return codes, labels
    return _codes(column, unknown)


def _count_by(codes: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, counts) of the cohorts with at least one voter (optionally among `mask`)."""
    chosen = codes if mask is None else codes[mask]
    counts = np.bincount(chosen, minlength=len(labels))
    present = np.flatnonzero(counts)
    return labels[present], counts[present].astype(np.int64)


def party_mix_by_cohort(voter_cohorts: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    """Voters by cohort and the party mix of their household (single_party / mixed / unknown /
    no_household), with each row's share of its cohort."""
    mix_codes, mix_labels = _codes(voter_cohorts["household_party_mix"], "unknown")
    width = len(mix_labels)
    pieces = []
    for dimension in dimensions:
        codes, labels = _dimension_codes(voter_cohorts, dimension)
        counts = np.bincount(codes * width + mix_codes, minlength=len(labels) * width).reshape(len(labels), width)
        totals = counts.sum(axis=1)
        cohort_index, mix_index = np.nonzero(counts)
        voters = counts[cohort_index, mix_index].astype(np.int64)
        pieces.append(pd.DataFrame({
            "dimension": dimension, "cohort": labels[cohort_index], "party_mix": mix_labels[mix_index],
            "voters": voters, "share": voters / totals[cohort_index],
        }))
    return pd.concat(pieces, ignore_index=True)


def geocode_coverage_by_county(voter_cohorts: pd.DataFrame) -> pd.DataFrame:
    """Per county: voters, voters with a usable address (a household), voters whose household
    address geocoded to a match, and the match rate over all voters."""
    codes, labels = _codes(voter_cohorts["county_code"], "unknown")
    size = len(labels)
    voters = np.bincount(codes, minlength=size)
    with_address = np.bincount(codes, weights=voter_cohorts["household_id"].notna().to_numpy(), minlength=size)
    geocoded = np.bincount(codes, weights=voter_cohorts["geocoded"].to_numpy(dtype=bool), minlength=size)
    names = np.full(size, None, dtype=object)
    if "county_name" in voter_cohorts:
        _, first = np.unique(codes, return_index=True)
        names[codes[first]] = voter_cohorts["county_name"].to_numpy(dtype=object)[first]
    present = np.flatnonzero(voters)
    frame = pd.DataFrame({
        "county_code": labels[present], "county_name": names[present],
        "voters": voters[present].astype(np.int64),
        "voters_with_address": with_address[present].astype(np.int64),
        "voters_geocoded": geocoded[present].astype(np.int64),
    })
    frame["geocode_rate"] = frame["voters_geocoded"] / frame["voters"]
    return frame


# --- snapshot-over-snapshot -------------------------------------------------------------------

def snapshot_transitions(previous: pd.DataFrame, current: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    """Changes between two voter_cohorts tables, counted by cohort.

    new_registrant: voter_id on the current roll only. removed: on the previous roll only, or now
    with status 'removed' after another status before (cohort from the previous snapshot).
    moved: on both with a household_id (= address_key) on both, and they differ. party_switch:
    on both, party known on both, and different; its 'party_switch' dimension holds 'OLD -> NEW'.
    Other dimensions take the voter's cohort in the current snapshot (previous for 'removed').
    """
    previous = previous.reset_index(drop=True)
    current = current.reset_index(drop=True)
    prev_pos = _voter_positions(previous["voter_id"], current["voter_id"])  # per current row
    on_previous = _voter_positions(current["voter_id"], previous["voter_id"]) >= 0  # per previous row
    both = prev_pos >= 0
    take = pa.array(np.clip(prev_pos, 0, None)) if len(previous) else None

    def pair(column: str) -> tuple[np.ndarray, np.ndarray]:
        """(current values, previous values of the same voter) as object arrays, None = missing."""
        now = _column(current, column)
        before = _column(previous, column).take(take) if take is not None else pa.nulls(len(current), pa.large_string())
        return (now.to_numpy(zero_copy_only=False), before.to_numpy(zero_copy_only=False))

    cur_status, prev_status = pair("status")
    became_removed = both & (cur_status == "removed") & (prev_status != "removed")
    cur_hh, prev_hh = pair("household_id")
    moved = both & pd.notna(cur_hh) & pd.notna(prev_hh) & (cur_hh != prev_hh)
    cur_party, prev_party = pair("party")
    known = pd.notna(cur_party) & pd.notna(prev_party) & (cur_party != "unknown") & (prev_party != "unknown")
    switched = both & known & (cur_party != prev_party)

    removed_rows = ~on_previous
    if became_removed.any():
        removed_rows[prev_pos[became_removed]] = True
    pieces = []
    for change, frame, mask in (("new_registrant", current, ~both), ("removed", previous, removed_rows),
                                ("moved", current, moved), ("party_switch", current, switched)):
        for dimension in dimensions:
            if dimension != "all" and dimension not in frame:
                continue
            labels, counts = _count_by(*_dimension_codes(frame, dimension), mask)
            pieces.append(pd.DataFrame({"change": change, "dimension": dimension, "cohort": labels, "voters": counts}))
    if switched.any():
        moves = pd.Series(prev_party[switched].astype(str)) + " -> " + pd.Series(cur_party[switched].astype(str))
        counted = moves.value_counts(sort=False)
        pieces.append(pd.DataFrame({"change": "party_switch", "dimension": "party_switch",
                                    "cohort": counted.index.astype(str), "voters": counted.to_numpy()}))
    pieces = [p for p in pieces if len(p)]
    if not pieces:
        return pd.DataFrame({"change": pd.Series(dtype=object), "dimension": pd.Series(dtype=object),
                             "cohort": pd.Series(dtype=object), "voters": pd.Series(dtype=np.int64)})
    result = pd.concat(pieces, ignore_index=True)
    result["voters"] = result["voters"].astype(np.int64)
    return result


# --- everything for one snapshot ------------------------------------------------------------

@dataclass
class CohortTables:
    voter_cohorts: pd.DataFrame
    cohort_turnout: pd.DataFrame
    elections: pd.DataFrame
    household_sizes: pd.DataFrame
    household_party_mix: pd.DataFrame
    geocode_coverage: pd.DataFrame
    transitions: pd.DataFrame | None
    summary: dict


def cohorts_for_roll(voters: pd.DataFrame, history: pd.DataFrame, snapshot: date,
                     config: CohortConfig) -> tuple[pd.DataFrame, VoteIndex, Roll]:
    """Per-voter cohorts for one roll and its history (no households or geography)."""
    roll = Roll(voters, config)
    votes = index_votes(voters["voter_id"], history, snapshot, config)
    return assign_cohorts(voters, votes, snapshot, config, roll), votes, roll


def analyse_cohorts(
    voters: pd.DataFrame, history: pd.DataFrame, voter_households: pd.DataFrame,
    households: pd.DataFrame, geocodes: pd.DataFrame, *, state: str, snapshot: date,
    config: CohortConfig | None = None, previous: pd.DataFrame | None = None,
) -> CohortTables:
    """All cohort outputs for one snapshot. `previous` is the earlier snapshot's voter_cohorts
    table (or the same columns rebuilt from its canonical files), or None."""
    config = config or load_cohort_config()
    cohorts, votes, roll = cohorts_for_roll(voters, history, snapshot, config)
    place = voter_households_and_geography(voters, voter_households, households, geocodes)
    for column in place.columns:
        cohorts[column] = place[column].array
    cohorts.insert(0, "snapshot", pd.Timestamp(snapshot))
    cohorts.insert(0, "state", state.lower())
    turnout = cohort_turnout(cohorts, votes, roll, state, config)
    dims = [d for d in config.dimensions() if d != "tenure_band"]
    transitions = None
    if previous is not None:
        transitions = snapshot_transitions(previous, cohorts, TRANSITION_DIMENSIONS)
    elections = votes.elections.copy()
    summary = {
        "voters": int(len(cohorts)),
        "history_rows": int(votes.history_rows),
        "history_rows_not_on_roll": int(votes.orphan_rows),
        "history_rows_on_or_after_snapshot": int(votes.rows_after_snapshot),
        "elections": int(len(elections)),
        "generals_considered": [d.date().isoformat() for d in
                                elections.loc[elections["is_general_considered"], "election_date"].sort_values()],
        "age_methods": {k: int(v) for k, v in cohorts["age_method"].value_counts(sort=False).items() if v},
        "turnout_cohorts": {k: int(v) for k, v in cohorts["turnout_cohort"].value_counts(sort=False).items()},
        "district_sources": {k: int(v) for k, v in pd.Series(cohorts["district_source"]).value_counts().items()},
        "voters_geocoded": int(cohorts["geocoded"].sum()),
        "voters_with_household": int(cohorts["household_id"].notna().sum()),
        "denominator": "current roll, registered on or before election day (removed voters absent)",
    }
    return CohortTables(
        voter_cohorts=cohorts,
        cohort_turnout=turnout,
        elections=elections,
        household_sizes=household_size_distribution(households, config.household_top_size),
        household_party_mix=party_mix_by_cohort(cohorts, dims),
        geocode_coverage=geocode_coverage_by_county(cohorts),
        transitions=transitions,
        summary=summary,
    )


# --- files ------------------------------------------------------------------------------------

OUTPUT_FILES = {
    "voter_cohorts": "voter_cohorts.parquet",
    "cohort_turnout": "cohort_turnout.parquet",
    "elections": "elections.parquet",
    "household_sizes": "household_sizes.parquet",
    "household_party_mix": "household_party_mix.parquet",
    "geocode_coverage": "geocode_coverage.parquet",
    "transitions": "transitions.parquet",
}


def _arrow(frame: pd.DataFrame, target: pa.Schema) -> pa.Table:
    columns = {}
    for field_ in target:
        if field_.name not in frame:
            continue
        series = frame[field_.name]
        if pa.types.is_date32(field_.type):
            series = pd.to_datetime(series, errors="coerce")
        columns[field_.name] = pa.array(series, from_pandas=True)
    if not columns:
        return schema.empty_table(target)
    return schema.conform(pa.table(columns), target)


def write_cohort_tables(tables: CohortTables, directory: Path, state: str, snapshot: date,
                        previous_snapshot: date | None = None) -> dict[str, int]:
    """Write each table as Parquet (schema.VOTER_COHORTS, COHORT_TURNOUT, ...) into `directory`;
    return {file name: rows}. transitions.parquet is written only when there was a previous roll."""
    turnout = tables.cohort_turnout.copy()
    turnout["state"] = state.lower()
    turnout["snapshot"] = pd.Timestamp(snapshot)
    frames = {
        "voter_cohorts": (tables.voter_cohorts, schema.VOTER_COHORTS),
        "cohort_turnout": (turnout, schema.COHORT_TURNOUT),
        "elections": (tables.elections, schema.COHORT_ELECTIONS),
        "household_sizes": (tables.household_sizes, schema.HOUSEHOLD_SIZES),
        "household_party_mix": (tables.household_party_mix, schema.HOUSEHOLD_PARTY_MIX),
        "geocode_coverage": (tables.geocode_coverage, schema.GEOCODE_COVERAGE),
    }
    if tables.transitions is not None:
        transitions = tables.transitions.copy()
        transitions["previous_snapshot"] = pd.Timestamp(previous_snapshot) if previous_snapshot else pd.NaT
        frames["transitions"] = (transitions, schema.COHORT_TRANSITIONS)
    written = {}
    for name, (frame, target) in frames.items():
        table = _arrow(frame, target)
        storage.write_parquet(table, Path(directory) / OUTPUT_FILES[name])
        written[OUTPUT_FILES[name]] = table.num_rows
    return written
