"""Every cohort label of each voter as of the snapshot: age bands, generation, tenure, party and
turnout cohort. Missing or placeholder data gives the 'unknown' label, never a band.

Turnout cohort rules (G = the last 4 general elections strictly before the snapshot, see
votes.index_votes(); a voter is eligible for an election when registered on or before its date,
when the registration date is unknown, or when the voter has a history row for it), first match wins:

    new_registrant  G not empty, registered after the latest election in G, voted in none of G
    unknown         eligible for none of G (there are no general elections in the history)
    super_voter     voted in every election of G (4 of 4 when the history holds 4 generals)
    consistent      voted in more than half of the elections of G the voter was eligible for
    sporadic        voted in at least one election of G
    lapsed          voted in none of G, but has some history row before the snapshot
    never_voted     no history row at all before the snapshot
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from voterpipe.ages import AGE_METHODS
from voterpipe.cohorts.arrays import day_number
from voterpipe.cohorts.bands import band_labels
from voterpipe.cohorts.config import TURNOUT_CODES, CohortConfig
from voterpipe.cohorts.roll import Roll
from voterpipe.cohorts.votes import VoteIndex


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
        day = day_number(elections.at[election_id, "election_date"].date())
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


def _nullable_int16(values: np.ndarray) -> pd.arrays.IntegerArray:
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int16), missing)


def party_categories(party: pd.Series, config: CohortConfig) -> list[str]:
    """The party column's categories: the config's order, other parties seen sorted, unknown."""
    return _party_categories(party, config)


def _party_categories(party: pd.Series, config: CohortConfig) -> list[str]:
    seen = [p for p in pd.unique(party.dropna()) if p not in config.party_order and p != config.unknown]
    return [*config.party_order, *sorted(map(str, seen)), config.unknown]


def _categorical(values: pd.Series, categories: list[str], unknown: str) -> pd.Categorical:
    """`values` as a Categorical over `categories`; nulls become `unknown` (the last category)."""
    codes = pd.Categorical(values, categories=categories).codes
    return pd.Categorical.from_codes(np.where(codes < 0, categories.index(unknown), codes), categories=categories)


def assign_cohorts(
    voters: pd.DataFrame, votes: VoteIndex, snapshot: date, config: CohortConfig,
    roll: Roll | None = None, party_categories: list[str] | None = None,
) -> pd.DataFrame:
    """Every cohort label per voter as of the snapshot (columns of schema.VOTER_COHORTS without
    household and geography ones). Missing or placeholder data gives the 'unknown' label.
    `party_categories`: those of the whole roll when `voters` is a part of it (party_categories())."""
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
    out["party"] = _categorical(party, party_categories or _party_categories(party, config), unknown)
    eligible, voted, code = turnout_cohort_codes(roll.registered_days, votes, roll.n)
    out["generals_eligible"] = eligible
    out["generals_voted"] = voted
    out["turnout_cohort"] = pd.Categorical.from_codes(code, categories=list(TURNOUT_CODES))
    return out


def label_categories(column: str, distinct: list[str], config: CohortConfig) -> list[str] | None:
    """The categories cohort_categories() gives a label column with these distinct values (None:
    the column stays text)."""
    unknown = config.unknown
    if column.startswith("age_band_") and column[len("age_band_"):] in config.age_schemes:
        return [b.label for b in config.age_schemes[column[len("age_band_"):]]] + [unknown]
    fixed = {"generation": [b.label for b in config.generations] + [unknown],
             "tenure_band": [b.label for b in config.tenure_bands] + [unknown],
             "turnout_cohort": list(TURNOUT_CODES), "age_method": list(AGE_METHODS)}
    if column in fixed:
        return fixed[column]
    if column == "party":
        return _party_categories(pd.Series(distinct, dtype=object), config)
    return None


def cohort_categories(frame: pd.DataFrame, config: CohortConfig) -> pd.DataFrame:
    """A voter_cohorts table read back from Parquet (labels as text) with its label columns as
    the categoricals assign_cohorts gives them, so that counting by cohort lists the cohorts
    in the same order as for a freshly assigned table."""
    unknown = config.unknown
    categories = {f"age_band_{name}": [b.label for b in bands] + [unknown]
                  for name, bands in config.age_schemes.items()}
    categories["generation"] = [b.label for b in config.generations] + [unknown]
    categories["tenure_band"] = [b.label for b in config.tenure_bands] + [unknown]
    categories["turnout_cohort"] = list(TURNOUT_CODES)
    categories["age_method"] = list(AGE_METHODS)
    out = frame.copy()
    for column, labels in categories.items():
        if column in out:
            out[column] = pd.Categorical(out[column], categories=labels)
    if "party" in out:
        out["party"] = _categorical(out["party"], _party_categories(out["party"], config), unknown)
    return out
