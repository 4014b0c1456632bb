"""Changes between two snapshots' voter cohorts (new registrants, removals, moves, party
switches), counted by cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe.cohorts.arrays import count_by, dimension_codes, string_column, voter_positions

TRANSITION_CHANGES = ("new_registrant", "removed", "moved", "party_switch")
TRANSITION_DIMENSIONS = ["all", "age_band_default", "generation", "party", "turnout_cohort", "county_code"]


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
    prev_pos = voter_positions(previous["voter_id"], current["voter_id"])  # per current row
    on_previous = voter_positions(current["voter_id"], previous["voter_id"]) >= 0  # per previous row
    both = prev_pos >= 0
    take = pa.array(np.clip(prev_pos, 0, None)) if len(previous) else None

    def pair(column: str) -> tuple[np.ndarray, np.ndarray]:
        """(current values, previous values of the same voter) as object arrays, None = missing."""
        now = string_column(current, column)
        before = string_column(previous, column).take(take) if take is not None \
            else pa.nulls(len(current), pa.large_string())
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
    pieces = _counts_by_cohort(
        (("new_registrant", current, ~both), ("removed", previous, removed_rows),
         ("moved", current, moved), ("party_switch", current, switched)), dimensions)
    if switched.any():
        moves = pd.Series(prev_party[switched].astype(str)) + " -> " + pd.Series(cur_party[switched].astype(str))
        counted = moves.value_counts(sort=False)
        pieces.append(pd.DataFrame({"change": "party_switch", "dimension": "party_switch",
                                    "cohort": counted.index.astype(str), "voters": counted.to_numpy()}))
    return _concat_changes([p for p in pieces if len(p)])


def _counts_by_cohort(changes, dimensions: list[str]) -> list[pd.DataFrame]:
    """For each (change, frame, mask): voters of the mask by cohort of each dimension the frame has."""
    pieces = []
    for change, frame, mask in changes:
        for dimension in dimensions:
            if dimension != "all" and dimension not in frame:
                continue
            labels, counts = count_by(*dimension_codes(frame, dimension), mask)
            pieces.append(pd.DataFrame({"change": change, "dimension": dimension, "cohort": labels, "voters": counts}))
    return pieces


def _concat_changes(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    if not pieces:
        return pd.DataFrame({"change": pd.Series(dtype=object), "dimension": pd.Series(dtype=object),
                             "cohort": pd.Series(dtype=object), "voters": pd.Series(dtype=np.int64)})
    result = pd.concat(pieces, ignore_index=True)
    result["voters"] = result["voters"].astype(np.int64)
    return result
