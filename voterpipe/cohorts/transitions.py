"""Changes between two snapshots' voter cohorts (new registrants, removals, moves, party
switches), counted by cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.cohorts.arrays import as_arrow_strings, count_by, dimension_codes, string_column

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
    prev_pos, on_previous = _matches(previous["voter_id"], current["voter_id"])
    both = prev_pos >= 0
    take = pa.array(np.clip(prev_pos, 0, None)) if len(previous) else None

    def pair(column: str) -> tuple[pa.Array, pa.Array]:
        """(current values, previous values of the same voter) as Arrow strings, null = missing."""
        now = string_column(current, column)
        before = string_column(previous, column).take(take) if take is not None \
            else pa.nulls(len(current), pa.large_string())
        return now, before

    def flags(array) -> np.ndarray:  # Arrow booleans, null as False
        return array.fill_null(False).to_numpy(zero_copy_only=False)

    cur_status, prev_status = pair("status")
    became_removed = both & flags(pc.equal(cur_status, "removed")) & ~flags(pc.equal(prev_status, "removed"))
    del cur_status, prev_status
    moved = both & flags(pc.not_equal(*pair("household_id")))
    cur_party, prev_party = pair("party")
    known = flags(pc.not_equal(cur_party, "unknown")) & flags(pc.not_equal(prev_party, "unknown"))
    switched = both & known & flags(pc.not_equal(cur_party, prev_party))
    if switched.any():
        chosen = pa.array(switched)
        cur_party = cur_party.filter(chosen).to_numpy(zero_copy_only=False)
        prev_party = prev_party.filter(chosen).to_numpy(zero_copy_only=False)

    removed_rows = ~on_previous
    if became_removed.any():
        removed_rows[prev_pos[became_removed]] = True
    pieces = _counts_by_cohort(
        (("new_registrant", current, ~both), ("removed", previous, removed_rows),
         ("moved", current, moved), ("party_switch", current, switched)), dimensions)
    if switched.any():
        moves = pd.Series(prev_party.astype(str)) + " -> " + pd.Series(cur_party.astype(str))
        counted = moves.value_counts(sort=False)
        pieces.append(pd.DataFrame({"change": "party_switch", "dimension": "party_switch",
                                    "cohort": counted.index.astype(str), "voters": counted.to_numpy()}))
    return _concat_changes([p for p in pieces if len(p)])


def _matches(previous_ids: pd.Series, current_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(row of each current id among the previous ids, first occurrence, -1 when absent or null;
    whether each previous id is among the current ids), from one Arrow dictionary encoding of
    both rolls' ids rather than two hash lookups."""
    n_previous = len(previous_ids)
    encoded = pa.concat_arrays([as_arrow_strings(previous_ids), as_arrow_strings(current_ids)]).dictionary_encode()
    missing = len(encoded.dictionary)  # the code of a null id
    codes = encoded.indices.fill_null(missing).to_numpy(zero_copy_only=False).astype(np.int64)
    previous_codes, current_codes = codes[:n_previous], codes[n_previous:]
    first_row = np.full(missing + 1, -1, dtype=np.int64)
    first_row[previous_codes[::-1]] = np.arange(n_previous - 1, -1, -1)  # the last write is the first row
    first_row[missing] = -1
    on_current = np.zeros(missing + 1, dtype=bool)
    on_current[current_codes] = True
    on_current[missing] = False
    return first_row[current_codes], on_current[previous_codes]


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
