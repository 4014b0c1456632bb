"""Vote history matched to the roll: the distinct (voter, election) pairs before the snapshot, the
elections big enough to count, and G, the general elections the turnout cohorts look at. A ballot the
state did not count (history ballot_status not_counted, e.g. FL B and P) is no vote."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from voterpipe.cohorts.arrays import day_number, day_numbers, voter_positions
from voterpipe.cohorts.config import CohortConfig


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
    rows_not_counted: int = 0  # ballots the state did not count: not votes

    def voted(self, election_id: int, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        start, stop = np.searchsorted(self.election_id, [election_id, election_id + 1])
        mask[self.voter_index[start:stop]] = True
        return mask


def index_votes(voter_ids: pd.Series, history: pd.DataFrame, snapshot: date, config: CohortConfig) -> VoteIndex:
    """Match history to the roll, keep elections strictly before the snapshot, drop elections with
    fewer than min_election_share of the roll voting, and pick G (the generals considered)."""
    position = voter_positions(voter_ids.reset_index(drop=True), history["voter_id"].reset_index(drop=True))
    days = day_numbers(history["election_date"].reset_index(drop=True))
    type_codes, type_names = _election_type_codes(history["election_type"])
    rows = HistoryRows(position, np.where(np.isnan(days), MISSING_DAY, days).astype(np.int64),
                       type_codes, type_names, _counted_ballots(history))
    return votes_of_rows(rows, len(voter_ids), snapshot, config)


MISSING_DAY = np.iinfo(np.int32).min  # a history row without an election date


@dataclass
class HistoryRows:
    """History as arrays, one entry per row: the voter's row in the roll (-1: not on it), the
    election's day number (MISSING_DAY: none), election type code into type_names, counted ballot."""

    position: np.ndarray
    days: np.ndarray
    type_codes: np.ndarray
    type_names: list[str]
    counted: np.ndarray


def votes_of_rows(rows: HistoryRows, n: int, snapshot: date, config: CohortConfig) -> VoteIndex:
    """index_votes() of history already matched to a roll of n voters."""
    position, days, counted = rows.position, rows.days, rows.counted
    rows.position = rows.days = rows.counted = None  # dropped here as soon as used (peak memory)
    on_roll = position >= 0
    before = (days != MISSING_DAY) & (days < day_number(snapshot))
    keep = on_roll & before & counted
    has_history = np.zeros(n, dtype=bool)
    has_history[position[keep]] = True
    history_rows = len(position)
    orphan_rows, rows_after = int((~on_roll).sum()), int((on_roll & ~before).sum())
    not_counted = int((~counted).sum())
    del on_roll, before, counted

    # One integer per (date, type): sorting it sorts elections by date, then type.
    composite = days[keep].astype(np.int64) * len(rows.type_names) + rows.type_codes[keep]
    del days
    voter_rows = position[keep]
    del position, keep
    found, election_of, voter_of = _distinct_votes(composite, voter_rows, n)
    del composite, voter_rows
    voters_per = np.bincount(election_of, minlength=len(found))
    major = voters_per >= max(1, math.ceil(config.min_election_share * n))
    new_id = np.full(len(found), -1, dtype=np.int32)
    new_id[major] = np.arange(int(major.sum()))
    elections = _elections_table(found[major], rows.type_names, voters_per[major])
    mapped = new_id[election_of]
    in_major = mapped >= 0
    generals = _generals_considered(elections, config)
    elections["is_general_considered"] = elections["election_id"].isin(generals)
    return VoteIndex(
        elections=elections, voter_index=voter_of[in_major], election_id=mapped[in_major],
        has_history=has_history, generals=generals,
        history_rows=history_rows,
        orphan_rows=orphan_rows, rows_after_snapshot=rows_after,
        rows_in_minor_elections=int(voters_per[~major].sum()), rows_not_counted=not_counted,
    )


def votes_of_voters(votes: VoteIndex, start: int, stop: int) -> VoteIndex:
    """The votes of the roll's rows start..stop-1 (renumbered from 0), for analysing a roll in
    parts: the elections, G and the history counts stay those of the whole roll."""
    inside = (votes.voter_index >= start) & (votes.voter_index < stop)
    return VoteIndex(
        elections=votes.elections, voter_index=votes.voter_index[inside] - start,
        election_id=votes.election_id[inside], has_history=votes.has_history[start:stop],
        generals=votes.generals, history_rows=votes.history_rows, orphan_rows=votes.orphan_rows,
        rows_after_snapshot=votes.rows_after_snapshot, rows_in_minor_elections=votes.rows_in_minor_elections,
        rows_not_counted=votes.rows_not_counted,
    )


def _counted_ballots(history: pd.DataFrame) -> np.ndarray:
    """Per history row: a counted ballot (no ballot_status column, or not 'not_counted')."""
    if "ballot_status" not in history:
        return np.ones(len(history), dtype=bool)
    return (history["ballot_status"].reset_index(drop=True) != "not_counted").to_numpy(dtype=bool)


def _election_type_codes(types: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code of each history row's election type (missing -> 'other') and the type names."""
    codes, uniques = pd.factorize(types.reset_index(drop=True))
    names = [str(t) for t in uniques]
    if "other" not in names:
        names.append("other")
    return np.where(codes < 0, names.index("other"), codes).astype(np.int64), names


def _distinct_votes(composite: np.ndarray, voter_rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct elections, election index and voter row of each distinct vote)."""
    uniques, election_code = _election_codes(composite)
    # (election, voter) pairs as one integer, sorted and de-duplicated: election-major order,
    # so each election's voters are one contiguous slice.
    width = max(n, 1)
    key = election_code.astype(np.int64)
    del election_code
    key *= width
    key += voter_rows
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return uniques, (key // width).astype(np.int32), (key % width).astype(np.int32)


def _election_codes(composite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value among them): a table over the values' range
    when it is short (dates of a few decades), else a sort."""
    if len(composite) and int(composite.max()) - int(composite.min()) < 1 << 22:
        low = int(composite.min())
        offsets = composite - low
        seen = np.bincount(offsets) > 0
        uniques = np.flatnonzero(seen)
        code = np.cumsum(seen, dtype=np.int32) - 1
        return (uniques + low).astype(np.int64), code[offsets]
    codes, uniques = pd.factorize(composite, sort=True)
    return np.asarray(uniques, dtype=np.int64), codes


def _elections_table(composites: np.ndarray, type_names: list[str], voters: np.ndarray) -> pd.DataFrame:
    """election_id, election_date, election_type, voters of the elections kept, in date order."""
    days = composites // len(type_names)
    types = np.array(type_names, dtype=object)[composites % len(type_names)]
    return pd.DataFrame({
        "election_id": np.arange(len(composites), dtype=np.int64),
        "election_date": (days.astype("datetime64[D]")).astype("datetime64[s]"),
        "election_type": pd.Series(types, dtype=object),
        "voters": voters.astype(np.int64),
    })


def _generals_considered(elections: pd.DataFrame, config: CohortConfig) -> list[int]:
    """G: the ids of the latest `generals_considered` general elections, newest first."""
    general = (elections["election_type"] == "general").to_numpy()
    if config.even_years_only:
        general = general & (elections["election_date"].dt.year % 2 == 0).to_numpy()
    candidates = elections[general].sort_values("election_date", ascending=False)
    return candidates["election_id"].head(config.generals_considered).tolist()
