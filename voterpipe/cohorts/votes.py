"""Vote history matched to the roll: the distinct (voter, election) pairs before the snapshot, the
elections big enough to count, and G, the general elections the turnout cohorts look at. A ballot the
state did not count (history ballot_status not_counted, e.g. FL B and P) is no vote."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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
    bits: np.ndarray | None = None  # instead of the pairs (pack_votes): per voter, a bit per election

    def voted(self, election_id: int, n: int) -> np.ndarray:
        if self.bits is not None:
            return (self.bits[:n, election_id >> 3] & np.uint8(1 << (election_id & 7))) != 0
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

    composite = _composite(days[keep], rows.type_codes[keep], len(rows.type_names))
    rows.type_codes = None
    del days
    found, election_code = _election_codes(composite)
    del composite
    pairs = [election_code, position[keep]]
    del position, keep, election_code
    election_of, voter_of = _distinct_votes(pairs, n)
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


def pack_votes(votes: VoteIndex) -> VoteIndex:
    """The index with its (voter, election) pairs as bits (a bit per voter and election) when that
    is smaller: a few bytes a voter instead of 8 bytes a vote, for a roll analysed in parts."""
    elections, n = len(votes.elections), len(votes.has_history)
    width = -(-elections // 8)
    if votes.bits is not None or not elections or width * n >= 8 * len(votes.voter_index):
        return votes
    bits = np.zeros((n, width), dtype=np.uint8)
    bounds = np.searchsorted(votes.election_id, np.arange(elections + 1))
    for election in range(elections):  # an election's voters are distinct
        rows = votes.voter_index[bounds[election]:bounds[election + 1]]
        bits[rows, election >> 3] |= np.uint8(1 << (election & 7))
    empty = np.zeros(0, dtype=np.int32)
    return replace(votes, voter_index=empty, election_id=empty, bits=bits)


def votes_of_voters(votes: VoteIndex, start: int, stop: int) -> VoteIndex:
    """The votes of the roll's rows start..stop-1 (renumbered from 0), for analysing a roll in
    parts: the elections, G and the history counts stay those of the whole roll."""
    if votes.bits is not None:
        return replace(votes, bits=votes.bits[start:stop], has_history=votes.has_history[start:stop])
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


def _composite(days: np.ndarray, type_codes: np.ndarray, types: int) -> np.ndarray:
    """One integer per (date, type): sorting it sorts elections by date, then type (int32 when
    the values fit: half the memory of a history's worth)."""
    low, high = (int(days.min()), int(days.max())) if len(days) else (0, 0)
    fits = max(abs(low), abs(high)) * types + types < 2 ** 31
    wide = days.astype(np.int32 if fits else np.int64, copy=False)
    wide *= types
    wide += type_codes
    return wide


def _distinct_votes(pairs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(election index, voter row) of each distinct vote, from `pairs` = [election index, voter
    row] per history row (emptied here, so that its arrays are freed as soon as used)."""
    election_code, voter_rows = pairs
    pairs.clear()
    # (election, voter) pairs as one integer, sorted and de-duplicated: election-major order,
    # so each election's voters are one contiguous slice. int32 when it fits (half the memory).
    width = max(n, 1)
    fits = (int(election_code.max(initial=0)) + 1) * width < 2 ** 31
    key = election_code.astype(np.int32 if fits else np.int64)
    del election_code
    key *= width
    key += voter_rows
    del voter_rows
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return (key // width).astype(np.int32), (key % width).astype(np.int32)


def _election_codes(composite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value among them): a table over the values' range
    when it is short (dates of a few decades), else a sort."""
    if len(composite) and int(composite.max()) - int(composite.min()) < 1 << 22:
        low = int(composite.min())
        offsets = composite - composite.dtype.type(low)
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
